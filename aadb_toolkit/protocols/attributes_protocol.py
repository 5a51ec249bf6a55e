"""The ``attributes`` protocol: a model's predictions of the 11 attributes (the predictions the paper
shows in Fig. 1 and Fig. 7), scored per attribute against the attribute's mean vote on AADB test.

A submission has one row per (test image, attribute): ``image_id,attribute,score``. Per attribute,
Spearman ρ with a percentile bootstrap 95% CI; the main metric ``mean_rho`` is the mean over the
attributes, with a CI from the same resamples of images (every attribute of a resample is computed
on the same images, so the attributes' correlation is kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from .._ranks import spearman
from ..data import AADBData, sha256_fingerprint
from ..errors import SourceError
from ..submissions import accept, read_submission
from . import PROTOCOLS, layout_hints
from ._ranking import BootstrapSpearman
from .aadb_protocol import CI_LEVEL, other_split_ids, test_split_name
from .results import Metric, Result, make_result

#: The columns of an attributes submission.
HEADER: tuple[str, ...] = PROTOCOLS["attributes"].header


def ground_truth(data: AADBData) -> pd.DataFrame:
    """The attributes' mean votes of AADB test: one row per image (index image_id), one column per
    attribute (in :data:`aadb_toolkit.schema.ATTRIBUTES` order)."""
    test = data.split("test")
    if test.empty:
        raise SourceError(f"{data.origin}: the test split is empty")
    missing = [a for a in schema.ATTRIBUTES if a not in test.columns]
    if missing:
        raise SourceError(f"{data.origin}: the images table has no attribute column(s) {missing}")
    truth = test.set_index(test["image_id"].astype(str))[list(schema.ATTRIBUTES)].astype(float)
    blank = truth.isna().any(axis=1)
    if blank.any():
        raise SourceError(f"{data.origin}: {int(blank.sum())} test image(s) have no mean for some attribute, "
                          f"e.g. {truth.index[blank][0]!r}")
    return truth


def keys(data: AADBData) -> list[str]:
    """The submission's row keys ``image_id,attribute``, image by image in the split's order."""
    return [f"{i},{a}" for i in ground_truth(data).index for a in schema.ATTRIBUTES]


def checks(data: AADBData) -> dict[str, Any]:
    """What an attributes submission is checked against (a file or predictions in memory alike)."""
    others = {f"{i},{a}": s for i, s in other_split_ids(data).items() for a in schema.ATTRIBUTES}
    return dict(expected_ids=keys(data), split_name=test_split_name(data), header=HEADER,
                unit="(image, attribute) row", other_splits=others, other_layouts=layout_hints("attributes"))


def read_files(data: AADBData, submission: Path, *, max_bytes: int) -> dict[str, Any]:
    """The submission file, read and checked."""
    return {"predictions": read_submission(submission, max_bytes=max_bytes, **checks(data))}


def evaluate(data: AADBData, predictions: Any, *, n_boot: int = 1000, seed: int = 0,
             progress: bool = False) -> Result:
    """Score attribute predictions of AADB test (``image_id,attribute,score`` as a DataFrame, an
    array in the order of :func:`keys`, or a checked submission)."""
    p = PROTOCOLS["attributes"]
    truth = ground_truth(data)
    sub = accept(predictions, **checks(data))
    pred = sub.scores.to_numpy(dtype=float).reshape(len(truth), len(schema.ATTRIBUTES))
    y = truth.to_numpy(dtype=float)
    rhos = np.array([spearman(pred[:, j], y[:, j], min_n=2)[0] for j in range(y.shape[1])])
    rhos[_ranks_nothing(pred) & (np.ptp(y, axis=0) > 0)] = 0.0
    draws = _joint_bootstrap(y, pred, n_boot, seed, progress)
    level = CI_LEVEL if n_boot else None
    finite = np.isfinite(draws)
    n_defined = finite.sum(axis=1)
    mean_draws = np.where(n_defined > 0, np.where(finite, draws, 0.0).sum(axis=1) / np.maximum(n_defined, 1), np.nan)
    metrics = {p.main_metric: Metric(_mean(rhos), *_interval(mean_draws), level)}
    for j, a in enumerate(schema.ATTRIBUTES):
        metrics[f"rho[{a}]"] = Metric(float(rhos[j]), *_interval(draws[:, j]), level)
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint(data), submission_sha256=sub.sha256, n_images=len(truth),
                       seed=seed, n_boot=n_boot, dataset="aadb", split="test", provenance=data.provenance,
                       details={"attributes": list(schema.ATTRIBUTES), "ground_truth": "attribute mean vote",
                                "main_metric_rule": "mean over the attributes of rho (rho 0 where the predictions "
                                                    "are constant; undefined ones, constant ground truth, left out)",
                                "n_undefined": int(np.isnan(rhos).sum())})


def _ranks_nothing(pred: np.ndarray) -> np.ndarray:
    """Per attribute: True where the predictions give every image one value. Such a column ranks
    nothing and scores ρ 0 (as piaa scores a constant episode), instead of an undefined ρ that the
    mean would leave out: otherwise one good column and ten constant ones would score 1.0."""
    return np.ptp(pred, axis=0) == 0


def _mean(values: np.ndarray) -> float | None:
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if ok.size else None


def _joint_bootstrap(y: np.ndarray, pred: np.ndarray, n_boot: int, seed: int, progress: bool) -> np.ndarray:
    """ρ of every attribute on ``n_boot`` seeded resamples of the images, the same images for every
    attribute: array n_boot × n_attributes (NaN where a resample is constant in a variable)."""
    out = np.full((n_boot, y.shape[1]), np.nan)
    if n_boot == 0 or y.shape[0] < 2:
        return out
    boots = [BootstrapSpearman(y[:, j], pred[:, j]) for j in range(y.shape[1])]
    constant = _ranks_nothing(pred)
    rng = np.random.default_rng(seed)
    from tqdm import tqdm

    for b in tqdm(range(n_boot), desc="bootstrap", unit="resample", disable=None if progress else True):
        counts = np.bincount(rng.integers(0, y.shape[0], size=y.shape[0]), minlength=y.shape[0])
        for j, bs in enumerate(boots):
            out[b, j] = bs.rho_from_counts(counts[bs.base_order()])[0]
        if constant.any():  # ρ 0 where the resample's ground truth varies (else undefined, NaN)
            out[b, constant] = np.where(np.ptp(y[counts > 0][:, constant], axis=0) > 0, 0.0, np.nan)
    return out


def _interval(draws: np.ndarray) -> tuple[float | None, float | None]:
    ok = draws[np.isfinite(draws)] if draws.size else draws
    if ok.size == 0:
        return None, None
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.quantile(ok, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def fingerprint(data: AADBData) -> str:
    """Fingerprint of what the protocol reads: the test images' attribute means."""
    truth = ground_truth(data).sort_index()
    rows = (f"{i}\t" + "\t".join(f"{v:.9f}" for v in r) + "\n" for i, r in zip(truth.index, truth.to_numpy()))
    return sha256_fingerprint(["attributes\n", *rows])
