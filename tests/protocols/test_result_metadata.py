"""A result document says what was scored and how: the model's identity (from the sidecar
`aadb predict` writes beside its CSV), the environment, the evaluation time, and a CI for every
headline metric (the ``human`` protocol's included)."""

import json
import platform
import sys

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import sources
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.protocols.results import Result, environment, read_result, write_result
from aadb_toolkit.submissions import write_predictions


def _noisy_predictions(data, seed=0):
    test = data.split("test")
    rng = np.random.default_rng(seed)
    return pd.Series(test["score_mean"].to_numpy() + rng.normal(0, 0.4, len(test)), index=test["image_id"])


def test_environment_names_versions_and_the_checkout_commit():
    env = environment()
    assert env["python"] == platform.python_version()
    assert env["numpy"] == np.__version__
    import torch

    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"] == torch.__version__
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
    assert env["platform"] == sys.platform


def test_result_records_environment_and_evaluation_time_and_round_trips(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    sub = write_predictions(_noisy_predictions(data), tmp_path / "s.csv")
    r = score_submission("aadb", sub, tiny_curated, n_boot=50, seed=0)
    doc = r.to_dict()
    assert doc["environment"]["numpy"] == np.__version__
    assert doc["evaluation"]["seconds"] >= 0 and doc["evaluation"]["finished_utc"]
    assert doc["model"] is None  # a bare CSV: nothing says which model made it
    back = Result.from_dict(json.loads(json.dumps(doc)))
    assert back.environment == r.environment and back.evaluation == r.evaluation


def test_every_headline_metric_of_the_human_protocol_has_a_ci(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    r = score_submission("human", write_predictions(_noisy_predictions(data), tmp_path / "s.csv"), tiny_curated,
                         n_boot=200, seed=0)
    for name in ("share_beaten", "spearman"):
        m = r.metrics[name]
        assert m.ci_level == 0.95 and m.ci_low <= m.value <= m.ci_high, name
    assert r.metrics["share_beaten"].ci_low < r.metrics["share_beaten"].ci_high
    groups = [k for k in r.metrics if k.endswith("_share_beaten") and k.startswith("workers_gt")]
    assert all(r.metrics[k].ci_level == 0.95 for k in groups if r.metrics[k].value is not None)
    again = score_submission("human", tmp_path / "s.csv", tiny_curated, n_boot=200, seed=0)
    assert again.metrics["share_beaten"] == r.metrics["share_beaten"]  # seeded


@pytest.mark.slow
def test_predict_sidecar_carries_the_model_identity_into_the_result(tiny_curated, tmp_path, capsys):
    run, csv, out = tmp_path / "run", tmp_path / "preds.csv", tmp_path / "result.json"
    assert main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(run), "--image-size", "64",
                 "--epochs", "1", "--set", "model.width=0.0625", "--no-progress"]) == 0
    assert main(["predict", "--run", str(run), "--data", str(tiny_curated), "--out", str(csv)]) == 0
    sidecar = json.loads((tmp_path / "preds.csv.model.json").read_text())
    assert sidecar["name"] == "reg" and len(sidecar["config_sha256"]) == 64 and sidecar["run_id"]
    assert sidecar["split"] == "test" and sidecar["weights"] == "best"
    assert main(["score", "--submission", str(csv), "--protocol", "aadb", "--data", str(tiny_curated),
                 "--out", str(out), "--n-boot", "20"]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"]["name"] == "reg" and doc["model"]["run_id"] == sidecar["run_id"]
    assert doc["model"]["config_sha256"] == sidecar["config_sha256"]
    assert read_result(out).model == doc["model"]
    write_result(tmp_path / "again.json", read_result(out))
    assert json.loads((tmp_path / "again.json").read_text())["model"] == doc["model"]


def _memory_source(truth: pd.Series, kind: str):
    """A source in memory whose test split has ``truth`` as mean scores."""
    from aadb_toolkit.data import AADBData, Provenance

    images = pd.DataFrame({"image_id": truth.index, "split": "test", "score_mean": truth.to_numpy()})
    return AADBData(images=images, ratings=None, origin="memory", read_image_bytes=lambda i: b"",
                    provenance=Provenance("memory", kind=kind))


def test_the_cross_dataset_headline_metric_has_a_ci():
    from aadb_toolkit.protocols.cross_dataset_protocol import CELLS, evaluate

    rng = np.random.default_rng(1)
    truths = {t: pd.Series(rng.normal(size=60), index=[f"{t}{i}" for i in range(60)]) for t in ("aadb", "ava")}
    preds = {c: truths[c.split("->")[1]] + rng.normal(0, 1.0, 60) for c in CELLS}
    data, ava = (_memory_source(truths[t], kind) for t, kind in (("aadb", "memory"), ("ava", "ava")))
    r = evaluate(data, preds, ava_data=ava, n_boot=300, seed=0)
    m = r.metrics["mean_transfer_rho"]
    assert m.ci_level == 0.95 and m.ci_low < m.value < m.ci_high
    cells = [r.metrics["rho[aadb->ava]"], r.metrics["rho[ava->aadb]"]]
    assert m.ci_high - m.ci_low < max(c.ci_high - c.ci_low for c in cells)  # averaging two independent cells
    assert evaluate(data, preds, ava_data=ava, n_boot=0, seed=0).metrics[
        "mean_transfer_rho"].ci_low is None


def _sidecar(sub, **changes):
    from aadb_toolkit.data import sha256_fingerprint

    doc = {"name": "reg", "config_sha256": "a" * 64, "run_id": "b" * 16, "weights": "best",
           "weights_sha256": "b" * 64, "paper_table": "TABLE2_AADB_RHO", "paper_row": "Reg", "split": "test",
           "predictions_sha256": sha256_fingerprint(sub.read_bytes())}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


@pytest.mark.parametrize("changes, why", [
    ({"blob": "x" * 5_000_000}, "bytes"),
    ({"run_id": "forged-run"}, "run_id"),
    ({"paper_row": "Best model ever"}, "paper_row"),
    ({"name": "forged\n" * 100}, "name"),
    ({"config_sha256": 7}, "config_sha256"),
    ({"split": ...}, "split"),
    ({"backbone": {"family": "dinov2", "smuggled": "x"}}, "backbone"),
    ({"backbone": {"family": "dinov2", "weights_sha256": "not-a-hash"}}, "backbone"),
    ({"trained_on": ["AVA test set, trust me"]}, "trained_on"),
    ({"personalizer": {"method": "ridge", "alpha": -1}}, "personalizer"),
    ({"personalizer": {"method": "ridge", "alpha": "auto", "smuggled": 1}}, "personalizer"),
    ({"personalizer": {"method": "x" * 40, "alpha": 3.0}}, "personalizer"),
    ({"personalizer": {"method": "ridge", "alpha": "auto", "chosen": {"alpha": {"10": -1}}}}, "personalizer"),
    ({"personalizer": {"method": "ridge", "alpha": "auto", "chosen": {"alpha": {"ten": 30.0}}}}, "personalizer"),
    ({"personalizer": {"method": "ridge", "alpha": "auto", "chosen": {"alpha": {"\u0661\u0660": 30.0}}}}, "personalizer"),
    ({"personalizer": {"method": "ridge", "alpha": "auto", "chosen": {"beta": {"10": 30.0}}}}, "personalizer"),
])
def test_a_forged_or_oversized_sidecar_is_refused(tiny_curated, tmp_path, capsys, changes, why):
    """Issue 17, item 6: the sidecar's schema and size are checked; only the defined fields are kept."""
    data = sources.load(tiny_curated)
    sub = write_predictions(_noisy_predictions(data), tmp_path / "s.csv")
    (tmp_path / "s.csv.model.json").write_text(json.dumps(_sidecar(sub, **changes)))
    argv = ["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated),
            "--out", str(tmp_path / "r.json"), "--n-boot", "10", "--leaderboard", str(tmp_path / "lb.sqlite"),
            "--name", "x"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "model sidecar" in err and why in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_only_the_defined_sidecar_fields_are_recorded(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    sub = write_predictions(_noisy_predictions(data), tmp_path / "s.csv")
    (tmp_path / "s.csv.model.json").write_text(json.dumps(_sidecar(sub, extra="smuggled", weights_sha256="b" * 64)))
    r = score_submission("aadb", sub, tiny_curated, n_boot=0)
    assert r.model["name"] == "reg" and r.model["paper_row"] == "Reg"
    assert "extra" not in r.model
    backbone = {"family": "dinov2", "weights_id": "facebook/dinov2-small", "weights_sha256": "c" * 64,
                "pretraining_data": "LVD-142M"}
    (tmp_path / "s.csv.model.json").write_text(json.dumps(_sidecar(sub, backbone=backbone, trained_on=["ava"])))
    r = score_submission("aadb", sub, tiny_curated, n_boot=0)
    assert r.model["backbone"] == backbone and r.model["trained_on"] == ["ava"] and r.model["contamination"] == []


def test_contamination_flags_training_or_pretraining_on_the_scored_test_data():
    from aadb_toolkit.protocols.results import contamination

    ours = {"trained_on": ["aadb:train", "aadb:validation"], "backbone": {"pretraining_data": "LVD-142M"}}
    assert contamination(ours, "aadb", "test") == []  # the protocol's own train/test split
    laion = {"trained_on": ["ava"], "backbone": {"pretraining_data": "WIT-400M"}}  # all of AVA
    assert contamination(laion, "ava", "test") == ["ava"] and contamination(laion, "aadb", "test") == []
    assert contamination({"trained_on": ["ava:test"]}, "aadb+ava", "test") == ["ava:test"]
    assert contamination({"trained_on": [], "backbone": {"pretraining_data": "AVA"}}, "ava", "test") == ["pretraining:AVA"]
    assert contamination(None, "aadb", "test") == []


def test_contamination_reads_synthetic_data_sets_and_multi_split_protocols():
    """Review 2026-12-04: a model trained on the test split went unflagged when the scored data
    was synthetic ("synthetic-aadb") or the protocol scored several splits ("validation+test",
    piaa), where a run that chose its checkpoint on validation read the episodes' images."""
    from aadb_toolkit.protocols.results import contamination

    on_test = {"trained_on": ["aadb:train", "aadb:test"]}
    assert contamination(on_test, "synthetic-aadb", "test") == ["aadb:test"]
    ours = {"trained_on": ["aadb:train", "aadb:validation"]}
    assert contamination(ours, "synthetic-aadb", "test") == []
    assert contamination(ours, "aadb", "validation+test") == ["aadb:validation"]
    assert contamination(ours, "synthetic-aadb+synthetic-ava", "test") == []
    assert contamination({"trained_on": ["ava:test"]}, "synthetic-aadb+synthetic-ava", "test") == ["ava:test"]


@pytest.mark.parametrize("content, why", [(b"[" * 8000 + b"]" * 8000, "nested too deeply"),
                                          (b"\xff{}", "not UTF-8"), (b"[]", "expected a JSON object")],
                         ids=["deep", "not_utf8", "array"])
def test_a_sidecar_that_is_no_json_object_is_refused(tiny_curated, tmp_path, capsys, content, why):
    """A sidecar within the size limit that is nested deeper than the JSON reader follows (16,000
    bytes), not UTF-8 or not an object: a one-line error naming it, no result written."""
    sub = write_predictions(_noisy_predictions(sources.load(tiny_curated)), tmp_path / "s.csv")
    (tmp_path / "s.csv.model.json").write_bytes(content)
    argv = ["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated),
            "--out", str(tmp_path / "r.json"), "--n-boot", "10"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "model sidecar" in err and "s.csv.model.json" in err and why in err and "internal error" not in err
    assert not (tmp_path / "r.json").exists()
