"""Inter-rater reliability: Krippendorff's α against a hand-written implementation and against the
package's raters × images input, per-rater ρ and permutation p-values, and planted random raters."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from aadb_toolkit import reliability


def _sparse(seed: int, n_images: int = 60, n_raters: int = 12, per_image: int = 4, random_raters=()):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_images):
        q = rng.normal()
        for r in rng.choice(n_raters, size=per_image, replace=False):
            s = rng.integers(1, 6) if r in random_raters else np.clip(np.rint(3 + q + rng.normal(0, 0.6)), 1, 5)
            rows.append((f"img{k}", f"r{r:02d}", int(s)))
    return pd.DataFrame(rows, columns=["image_id", "rater_id", "score"])


def _interval_alpha_by_hand(df: pd.DataFrame) -> float:
    units = [g["score"].to_numpy(float) for _, g in df.groupby("image_id") if len(g) >= 2]
    n = sum(len(u) for u in units)
    d_o = sum(sum((a - b) ** 2 for a, b in itertools.permutations(u, 2)) / (len(u) - 1) for u in units) / n
    allv = np.concatenate(units)
    d_e = ((allv[:, None] - allv[None, :]) ** 2).sum() / (n * (n - 1))
    return 1 - d_o / d_e


def test_alpha_matches_hand_computation_and_raters_by_images_input():
    df = _sparse(0)
    got = reliability.krippendorff_alpha(df, level="interval", n_boot=0)
    assert got["alpha"] == pytest.approx(_interval_alpha_by_hand(df), abs=1e-10)
    wide = df.pivot(index="rater_id", columns="image_id", values="score").to_numpy(float)
    for level in ("ordinal", "interval"):
        ref = krippendorff.alpha(reliability_data=wide, level_of_measurement=level)
        assert reliability.krippendorff_alpha(df, level=level, n_boot=0)["alpha"] == pytest.approx(ref, abs=1e-10)


def test_alpha_perfect_agreement_and_bootstrap():
    df = pd.DataFrame({"image_id": np.repeat([f"i{k}" for k in range(10)], 3),
                       "rater_id": np.tile(["a", "b", "c"], 10), "score": np.repeat(np.arange(10) % 5 + 1, 3)})
    got = reliability.krippendorff_alpha(df, level="ordinal", n_boot=50)
    assert got["alpha"] == pytest.approx(1.0)
    noisy = reliability.krippendorff_alpha(_sparse(1), level="ordinal", n_boot=100, seed=3)
    assert noisy["ci_low"] <= noisy["alpha"] <= noisy["ci_high"]
    with pytest.raises(ValueError, match="level"):
        reliability.krippendorff_alpha(df, level="nominal")


def test_rater_rho_against_leave_one_out_mean_and_p_value():
    df = _sparse(2, n_images=80, random_raters=(3,))
    table = reliability.rater_reliability(df, n_perm=4000, seed=1).set_index("rater_id")
    rng = np.random.default_rng(0)
    for rater in ("r03", "r05"):
        mine = df[df.rater_id == rater].set_index("image_id")["score"]
        others = df[(df.rater_id != rater) & df.image_id.isin(mine.index)].groupby("image_id")["score"].mean()
        x, y = mine.loc[others.index].to_numpy(float), others.to_numpy()
        obs = stats.spearmanr(x, y).statistic
        assert table.loc[rater, "rho"] == pytest.approx(obs, abs=1e-12)
        hits = sum(stats.spearmanr(x[rng.permutation(len(x))], y).statistic >= obs - 1e-12 for _ in range(800))
        p_ref = (1 + hits) / 801
        p = table.loc[rater, "p_value"]
        se = np.sqrt(max(p * (1 - p), 1e-4) * (1 / 4000 + 1 / 800))
        assert abs(p - p_ref) <= 4.5 * se + 1e-3
    tested = table[table["status"] == "tested"]
    reject, p_adj, _, _ = multipletests(tested["p_value"], alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(tested["p_adjusted"], p_adj)
    assert (tested["chance_like"] == ~reject).all()


def test_planted_random_raters_are_flagged():
    df = _sparse(4, n_images=300, n_raters=10, per_image=5, random_raters=(1, 6))
    table = reliability.rater_reliability(df, n_perm=1000, seed=0).set_index("rater_id")
    assert table.loc[["r01", "r06"], "chance_like"].all()
    assert not table.drop(["r01", "r06"])["chance_like"].any()
    doc, _ = reliability.reliability_summary(df, n_perm=200, n_boot=20)
    assert doc["raters"]["n_chance_like"] == 2
    assert "ICC" in doc["icc_note"]


def test_untestable_raters_are_reported():
    df = pd.DataFrame({"image_id": ["a", "b", "c", "a", "b", "c", "a", "b"],
                       "rater_id": ["x", "x", "x", "y", "y", "y", "z", "z"],
                       "score": [3, 3, 3, 1, 2, 5, 2, 4]})
    table = reliability.rater_reliability(df, n_perm=50).set_index("rater_id")
    assert table.loc["x", "status"] == "constant_rater"
    assert table.loc["z", "status"] == "too_few_images"
    # y is tested, but 3 images cannot show agreement beyond chance: flagged; untested ones are not
    assert table.loc["y", "status"] == "tested" and table.loc["y", "chance_like"]
    assert not table.loc[["x", "z"], "chance_like"].any()


@pytest.mark.parametrize("seed", [-1, 2**63, True], ids=["negative", "past_int64", "bool"])
def test_a_seed_outside_the_one_range_is_refused(seed):
    """numpy's ValueError for a negative seed (``aadb report human-consistency --seed -1``), and a
    seed past int64 accepted: the range is every command's (``_numbers.check_seed``)."""
    from aadb_toolkit.errors import InputError

    df = _sparse(0, n_images=12)
    why = "seed must be a whole number from 0 to 9,223,372,036,854,775,807"
    for call in (lambda: reliability.krippendorff_alpha(df, n_boot=5, seed=seed),
                 lambda: reliability.rater_reliability(df, n_perm=10, seed=seed),
                 lambda: reliability.reliability_summary(df, n_perm=10, n_boot=5, seed=seed)):
        with pytest.raises(InputError, match=why):
            call()


