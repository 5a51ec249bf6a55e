"""Pair samplers: within-rater pairs share a rater and follow that rater's order; cross-rater
pairs respect the minimum difference and favour large differences; counts; determinism."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit.errors import InputError
from aadb_toolkit.models.samplers import CROSS, WITHIN, cross_rater_pairs, sample_pairs

BASELINES = Path(__file__).resolve().parents[2] / "baselines"


def _tables(seed=0, n_images=60, n_raters=12):
    rng = np.random.default_rng(seed)
    ids = [f"img{i:03d}.jpg" for i in range(n_images)]
    rows = []
    for i, img in enumerate(ids):
        for r in rng.choice(n_raters, 5, replace=False):
            rows.append({"image_id": img, "rater_id": f"r{r:02d}", "score": int(rng.integers(1, 6))})
    ratings = pd.DataFrame(rows)
    mean = ratings.groupby("image_id")["score"].mean().reindex(ids)
    images = pd.DataFrame({"image_id": ids, "score_mean": mean.to_numpy(), "score": ((mean - 1) / 4).to_numpy()})
    return images, ratings


def test_within_rater_pairs_share_a_rater_and_follow_that_raters_order():
    images, ratings = _tables()
    ps = sample_pairs(images, ratings, strategy="within", n_pairs=5000, seed=3)
    assert len(ps) == 5000 and (ps.source == WITHIN).all()
    lookup = {(r.image_id, r.rater_id): r.score for r in ratings.itertuples()}
    ids = images["image_id"].to_numpy()
    for a, b, r in zip(ps.first, ps.second, ps.rater):
        rater = ps.raters[r]
        sa, sb = lookup[(ids[a], rater)], lookup[(ids[b], rater)]  # KeyError if the rater did not rate both
        assert sa > sb  # preferred first; equal scores skipped


def test_within_rater_order_can_disagree_with_the_mean():
    # one rater prefers B over A although the mean prefers A: the pair's order is the rater's
    images = pd.DataFrame({"image_id": ["A", "B"], "score_mean": [4.0, 2.0], "score": [0.75, 0.25]})
    ratings = pd.DataFrame({"image_id": ["A", "B", "A", "B"], "rater_id": ["x", "x", "y", "y"],
                            "score": [2, 3, 5, 5]})
    ps = sample_pairs(images, ratings, strategy="within", n_pairs=50, seed=0)
    assert (ps.first == 1).all() and (ps.second == 0).all() and set(ps.raters[ps.rater]) == {"x"}


def test_ratings_of_other_splits_are_ignored():
    images, ratings = _tables()
    train = images.iloc[:30]
    ps = sample_pairs(train, ratings, strategy="within", n_pairs=1000, seed=0)
    assert ps.first.max() < 30 and ps.second.max() < 30


def test_cross_rater_respects_min_difference_and_order():
    images, ratings = _tables()
    ps = sample_pairs(images, ratings, strategy="cross", n_pairs=4000, seed=1, min_diff=0.2)
    s = images["score"].to_numpy()
    d = s[ps.first] - s[ps.second]
    assert len(ps) == 4000 and (ps.source == CROSS).all() and (ps.rater == -1).all()
    assert (d >= 0.2 - 1e-12).all()


def test_cross_rater_bias_favours_larger_differences():
    s = np.linspace(0, 1, 200)
    rng = np.random.default_rng(0)
    uni = cross_rater_pairs(s, 20000, np.random.default_rng(0), bias=0.0)
    biased = cross_rater_pairs(s, 20000, rng, bias=2.0)
    d_uni = (s[uni.first] - s[uni.second]).mean()
    d_b = (s[biased.first] - s[biased.second]).mean()
    # uniform pairs on a uniform grid: E|Δ| = 1/3; with P ∝ Δ²: E|Δ| = ∫2Δ³(1-Δ)/∫2Δ²(1-Δ) = (1/10)/(1/6) = 0.6
    assert d_uni == pytest.approx(1 / 3, abs=0.01)
    assert d_b == pytest.approx(0.6, abs=0.01)


def test_within_cross_share_counts_and_determinism():
    images, ratings = _tables()
    a = sample_pairs(images, ratings, strategy="within_cross", n_pairs=1001, seed=7, within_share=0.3)
    b = sample_pairs(images, ratings, strategy="within_cross", n_pairs=1001, seed=7, within_share=0.3)
    c = sample_pairs(images, ratings, strategy="within_cross", n_pairs=1001, seed=8, within_share=0.3)
    assert len(a) == 1001 and int((a.source == WITHIN).sum()) == round(1001 * 0.3)
    assert np.array_equal(a.first, b.first) and np.array_equal(a.second, b.second)
    assert not np.array_equal(a.first, c.first)
    # the share is shuffled in, not appended
    assert 0 < int((a.source[:100] == WITHIN).sum()) < 100


def test_millions_of_pairs():
    images, ratings = _tables(n_images=2000, n_raters=60)
    ps = sample_pairs(images, ratings, strategy="within_cross", n_pairs=2_000_000, seed=0)
    assert len(ps) == 2_000_000 and ps.first.dtype == np.int64
    assert (ps.first != ps.second).all()


def test_bad_requests_name_the_field():
    images, ratings = _tables()
    with pytest.raises(InputError, match="pairs.strategy"):
        sample_pairs(images, ratings, strategy="cros", n_pairs=10, seed=0)
    flat = images.assign(score=0.5)
    with pytest.raises(InputError, match="cross_min_diff"):
        sample_pairs(flat, ratings, strategy="cross", n_pairs=10, seed=0)
    same = ratings.assign(score=3)
    with pytest.raises(InputError, match="no rater scored"):
        sample_pairs(images, same, strategy="within", n_pairs=10, seed=0)


def test_within_weighting_pairs_favours_heavy_raters_more_than_ratings():
    images, ratings = _tables(n_images=200, n_raters=12)
    rng = np.random.default_rng(5)
    heavy = pd.DataFrame({"image_id": images["image_id"][:150], "rater_id": "heavy",
                          "score": rng.integers(1, 6, 150)})
    ratings = pd.concat([ratings, heavy], ignore_index=True)  # one rater with ~1.8x the others' workload
    share = {}
    for w in ("pairs", "ratings"):
        ps = sample_pairs(images, ratings, strategy="within", n_pairs=20000, seed=0, weighting=w)
        share[w] = float(np.mean(ps.raters[ps.rater] == "heavy"))
    # n=150 vs 11 raters with ~83: ∝ n gives ~0.14, ∝ n² ~0.23 (before tie rejection)
    assert share["pairs"] > share["ratings"] + 0.05 and share["ratings"] > 0.1


@pytest.mark.parametrize("strategy", ["cross", "within", "within_cross"])
def test_only_train_split_images_appear_with_validation_and_test_present(strategy, tiny_curated):
    from aadb_toolkit.models.trainer import _prepare_train
    from aadb_toolkit.models import load_config
    from aadb_toolkit.sources import load

    data = load(tiny_curated)
    train_ids = set(data.split("train")["image_id"])
    held_out = set(data.split("validation")["image_id"]) | set(data.split("test")["image_id"])
    assert held_out and data.ratings["image_id"].isin(held_out).any()  # other splits' ratings are present
    cfg = load_config(BASELINES / "reg_rank_within_cross.toml",
                      {"pairs.strategy": strategy, "pairs.n_pairs": 3000})
    td = _prepare_train(cfg, data, "cpu")
    ids = np.asarray(td.ids, dtype=object)
    used = set(ids[td.pairs.first]) | set(ids[td.pairs.second])
    assert len(td.pairs) == 3000 and used <= train_ids and not used & held_out
    # within-rater pairs: the rater really scored both images, and scored the first higher
    lookup = {(r.image_id, r.rater_id): r.score for r in data.ratings.itertuples()}
    w = td.pairs.source == WITHIN
    assert w.any() == (strategy != "cross")
    for a, b, r in zip(ids[td.pairs.first[w]], ids[td.pairs.second[w]], td.pairs.rater[w]):
        assert lookup[(a, td.pairs.raters[r])] > lookup[(b, td.pairs.raters[r])]


def test_cross_rater_pairs_never_tie_and_follow_the_mean():
    s = np.array([0.5, 0.5, 0.5, 0.25, 0.75])
    ps = cross_rater_pairs(s, 2000, np.random.default_rng(0), bias=0.0)
    assert (s[ps.first] > s[ps.second]).all()  # equal means carry no order: skipped, never δ = +1 by a tie
    seen = {(int(a), int(b)) for a, b in zip(ps.first, ps.second)}
    assert seen == {(4, 3), (4, 0), (4, 1), (4, 2), (0, 3), (1, 3), (2, 3)}


@pytest.mark.parametrize("col", ["rater_id", "score"])
def test_within_rater_refuses_ratings_with_missing_values(col):
    images, ratings = _tables()
    ratings = ratings.astype({"score": float})
    ratings.loc[[3, 7], col] = np.nan
    with pytest.raises(InputError, match=f"2 ratings of training images have no {col}") as e:
        sample_pairs(images, ratings, strategy="within", n_pairs=10, seed=0)
    assert e.value.field == col


def test_cross_rater_refuses_missing_scores_at_once():
    s = np.array([0.1, np.nan, 0.9, 0.5])
    with pytest.raises(InputError, match="1 of 4 image scores are not finite"):
        cross_rater_pairs(s, 10, np.random.default_rng(0))


def test_same_hit_pairs_never_cross_an_assignment_and_ties_can_be_kept():
    images, ratings = _tables(n_images=80)
    ratings = ratings.assign(batch_id=[f"HIT{int(i[3:6]) // 10}" for i in ratings["image_id"]])
    hit_of = dict(zip(ratings["image_id"], ratings["batch_id"]))
    ids = images["image_id"].to_numpy()
    ps = sample_pairs(images, ratings, strategy="within", n_pairs=3000, seed=1, same_hit=True)
    assert all(hit_of[ids[a]] == hit_of[ids[b]] for a, b in zip(ps.first, ps.second))
    assert set(ps.raters) <= set(ratings["rater_id"])  # raters are named as in the ratings, never by session
    anyhit = sample_pairs(images, ratings, strategy="within", n_pairs=3000, seed=1)
    assert any(hit_of[ids[a]] != hit_of[ids[b]] for a, b in zip(anyhit.first, anyhit.second))
    lookup = {(r.image_id, r.rater_id): r.score for r in ratings.itertuples()}
    kept = sample_pairs(images, ratings, strategy="within", n_pairs=3000, seed=1, ties="keep")
    diffs = [lookup[(ids[a], kept.raters[r])] - lookup[(ids[b], kept.raters[r])]
             for a, b, r in zip(kept.first, kept.second, kept.rater)]
    assert min(diffs) == 0 and all(d >= 0 for d in diffs)  # ties present, order otherwise preferred-first
    with pytest.raises(InputError, match="batch_id"):
        sample_pairs(images, ratings.drop(columns="batch_id"), strategy="within", n_pairs=10, seed=0, same_hit=True)
    with pytest.raises(InputError, match="ties"):
        sample_pairs(images, ratings, strategy="within", n_pairs=10, seed=0, ties="coin")


def _components(first: np.ndarray, second: np.ndarray, n: int) -> list[set[int]]:
    """The connected components (as image sets) of the graph the pairs draw on ``n`` images."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for a, b in zip(first, second):
        parent[root(int(a))] = root(int(b))
    groups: dict[int, set[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), set()).add(i)
    return [g for g in groups.values() if len(g) > 1]


