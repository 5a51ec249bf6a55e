"""Human consistency (Table 6 / Fig. 6): per-worker ρ against scipy on hand-made ratings, count
and scope options, leave-one-out, the model's ρ, thresholds and bootstrap, planted raters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aadb_toolkit import human, sources
from aadb_toolkit.errors import InputError

from tiny_data import make_tiny_curated


def _hand_made(seed: int = 0):
    """Three splits; 6 images per split; 4 workers with different coverage; w_const gives one score."""
    rng = np.random.default_rng(seed)
    images = pd.DataFrame({"image_id": [f"{s}{k}" for s in ("tr", "va", "te") for k in range(6)],
                           "split": [s for s in ("train", "validation", "test") for _ in range(6)]})
    rows = []
    for img in images["image_id"]:
        for w in ("w_a", "w_b", "w_c"):
            rows.append((img, w, int(rng.integers(1, 6))))
    for img in ("te0", "te1", "te2", "te3"):
        rows.append((img, "w_const", 3))
    for img in ("te4", "te5"):  # only two test images: ρ undefined
        rows.append((img, "w_two", int(rng.integers(1, 6))))
    rows.append(("tr0", "w_train", 2))  # no test images at all
    ratings = pd.DataFrame(rows, columns=["image_id", "rater_id", "score"])
    return ratings, images


def test_worker_rho_equals_scipy_with_own_rating_included():
    ratings, images = _hand_made()
    table = human.worker_table(ratings, images).set_index("rater_id")
    means = ratings.groupby("image_id")["score"].mean()
    for w in ("w_a", "w_b", "w_c"):
        mine = ratings[(ratings.rater_id == w) & ratings.image_id.str.startswith("te")].set_index("image_id")["score"]
        ref = stats.spearmanr(mine, means.loc[mine.index]).statistic
        assert table.loc[w, "rho"] == pytest.approx(ref, abs=1e-12)
        assert table.loc[w, "n_images"] == 18 and table.loc[w, "n_scope"] == 6
        assert table.loc[w, "rho_status"] == "ok"
    assert table.loc["w_const", "rho_status"] == "constant_worker" and np.isnan(table.loc["w_const", "rho"])
    assert table.loc["w_two", "rho_status"] == "too_few_images"
    assert table.loc["w_train", "rho_status"] == "no_scope_images" and table.loc["w_train", "n_scope"] == 0
    assert table.loc["w_train", "n_images"] == 1
    # sorted by workload, then id
    assert list(table.index[:3]) == ["w_a", "w_b", "w_c"]


def test_count_scope_and_scope_options():
    ratings, images = _hand_made()
    same = human.worker_table(ratings, images, count_scope="scope").set_index("rater_id")
    assert same.loc["w_a", "n_images"] == 6 and same.loc["w_train", "n_images"] == 0
    val = human.worker_table(ratings, images, scope="validation").set_index("rater_id")
    assert val.loc["w_a", "n_scope"] == 6 and val.loc["w_const", "rho_status"] == "no_scope_images"
    with pytest.raises(InputError, match="scope"):
        human.worker_table(ratings, images, scope="tst")


def test_leave_one_out_uses_the_other_raters_mean():
    ratings, images = _hand_made(3)
    table = human.worker_table(ratings, images, leave_one_out=True).set_index("rater_id")
    te = ratings[ratings.image_id.str.startswith("te")]
    mine = te[te.rater_id == "w_b"].set_index("image_id")["score"]
    others = te[te.rater_id != "w_b"].groupby("image_id")["score"].mean().loc[mine.index]
    ref = stats.spearmanr(mine, others).statistic
    if np.isnan(ref):
        assert np.isnan(table.loc["w_b", "rho"])
    else:
        assert table.loc["w_b", "rho"] == pytest.approx(ref, abs=1e-12)


def test_model_rho_on_each_workers_images():
    ratings, images = _hand_made(1)
    rng = np.random.default_rng(5)
    preds = pd.Series(rng.normal(size=len(images)), index=images["image_id"])
    table = human.worker_table(ratings, images, predictions=preds).set_index("rater_id")
    means = ratings.groupby("image_id")["score"].mean()
    te = [f"te{k}" for k in range(6)]
    assert table.loc["w_a", "model_rho"] == pytest.approx(stats.spearmanr(preds.loc[te], means.loc[te]).statistic)
    four = ["te0", "te1", "te2", "te3"]  # w_const's images: the model is still scored there
    assert table.loc["w_const", "model_rho"] == pytest.approx(stats.spearmanr(preds.loc[four], means.loc[four]).statistic)
    with pytest.raises(InputError, match="lack"):
        human.worker_table(ratings, images, predictions=preds.drop("te3"))
    bad = preds.copy()
    bad["te1"] = np.nan
    with pytest.raises(InputError, match="te1"):
        human.worker_table(ratings, images, predictions=bad)


def test_threshold_summary_semantics_and_bootstrap():
    table = pd.DataFrame({"rater_id": list("abcdefg"), "n_images": [300, 201, 200, 150, 101, 100, 5],
                          "rho": [0.9, 0.8, 0.7, np.nan, 0.6, 0.5, 0.1], "model_rho": [0.7] * 7})
    s = human.threshold_summary(table, (0, 100, 200), n_boot=500, seed=1).set_index("min_images")
    assert s.loc[0, "n_workers"] == 6 and s.loc[0, "n_workers_undefined"] == 1
    assert s.loc[100, "n_workers"] == 4  # 300, 201, 200, 101 (> 100, NaN excluded)
    assert s.loc[200, "n_workers"] == 2  # 300, 201 — strictly more than 200
    assert s.loc[200, "mean_rho"] == pytest.approx(0.85)
    assert s.loc[100, "mean_model_rho"] == pytest.approx(0.7)
    for t in (0, 100, 200):
        assert s.loc[t, "ci_low"] <= s.loc[t, "mean_rho"] <= s.loc[t, "ci_high"]
    again = human.threshold_summary(table, (0, 100, 200), n_boot=500, seed=1)
    pd.testing.assert_frame_equal(s.reset_index(), again)
    empty = human.threshold_summary(table, (1000,), n_boot=10)
    assert empty.loc[0, "n_workers"] == 0 and np.isnan(empty.loc[0, "mean_rho"])


def test_human_consistency_on_planted_data(tmp_path):
    cur = make_tiny_curated(tmp_path, n_batches=80, seed=2, image_size=8, noise_raters=0.3)
    data = sources.load(cur)
    truth = pd.read_parquet(tmp_path / "truth_raters.parquet").set_index("rater_id")
    table = human.worker_table(data.ratings, data.images, scope="all").set_index("rater_id")
    ok = table[table["rho_status"] == "ok"].join(truth)
    assert ok.loc[~ok["random"], "rho"].mean() > 0.6
    assert ok.loc[ok["random"], "rho"].mean() < 0.45
    doc = human.human_consistency(data, thresholds=(0, 50), n_boot=200)
    json.dumps(doc, allow_nan=False)
    assert [g["min_images"] for g in doc["thresholds"]] == [0, 50]
    assert {"n_workers", "mean_rho", "ci_low", "ci_high"} <= set(doc["thresholds"][0])
    assert doc["paper"]["100"] == {"n_workers": 65, "mean_rho": 0.7013}
    written = human.run_human_consistency(sources.load(cur), tmp_path / "out", thresholds=(0, 50), n_boot=200)
    assert json.loads((tmp_path / "out" / "human_consistency.json").read_text()) == written == doc
    workers = pd.read_csv(tmp_path / "out" / "human_workers.csv")
    assert list(workers.columns[:6]) == list(human.WORKER_COLUMNS) and len(workers) == doc["n_workers_total"]


def test_bad_ratings_are_named():
    ratings, images = _hand_made()
    with pytest.raises(InputError, match="more than once"):
        human.worker_table(pd.concat([ratings, ratings.iloc[[0]]], ignore_index=True), images)
    with pytest.raises(InputError, match="not in the images table"):
        human.worker_table(ratings, images[images.image_id != "te2"])
    bad = ratings.astype({"score": float})
    bad.loc[4, "score"] = np.nan
    with pytest.raises(InputError, match="row 4"):
        human.worker_table(bad, images)


@pytest.mark.parametrize("seed", [-1, 2**63, True], ids=["negative", "past_int64", "bool"])
def test_a_seed_outside_the_one_range_is_refused(seed):
    """``aadb report human-consistency --seed -1`` reached numpy's ValueError here; a seed past
    int64 was accepted. The range is every command's (``_numbers.check_seed``)."""
    ratings, images = _hand_made()
    table = human.worker_table(ratings, images)
    with pytest.raises(InputError, match="seed must be a whole number from 0 to 9,223,372,036,854,775,807"):
        human.threshold_summary(table, n_boot=10, seed=seed)


