"""The ``attributes`` protocol: per-attribute ρ (with CIs) against the attribute means of AADB test,
their mean, the attribute predictions of a model with an attribute branch, and its leaderboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aadb_toolkit import leaderboard, schema, sources
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import evaluate, evaluate_model, score_submission
from aadb_toolkit.protocols.attributes_protocol import ground_truth, keys
from aadb_toolkit.submissions import SubmissionError, write_predictions

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "train.cpu_threads": 1, "train.log_every_steps": 1, "train.validate_every_steps": 2, "optim.steps": 2}


@pytest.fixture(scope="module")
def data(tiny_curated):
    return sources.load(tiny_curated)


def _long(truth: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"image_id": np.repeat(truth.index.to_numpy(), truth.shape[1]),
                         "attribute": np.tile(truth.columns.to_numpy(), len(truth)), "score": values.reshape(-1)})


def test_each_attribute_is_ranked_against_its_mean_vote(data, tiny_curated, tmp_path):
    truth = ground_truth(data)
    assert list(truth.columns) == list(schema.ATTRIBUTES) and len(truth) == len(data.split("test"))
    rng = np.random.default_rng(0)
    pred = truth.to_numpy() + rng.normal(0, 0.3, truth.shape)
    frame = _long(truth, pred)
    path = write_predictions(frame, tmp_path / "att.csv")
    r = score_submission("attributes", path, tiny_curated, n_boot=200, seed=1)
    expected = [stats.spearmanr(pred[:, j], truth.iloc[:, j]).statistic for j in range(truth.shape[1])]
    for j, a in enumerate(schema.ATTRIBUTES):
        m = r.metrics[f"rho[{a}]"]
        assert m.value == pytest.approx(expected[j], abs=1e-12)
        assert m.ci_low <= m.value <= m.ci_high
    mean = r.metrics["mean_rho"]
    assert mean.value == pytest.approx(np.mean(expected), abs=1e-12) and mean.ci_low < mean.value < mean.ci_high
    assert r.dataset == "aadb" and r.n_images == len(truth)
    # the same predictions in memory: the same result
    again = evaluate("attributes", data, frame, n_boot=200, seed=1)
    assert again.metrics == r.metrics and again.submission_sha256 == r.submission_sha256


def test_a_missing_attribute_row_and_an_aadb_file_are_named(data, tiny_curated, tmp_path):
    truth = ground_truth(data)
    frame = _long(truth, truth.to_numpy())
    path = write_predictions(frame.iloc[1:], tmp_path / "short.csv")
    with pytest.raises(SubmissionError, match=r"1 \(image, attribute\) row\(s\) of the AADB test split have no row"):
        score_submission("attributes", path, tiny_curated, n_boot=0)
    aadb = write_predictions(pd.Series(truth["light"].to_numpy(), index=truth.index), tmp_path / "aadb.csv")
    with pytest.raises(SubmissionError, match="this is an aadb-format file"):
        score_submission("attributes", aadb, tiny_curated, n_boot=0)
    assert keys(data)[:2] == [f"{truth.index[0]},{schema.ATTRIBUTES[0]}", f"{truth.index[0]},{schema.ATTRIBUTES[1]}"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_a_model_with_an_attribute_branch_predicts_writes_and_is_scored(data, tiny_curated, tmp_path):
    from aadb_toolkit.models import load_config, predict_attributes, train

    train(load_config(BASELINES / "reg_att.toml", TINY), data, tmp_path / "run", progress=False)
    frame = predict_attributes(tmp_path / "run", data, "test")
    assert list(frame.columns) == ["image_id", "attribute", "score"] and len(frame) == len(keys(data))
    in_memory = evaluate_model("attributes", tmp_path / "run", data, n_boot=50)
    assert in_memory.model["name"] and set(in_memory.metrics) == {"mean_rho", *(f"rho[{a}]" for a in schema.ATTRIBUTES)}
    out = tmp_path / "att.csv"
    assert main(["predict", "--run", str(tmp_path / "run"), "--data", str(tiny_curated), "--attributes",
                 "--out", str(out)]) == 0
    from_file = score_submission("attributes", out, tiny_curated, n_boot=50)
    assert from_file.metrics == in_memory.metrics
    assert from_file.model["run_id"] == in_memory.model["run_id"]  # from the sidecar `aadb predict` wrote
    db = tmp_path / "lb.db"
    leaderboard.record(db, from_file, "reg+att")
    board = leaderboard.format_markdown(db, "attributes")
    assert "mean_rho" in board and "rho[light]" in board and "reg+att" in board


@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_a_run_without_attribute_branch_is_refused(data, tmp_path):
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models import load_config, predict_attributes, train

    train(load_config(BASELINES / "reg.toml", TINY), data, tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="no attribute branch"):
        predict_attributes(tmp_path / "run", data, "test")


def test_constant_predictions_of_an_attribute_score_rho_0_not_left_out(data):
    """Review 2026-12-04: one value for every image of an attribute gave an undefined ρ, left out
    of the mean, so a submission perfect on one attribute and constant on the other ten scored
    mean_rho 1.0, above any honest one. A constant prediction ranks nothing: ρ 0, as in piaa."""
    truth = ground_truth(data)
    pred = np.full(truth.shape, 3.0)
    pred[:, 0] = truth.to_numpy()[:, 0]
    r = evaluate("attributes", data, _long(truth, pred), n_boot=50, seed=0)
    varying = int((truth.nunique() > 1).sum())
    assert r.metrics["mean_rho"].value == pytest.approx(1.0 / varying)
    assert r.metrics[f"rho[{schema.ATTRIBUTES[1]}]"].value == 0.0 and r.details["n_undefined"] == 11 - varying
    assert r.metrics["mean_rho"].ci_high < 1.0


@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_attributes_are_not_predicted_from_weights_kept_before_the_attribute_layer_trained(data, tmp_path):
    """Review 2026-12-04: a staged run whose best validation ρ came from a stage before the joint one
    kept an attribute layer that was never trained, and its predictions were returned unflagged."""
    import json

    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models import load_config, predict_attributes, train

    run = tmp_path / "run"
    # three stages need three steps (TINY has two)
    train(load_config(BASELINES / "reg_rank_att.toml", {**TINY, "pairs.n_pairs": 96, "optim.steps": 3}), data, run,
          progress=False)
    summary = json.loads((run / "run.json").read_text())
    summary["best_stage"] = "reg_rank"  # as when that stage's validation ρ was the best
    (run / "run.json").write_text(json.dumps(summary))
    with pytest.raises(InputError, match="never trained the attribute branch"):
        predict_attributes(run, data, "test", progress=False)
    assert len(predict_attributes(run, data, "test", which="last", progress=False)) == 11 * len(data.split("test"))