def test_grouped_cross_rater_pairs_stay_inside_a_random_partition_of_hit_size():
    """``cross_group_size`` links the images as sparsely as same-HIT pairs do: every pair lies in
    one of ⌈n/10⌉ groups of at most 10 images, the groups are not the images' order (so not the
    HITs), every group is used, and each pair still follows the mean scores."""
    s = np.random.default_rng(3).permutation(np.linspace(0.0, 1.0, 95))  # 95 distinct scores
    ps = cross_rater_pairs(s, 20000, np.random.default_rng(0), bias=0.0, group_size=10)
    comps = _components(ps.first, ps.second, len(s))
    assert sorted(len(c) for c in comps) == [5] + [10] * 9  # a partition: 9 full groups and the rest
    assert set().union(*comps) == set(range(len(s)))
    assert any(c != set(range(min(c), min(c) + len(c))) for c in comps)  # random groups, not consecutive images
    assert (s[ps.first] > s[ps.second]).all()
    whole = cross_rater_pairs(s, 20000, np.random.default_rng(0), bias=0.0)
    assert len(_components(whole.first, whole.second, len(s))) == 1  # without groups: one connected graph
    again = cross_rater_pairs(s, 20000, np.random.default_rng(0), bias=0.0, group_size=10)
    assert np.array_equal(again.first, ps.first) and np.array_equal(again.second, ps.second)