#: A generator setting as a simulated release's manifest records it (provenance ``setting``).
SETTING = {"setting": "model", "overrides": {"raters.taste_sd": 0.5}, "sha256": "0" * 64}


def _in_memory(synthetic: bool):
    from aadb_toolkit.data import AADBData, Provenance

    ratings, images = _hand_made()
    provenance = Provenance("memory", synthetic=synthetic, setting=SETTING if synthetic else None)
    return AADBData(images=images.assign(score_mean=0.5), ratings=ratings.assign(batch_id="B0"), origin="memory",
                    read_image_bytes=lambda i: b"", provenance=provenance)


def test_the_summary_names_synthetic_data_as_a_score_result_does():
    """SPEC: a synthetic source is named synthetic in every result; human_consistency.json had only
    ``source``. It records ``dataset``, ``synthetic`` and ``synthetic_setting`` as result documents do."""
    doc = human.human_consistency(_in_memory(True), n_boot=5)
    assert doc["synthetic"] is True and doc["dataset"] == "synthetic-aadb" and doc["synthetic_setting"] == SETTING
    real = human.human_consistency(_in_memory(False), n_boot=5)
    assert real["synthetic"] is False and real["dataset"] == "aadb" and "synthetic_setting" not in real


def test_a_worker_who_met_an_image_in_two_batches_counts_it_once_with_the_mean():
    """Review 2026-12-04 (afternoon): curation keeps a worker's rating of the same photo in two
    batches (one per batch), and Table 6 then refused the curated data ("rated image … more than
    once"). The worker counts the image once, with the mean of the two scores, as piaa does."""
    ratings, images = _hand_made()
    ratings = ratings.assign(batch_id="b1")
    extra = pd.DataFrame({"image_id": ["te0"], "rater_id": ["w_a"], "score": [5], "batch_id": ["b2"]})
    first = int(ratings.query("image_id == 'te0' and rater_id == 'w_a'")["score"].iloc[0])
    merged = ratings.copy()
    merged.loc[(merged.image_id == "te0") & (merged.rater_id == "w_a"), "score"] = (first + 5) / 2
    got = human.worker_table(pd.concat([ratings, extra], ignore_index=True), images)
    want = human.worker_table(merged.drop(columns="batch_id"), images)
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(InputError, match="twice in batch"):  # twice in one batch stays an error
        human.worker_table(pd.concat([ratings, extra.assign(batch_id="b1")], ignore_index=True), images)
