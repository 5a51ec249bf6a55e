"""The ``human`` protocol (Table 6): the model against each rater on the rater's own test images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aadb_toolkit import sources
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.protocols.results import read_result, write_result
from aadb_toolkit.submissions import write_predictions


@pytest.fixture(scope="module")
def data(tiny_curated):
    return sources.load(tiny_curated)


def _worker_rho_by_hand(data, rater, predictions=None):
    r = data.ratings.merge(data.images[["image_id", "split"]], on="image_id")
    means = r.groupby("image_id")["score"].mean()
    mine = r[(r["rater_id"] == rater) & (r["split"] == "test")]
    target = means.reindex(mine["image_id"]).to_numpy()
    x = mine["score"].to_numpy() if predictions is None else predictions.reindex(mine["image_id"]).to_numpy()
    return stats.spearmanr(x, target).statistic


def test_worker_and_model_rho_on_the_same_images(tmp_path, tiny_curated, data):
    test = data.split("test")
    rng = np.random.default_rng(0)
    preds = pd.Series(test["score_mean"].to_numpy() + rng.normal(0, 0.4, len(test)), index=test["image_id"])
    r = score_submission("human", write_predictions(preds, tmp_path / "s.csv"), tiny_curated, n_boot=200, seed=0)
    workers = pd.DataFrame(r.details["workers"])
    ok = workers[np.isfinite(workers["rho"].astype(float)) & np.isfinite(workers["model_rho"].astype(float))]
    assert len(ok) >= 3
    for _, w in ok.iterrows():
        assert w["rho"] == pytest.approx(_worker_rho_by_hand(data, w["rater_id"]), abs=1e-12)
        assert w["model_rho"] == pytest.approx(_worker_rho_by_hand(data, w["rater_id"], preds), abs=1e-12)
    beaten = int((ok["model_rho"] > ok["rho"]).sum())
    assert r.metrics["n_beaten"].value == beaten and r.metrics["n_workers_compared"].value == len(ok)
    assert r.main_metric == "share_beaten" and r.main_value == pytest.approx(beaten / len(ok))
    assert r.metrics["spearman"].value == pytest.approx(stats.spearmanr(preds, test["score_mean"]).statistic)


def test_workload_groups_count_ratings_over_the_whole_data_set(tmp_path, tiny_curated, data):
    test = data.split("test")
    preds = pd.Series(test["score_mean"].to_numpy(), index=test["image_id"])  # perfect model
    r = score_submission("human", write_predictions(preds, tmp_path / "p.csv"), tiny_curated, n_boot=100, seed=1)
    counts = data.ratings.groupby("rater_id")["image_id"].nunique()
    workers = pd.DataFrame(r.details["workers"]).set_index("rater_id")
    assert (workers["n_images"] == counts.reindex(workers.index)).all()
    for g in r.details["groups"]:
        in_group = workers[(workers["n_images"] > g["min_images"]) & workers["rho"].notna()]
        assert g["n_workers"] == len(in_group)
        if len(in_group) == 0:  # the tiny data has no worker above the largest threshold
            assert np.isnan(g["mean_rho"]) and g["model_position"] == "undefined"
            continue
        assert g["mean_rho"] == pytest.approx(in_group["rho"].mean())
        assert g["model_position"] == ("above" if r.metrics["spearman"].value > g["mean_rho"] else "below")
        assert g["paper_n_workers"] == {0: 190, 100: 65, 200: 42}[g["min_images"]]
    # a perfect model ties workers whose ρ is 1 and beats every other worker
    ok = workers[workers["rho"].notna() & workers["model_rho"].notna()]
    assert r.metrics["n_beaten"].value == int((ok["rho"] < 1 - 1e-12).sum())
    assert r.metrics["spearman"].value == pytest.approx(1.0)
    back = read_result(write_result(tmp_path / "human.json", r))  # NaN group means become null
    assert back.details["groups"][-1]["mean_rho"] is None and back.main_value == r.main_value


def test_a_worker_the_model_ranks_nothing_for_still_counts_in_share_beaten(data):
    """Review 2026-12-04: workers whose images all got one prediction (model ρ undefined) were
    dropped from share_beaten's denominator, which raised the main metric. They count, with the
    model's ρ taken as 0 (as the piaa protocol scores constant predictions)."""
    from aadb_toolkit.protocols import evaluate

    test = data.split("test")
    truth = test.set_index("image_id")["score_mean"]
    batch = data.ratings.drop_duplicates("image_id").set_index("image_id")["batch_id"].reindex(truth.index)
    first = min(batch.unique())
    order = {b: i for i, b in enumerate(sorted(batch.unique()))}
    preds = pd.Series(np.where(batch == first, truth, batch.map(order).astype(float)), index=truth.index)
    res = evaluate("human", data, preds, n_boot=0)
    w = pd.DataFrame(res.details["workers"])
    defined = w[np.isfinite(w["rho"].astype(float))]
    assert defined["model_rho"].isna().any()  # the case that was dropped
    expected = float((defined["model_rho"].astype(float).fillna(0.0) > defined["rho"].astype(float)).mean())
    assert res.metrics["n_workers_compared"].value == len(defined)
    assert res.metrics["share_beaten"].value == pytest.approx(expected)