@pytest.mark.parametrize("size", [1, -3])
def test_grouped_cross_rater_pairs_refuse_a_group_that_cannot_hold_a_pair(size):
    with pytest.raises(InputError, match="at least 2") as e:
        sample_pairs(*_tables(n_images=30), strategy="cross", n_pairs=10, seed=0, cross_group_size=size)
    assert e.value.field == "pairs.cross_group_size"


def test_the_trainer_draws_the_configured_grouped_pairs(tiny_curated):
    """``[pairs] cross_group_size`` reaches the sampler: the run's pairs stay in groups of 10."""
    from aadb_toolkit import sources
    from aadb_toolkit.models.config import baseline_config
    from aadb_toolkit.models.trainer import _prepare_train

    data = sources.load(tiny_curated)
    n = len(data.split("train"))
    for size, most in ((10, 10), (0, n)):
        cfg = baseline_config("reg_rank_cross", {"pairs.cross_group_size": size, "pairs.n_pairs": 5000})
        pairs = _prepare_train(cfg, data, "cpu").pairs
        assert max(len(c) for c in _components(pairs.first, pairs.second, n)) == most


def test_grouped_pairs_that_cannot_be_drawn_name_the_group_size():
    """Scores tied inside every group of 2 (but not overall) leave no pair to draw: the error says
    so at once and names the group size, instead of retrying until it gives up."""
    s = np.repeat(np.arange(10) / 10, 2)  # pairs of equal scores, adjacent
    rng = np.random.default_rng(0)
    # a partition into groups of 2 that are exactly the tied pairs: force it through a fixed permutation
    rng_perm = np.random.default_rng(0)
    perm = rng_perm.permutation(len(s))
    tied = np.empty_like(s)
    tied[perm] = s  # group k holds perm[2k], perm[2k+1], which get equal scores
    with pytest.raises(InputError, match="in groups of 2: no group holds two scores") as e:
        cross_rater_pairs(tied, 10, rng, bias=0.0, group_size=2)
    assert e.value.field == "pairs.cross_group_size"
    ok = cross_rater_pairs(tied, 10, np.random.default_rng(0), bias=0.0, group_size=4)  # groups of 4 mix scores
    assert (tied[ok.first] > tied[ok.second]).all()


