"""The ``ava`` protocol (paper Table 3): Spearman ρ on the AVA standard test list (ground truth: the
mean vote from ``AVA.txt``) and binary accuracy, labels ``mean vote > 5``, of ``score > τ`` where τ
maximises accuracy on the submitter's predictions for the toolkit's AVA validation set
(:attr:`aadb_toolkit.ava.AVAData.validation_ids`). τ is never chosen on test.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from .. import paper
from ..ava import AVAData, load_ava
from ..data import sha256_fingerprint
from ..errors import InputError
from ..submissions import read_submission
from . import PROTOCOLS, ReportedRow, ScoreRequest
from .aadb_protocol import rank_metrics
from .results import Metric, PairedData, Result, make_result

#: The paper's Table 3 on the real AVA, for the leaderboard (accuracy as a fraction).
REPORTED: tuple[ReportedRow, ...] = tuple(
    ReportedRow(name, {"spearman": rho, "accuracy": acc / 100.0}, f"{paper.SOURCE}, Table 3")
    for name, (rho, acc) in paper.TABLE3_AVA.items())


def binary_labels(mean_scores: np.ndarray) -> np.ndarray:
    """AVA's binary labels: high aesthetics when the mean vote exceeds 5 (paper §5.1)."""
    return np.asarray(mean_scores, dtype=float) > paper.AVA_BINARY_THRESHOLD


def choose_threshold(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The τ maximising the accuracy of ``predictions > τ`` against boolean ``labels``; candidates are
    the midpoints between consecutive distinct predictions and one value below them all. Ties go to
    the smallest τ. Returns (τ, accuracy)."""
    x = np.asarray(predictions, dtype=float)
    lab = np.asarray(labels, dtype=bool)
    if x.size == 0 or x.shape != lab.shape:
        raise ValueError("choose_threshold needs aligned, non-empty arrays")
    order = np.argsort(x, kind="stable")
    xs, ls = x[order], lab[order]
    n = x.size
    # cut after position k (items 0..k predicted negative); only between distinct values
    neg_below = np.cumsum(~ls)  # negatives among items 0..k
    pos_total = int(ls.sum())
    pos_below = np.cumsum(ls)
    correct_cut = neg_below + (pos_total - pos_below)  # cut after k
    distinct = np.flatnonzero(xs[1:] != xs[:-1])  # cut after k allowed where xs[k] < xs[k+1]
    cand_correct = np.concatenate(([pos_total], correct_cut[distinct], [n - pos_total]))
    lowest = float(xs[0]) - max(1.0, abs(float(xs[0])))
    if not np.isfinite(lowest):  # scores near -1e308
        lowest = float(np.nextafter(xs[0], -np.inf))
    highest_cut = xs[-1]  # τ = max: everything negative
    lo, hi = xs[distinct], xs[distinct + 1]
    mid = lo / 2.0 + hi / 2.0  # not (lo + hi) / 2, which overflows for scores near 1e308
    mid = np.where((mid >= lo) & (mid < hi), mid, lo)  # rounding must keep lo <= τ < hi
    cand_tau = np.concatenate(([lowest], mid, [highest_cut]))
    best = int(np.argmax(cand_correct))
    return float(cand_tau[best]), float(cand_correct[best] / n)


def accuracy_at(predictions: np.ndarray, labels: np.ndarray, tau: float) -> float:
    """Accuracy of ``predictions > tau`` against boolean labels."""
    x = np.asarray(predictions, dtype=float)
    return float(np.mean((x > tau) == np.asarray(labels, dtype=bool)))


def evaluate(test_truth: pd.Series, test_predictions: pd.Series, validation_truth: pd.Series,
             validation_predictions: pd.Series, *, n_boot: int = 1000, seed: int = 0, fingerprint: str,
             submission_sha256: str, progress: bool = False, details: dict | None = None) -> Result:
    """Score aligned AVA test and validation predictions (the library entry point)."""
    p = PROTOCOLS["ava"]
    val = PairedData.from_series(validation_truth, validation_predictions)
    val_labels = binary_labels(val.truth)
    if val_labels.all() or not val_labels.any():
        raise InputError("the validation set holds only one class (mean vote > 5 or not); cannot choose τ")
    tau, val_acc = choose_threshold(val.predictions, val_labels)
    test = PairedData.from_series(test_truth, test_predictions)
    metrics, extra = rank_metrics(test, n_boot=n_boot, seed=seed, progress=progress)
    metrics["accuracy"] = Metric(accuracy_at(test.predictions, binary_labels(test.truth), tau))
    metrics["validation_accuracy"] = Metric(val_acc)
    info = {**extra, "threshold": tau, "threshold_chosen_on": "validation",
            "label_rule": f"mean vote > {paper.AVA_BINARY_THRESHOLD}", "n_validation": int(val.truth.size),
            "test_positive_share": float(binary_labels(test.truth).mean()), **(details or {})}
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint, submission_sha256=submission_sha256,
                       n_images=int(test.truth.size), seed=seed, n_boot=n_boot, dataset="ava", split="test",
                       details=info, paired=test)


def fingerprint(ava: AVAData) -> str:
    """Fingerprint of what the protocol reads: the test ground truth and the validation ground truth."""
    return sha256_fingerprint(f"{ava.fingerprint('test')}\n{ava.fingerprint('validation')}\n")


def score(request: ScoreRequest) -> Result:
    """Score a test submission and its validation predictions (``request.data``: the AVA folder)."""
    if request.validation is None:
        raise InputError("the ava protocol needs the submitter's validation predictions (--validation FILE)")
    ava = load_ava(request.data)
    test_truth = ava.ground_truth("test")
    val_truth = ava.ground_truth("validation")
    sub = read_submission(request.submission, test_truth.index, max_bytes=request.max_bytes,
                          split_name="AVA standard test list")
    val = read_submission(request.validation, val_truth.index, max_bytes=request.max_bytes,
                          split_name="toolkit's AVA validation set")
    combined = sha256_fingerprint(f"{sub.sha256}\n{val.sha256}\n")
    return evaluate(test_truth, sub.scores, val_truth, val.scores, n_boot=request.n_boot, seed=request.seed,
                    fingerprint=fingerprint(ava), submission_sha256=combined, progress=request.progress,
                    details={"test_submission_sha256": sub.sha256, "validation_submission_sha256": val.sha256})
