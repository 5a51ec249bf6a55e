"""The ``ava`` protocol: ρ on the standard test list, accuracy at the τ chosen on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aadb_toolkit.protocols.ava_protocol import ground_truth as ava_ground_truth
from aadb_toolkit.sources import load as load_source
from aadb_toolkit import protocols
from aadb_toolkit.data import AADBData, Provenance
from aadb_toolkit.simulate import write_synthetic_ava
from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.protocols.ava_protocol import accuracy_at, choose_threshold, evaluate
from aadb_toolkit.submissions import SubmissionError, write_predictions


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory):
    return write_synthetic_ava(tmp_path_factory.mktemp("ava") / "AVA_dataset", 3000, seed=5, images=False)


def _series(values, prefix="i"):
    return pd.Series(np.asarray(values, dtype=float), index=[f"{prefix}{k}" for k in range(len(values))])


def _ava_data(test_truth, val_truth):
    """An AVA source in memory: the two splits' mean votes."""
    images = pd.DataFrame({"image_id": [*test_truth.index, *val_truth.index],
                           "split": ["test"] * test_truth.size + ["validation"] * val_truth.size,
                           "score_mean": [*test_truth, *val_truth]})
    return AADBData(images=images, ratings=None, origin="memory", read_image_bytes=lambda i: b"",
                    provenance=Provenance("memory", kind="ava"))


def test_threshold_is_chosen_on_validation_not_on_test():
    val_truth = _series([4.0, 4.5, 6.0, 7.0], "v")
    val_pred = _series([0.1, 0.2, 0.3, 0.4], "v")  # best τ on validation: 0.25 (4/4 correct)
    test_truth = _series([4.0, 4.0, 4.0, 4.0, 6.0, 7.0], "t")
    test_pred = _series([0.1, 0.2, 0.3, 0.35, 0.4, 0.5], "t")  # best τ on test would be 0.375 (6/6)
    r = evaluate(_ava_data(test_truth, val_truth), test_pred, validation=val_pred, n_boot=0)
    assert r.details["threshold"] == pytest.approx(0.25)
    assert r.metrics["validation_accuracy"].value == 1.0
    assert r.metrics["accuracy"].value == pytest.approx(4 / 6)  # not the test oracle's 6/6
    test_tau, test_acc = choose_threshold(test_pred.to_numpy(), test_truth.to_numpy() > 5)
    assert test_tau == pytest.approx(0.375) and test_acc == 1.0


def test_labels_use_strictly_greater_than_five():
    tau, acc = choose_threshold(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.01]) > 5)
    assert acc == 1.0 and 2.0 < tau < 3.0


def test_choose_threshold_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 15))
        x, lab = rng.integers(0, 5, n).astype(float), rng.random(n) < 0.5
        _, acc = choose_threshold(x, lab)
        brute = max(accuracy_at(x, lab, t) for t in np.concatenate(([x.min() - 1], np.unique(x))))
        assert acc == pytest.approx(brute)


def test_score_on_synthetic_ava(tmp_path, ava_root):
    ava = load_source(ava_root, images=False)
    test, val = ava_ground_truth(ava, "test"), ava_ground_truth(ava, "validation")
    rng = np.random.default_rng(3)
    tp = test + rng.normal(0, 0.5, test.size)
    vp = val + rng.normal(0, 0.5, val.size)
    sub = write_predictions(tp, tmp_path / "test.csv")
    vsub = write_predictions(vp, tmp_path / "val.csv")
    r = score_submission("ava", sub, ava_root, validation=vsub, n_boot=100, seed=0)
    assert abs(r.metrics["spearman"].value - stats.spearmanr(tp, test).statistic) < 1e-12
    tau, _ = choose_threshold(vp.to_numpy(), val.to_numpy() > 5)
    assert r.details["threshold"] == tau
    assert r.metrics["accuracy"].value == pytest.approx(np.mean((tp.to_numpy() > tau) == (test.to_numpy() > 5)))
    assert r.n_images == len(ava.split("test")) and r.details["n_validation"] == len(ava.split("validation"))
    # the AVA folder is synthetic (written by the generator): so is the result
    assert ava.provenance.synthetic and r.synthetic and r.dataset == "synthetic-ava"
    # in memory, the same predictions score the same, to the last bit
    mem = protocols.evaluate("ava", ava, tp, validation=vp, n_boot=100, seed=0)
    assert mem.metrics == r.metrics and mem.submission_sha256 == r.submission_sha256 and mem.details == r.details


def test_validation_file_must_cover_the_validation_set(tmp_path, ava_root):
    ava = load_source(ava_root, images=False)
    test = ava_ground_truth(ava, "test")
    sub = write_predictions(test, tmp_path / "test.csv")
    wrong = write_predictions(test, tmp_path / "val.csv")  # test ids given as validation
    with pytest.raises(SubmissionError, match="not in the toolkit's AVA validation set"):
        score_submission("ava", sub, ava_root, validation=wrong, n_boot=0)


def test_single_class_validation_is_refused():
    with pytest.raises(InputError, match="only one class"):
        evaluate(_ava_data(_series([6.0, 7.0], "t"), _series([6.0, 7.0], "v")), _series([1.0, 2.0], "t"),
                 validation=_series([1.0, 2.0], "v"), n_boot=0)


@pytest.mark.parametrize("protocol", ["aadb", "human"])
def test_an_ava_folder_given_as_aadb_data_is_refused(protocol):
    """Review 2026-12-04: the aadb, human and cross-dataset protocols scored an AVA folder given as
    --data as if it were AADB (and labelled the result AADB); the ava protocol refuses the reverse."""
    data = _ava_data(_series(np.arange(20.0), "t"), _series(np.arange(10.0), "v"))
    predictions = pd.Series(np.arange(20.0), index=[f"t{k}" for k in range(20)])
    with pytest.raises(InputError, match="is an AVA folder"):
        protocols.evaluate(protocol, data, predictions, n_boot=0)


def test_an_ava_folder_given_as_the_aadb_side_of_cross_dataset_is_refused():
    data = _ava_data(_series(np.arange(20.0), "t"), _series(np.arange(10.0), "v"))
    predictions = pd.Series(np.arange(20.0), index=[f"t{k}" for k in range(20)])
    with pytest.raises(InputError, match="is an AVA folder"):
        protocols.evaluate("cross-dataset", data, {c: predictions for c in ("aadb->aadb", "aadb->ava", "ava->aadb",
                                                                          "ava->ava")}, ava_data=data, n_boot=0)


def test_the_model_sidecar_of_ava_test_predictions_is_recorded_as_for_aadb(tmp_path, ava_root):
    """Review 2026-12-04: the ava protocol's submission hash covers the test and validation files
    together, so the sidecar written beside the test CSV never matched and the model was dropped
    (and `aadb evaluate` recorded it where `aadb score` did not)."""
    ava = load_source(ava_root, images=False)
    test, val = ava_ground_truth(ava, "test"), ava_ground_truth(ava, "validation")
    model = {"name": "reg", "config_sha256": "a" * 64, "weights_sha256": "b" * 64, "run_id": "b" * 16,
             "weights": "best", "split": "test", "paper_table": None, "paper_row": None}
    sub = write_predictions(test, tmp_path / "test.csv", model=model)
    vsub = write_predictions(val, tmp_path / "val.csv")
    r = score_submission("ava", sub, ava_root, validation=vsub, n_boot=0)
    assert r.model is not None and r.model["name"] == "reg"
    mem = protocols.evaluate("ava", ava, test, validation=val, n_boot=0, model=model)
    assert mem.model["predictions_sha256"] == r.model["predictions_sha256"]