def test_a_rater_who_rated_one_image_twice_and_nothing_else_is_not_drawn(tmp_path):
    """Review 2026-12-04: a rater whose two different scores were of the same image (curation keeps a
    worker who met a photo in two HITs) counted as able to give a pair, and the within-rater
    sampler then drew forever. Such a rater gives no pair; with no other, it is a clear error."""
    import subprocess
    import sys

    code = (
        "import pandas as pd\n"
        "from aadb_toolkit.errors import InputError\n"
        "from aadb_toolkit.models.samplers import sample_pairs\n"
        "images = pd.DataFrame({'image_id': ['a', 'b', 'c'], 'score_mean': [3.0, 3.0, 3.0], 'score': [0.5] * 3})\n"
        "ratings = pd.DataFrame({'image_id': ['a', 'a', 'b', 'c'], 'rater_id': ['r1', 'r1', 'r2', 'r3'],\n"
        "                        'score': [2, 4, 3, 3]})\n"
        "try:\n"
        "    sample_pairs(images, ratings, strategy='within', n_pairs=10, seed=0)\n"
        "except InputError as exc:\n"
        "    print('refused:', exc)\n"
        "ok = ratings.assign(image_id=['a', 'a', 'b', 'c'], rater_id=['r1', 'r1', 'r1', 'r3'])\n"
        "print(len(sample_pairs(images, ok, strategy='within', n_pairs=10, seed=0)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)  # a hang guard
    assert out.returncode == 0, out.stderr
    assert "refused: " in out.stdout and "no rater scored two training images differently" in out.stdout
    assert out.stdout.strip().endswith("10")
