"""The ``ava`` protocol (paper Table 3): Spearman ρ on the AVA standard test list (ground truth: the
mean vote from ``AVA.txt``) and binary accuracy, labels ``mean vote > 5``, of ``score > τ`` where τ
maximises accuracy on the submitter's predictions for the toolkit's AVA validation set
(the ``validation`` split of an AVA source, :func:`aadb_toolkit.ava.is_validation_id`). τ is never
chosen on test. The data is an AVA folder loaded by ``sources.load``, with its provenance: a
synthetic AVA scores as ``synthetic-ava``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import ava, paper
from ..data import AADBData, sha256_fingerprint
from ..errors import InputError, SourceError
from ..submissions import Submission, accept, read_submission
from . import PROTOCOLS, ReportedRow, layout_hints
from .aadb_protocol import other_split_ids, rank_metrics
from .results import Metric, PairedData, Result, make_result

#: The paper's Table 3 on the real AVA, for the leaderboard (accuracy as a fraction, with the paper's digits).
REPORTED: tuple[ReportedRow, ...] = tuple(
    ReportedRow(name, {"spearman": rho, "accuracy": paper.percent_as_fraction(acc)}, f"{paper.SOURCE}, Table 3")
    for name, (rho, acc) in paper.TABLE3_AVA.items())


def binary_labels(mean_scores: np.ndarray) -> np.ndarray:
    """AVA's binary labels: high aesthetics when the mean vote exceeds 5 (paper §5.1)."""
    return np.asarray(mean_scores, dtype=float) > paper.AVA_BINARY_THRESHOLD


def choose_threshold(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The τ maximising the accuracy of ``predictions > τ`` against boolean ``labels``; candidates are
    the midpoints between consecutive distinct predictions, one value below them all (every image
    positive) and the largest prediction (every image negative). Ties go to the smallest τ.
    Returns (τ, accuracy)."""
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


#: How messages name the two splits the protocol reads.
SPLIT_NAMES: dict[str, str] = {"test": "AVA standard test list", "validation": "toolkit's AVA validation set"}


def ground_truth(data: AADBData, split: str) -> pd.Series:
    """The mean vote (1..10) of each image of an AVA source's split, indexed by image_id."""
    if data.provenance.kind != "ava":
        raise InputError(f"{data.origin}: the ava protocol scores an AVA folder (with AVA.txt); this is a "
                         f"{data.provenance.kind} AADB source", field="--data")
    rows = data.split(split)
    if rows.empty:
        raise SourceError(f"{data.origin}: the AVA {split} split is empty")
    return pd.Series(rows["score_mean"].to_numpy(dtype=float), index=rows["image_id"].astype(str), name="mean_score")


def checks(data: AADBData, split: str, protocol: str = "ava") -> dict[str, Any]:
    """What predictions of an AVA split are checked against (a file or predictions in memory alike)."""
    name = SPLIT_NAMES[split] + (" (synthetic AVA)" if data.provenance.synthetic else "")
    return dict(expected_ids=ground_truth(data, split).index, split_name=name, other_layouts=layout_hints(protocol),
                other_splits=other_split_ids(data, split))


def read_files(data: AADBData, submission: Path, *, validation: Path, max_bytes: int) -> dict[str, Any]:
    """The test submission and the validation predictions, read and checked."""
    return {"predictions": read_submission(submission, max_bytes=max_bytes, **checks(data, "test")),
            "validation": read_submission(validation, max_bytes=max_bytes, **checks(data, "validation"))}


def evaluate(data: AADBData, predictions: Any, *, validation: Any, n_boot: int = 1000, seed: int = 0,
             progress: bool = False) -> Result:
    """Score predictions of the AVA standard test list, with the submitter's predictions of the
    validation set (τ is chosen there), each as the aadb protocol takes them."""
    p = PROTOCOLS["ava"]
    test_truth, val_truth = ground_truth(data, "test"), ground_truth(data, "validation")
    sub: Submission = accept(predictions, **checks(data, "test"))
    vsub: Submission = accept(validation, **checks(data, "validation"))
    val = PairedData.from_series(val_truth, vsub.scores)
    val_labels = binary_labels(val.truth)
    if val_labels.all() or not val_labels.any():
        raise InputError("the validation set holds only one class (mean vote > 5 or not); cannot choose τ")
    tau, val_acc = choose_threshold(val.predictions, val_labels)
    test = PairedData.from_series(test_truth, sub.scores)
    metrics, extra = rank_metrics(test, n_boot=n_boot, seed=seed, progress=progress)
    metrics["accuracy"] = Metric(accuracy_at(test.predictions, binary_labels(test.truth), tau))
    metrics["validation_accuracy"] = Metric(val_acc)
    info = {**extra, "threshold": tau, "threshold_chosen_on": "validation",
            "label_rule": f"mean vote > {paper.AVA_BINARY_THRESHOLD}", "n_validation": int(val.truth.size),
            "test_positive_share": float(binary_labels(test.truth).mean()),
            "test_submission_sha256": sub.sha256, "validation_submission_sha256": vsub.sha256}
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint(data), submission_sha256=sha256_fingerprint(
                           f"{sub.sha256}\n{vsub.sha256}\n"),
                       n_images=int(test.truth.size), seed=seed, n_boot=n_boot, dataset="ava", split="test",
                       details=info, paired=test, provenance=data.provenance)


def fingerprint(data: AADBData) -> str:
    """Fingerprint of what the protocol reads: the test ground truth and the validation ground truth."""
    return sha256_fingerprint(f"{ava.fingerprint(data, 'test')}\n{ava.fingerprint(data, 'validation')}\n")