def test_the_summary_names_synthetic_data_as_a_score_result_does():
    """SPEC: a synthetic source is named synthetic in every result; reliability.json said nothing
    of its data. Given the data's provenance it records ``dataset``, ``synthetic`` and
    ``synthetic_setting`` as result documents do."""
    from aadb_toolkit.data import Provenance

    setting = {"setting": "model", "overrides": {}, "sha256": "0" * 64}
    df = _sparse(0, n_images=12)
    doc, _ = reliability.reliability_summary(df, n_perm=10, n_boot=5,
                                             provenance=Provenance("memory", synthetic=True, setting=setting))
    assert doc["synthetic"] is True and doc["dataset"] == "synthetic-aadb" and doc["synthetic_setting"] == setting
    real, _ = reliability.reliability_summary(df, n_perm=10, n_boot=5, provenance=Provenance("memory"))
    assert real["synthetic"] is False and real["dataset"] == "aadb" and "synthetic_setting" not in real


def test_a_rater_who_met_an_image_in_two_batches_counts_it_once_with_the_mean():
    """Review 2026-12-04 (afternoon): α and the per-rater reliability refused curated data in which
    a worker rated one photo in two batches (curation keeps both); one value per rater and image,
    the mean, as piaa counts it."""
    df = _sparse(1).assign(batch_id="b1")
    row = df.iloc[0]
    extra = pd.DataFrame({"image_id": [row.image_id], "rater_id": [row.rater_id], "score": [5], "batch_id": ["b2"]})
    merged = df.astype({"score": float})
    merged.loc[0, "score"] = (row.score + 5) / 2
    both = pd.concat([df, extra], ignore_index=True)
    for level in ("ordinal", "interval"):
        got = reliability.krippendorff_alpha(both, level=level, n_boot=0)["alpha"]
        assert got == pytest.approx(reliability.krippendorff_alpha(merged, level=level, n_boot=0)["alpha"], abs=1e-12)
    got = reliability.rater_reliability(both, n_perm=50, seed=0)
    want = reliability.rater_reliability(merged.drop(columns="batch_id"), n_perm=50, seed=0)
    pd.testing.assert_frame_equal(got, want)
