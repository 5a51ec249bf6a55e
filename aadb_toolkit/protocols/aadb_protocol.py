"""The ``aadb`` protocol (paper Table 2): Spearman ρ between the submission's scores and the mean
rating on AADB test, with a seeded percentile-bootstrap 95% confidence interval (resampling images),
plus Pearson r and Kendall τ-b."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .. import paper
from ..data import AADBData
from ..errors import InputError, SourceError
from ..submissions import accept, read_submission
from . import PROTOCOLS, ReportedRow, layout_hints
from ._ranking import pearson, spearman_ci
from .results import Metric, PairedData, Result, make_result

CI_LEVEL = 0.95
#: The paper's Table 2 on the real AADB, for the leaderboard.
REPORTED: tuple[ReportedRow, ...] = tuple(ReportedRow(name, {"spearman": rho}, f"{paper.SOURCE}, Table 2")
                                          for name, rho in paper.TABLE2_AADB_RHO.items())


def rank_metrics(truth: pd.Series | PairedData, predictions: pd.Series | None = None, *, n_boot: int, seed: int,
                 progress: bool = False) -> tuple[dict[str, Metric], dict[str, int]]:
    """Spearman ρ (+ bootstrap CI), Pearson r and Kendall τ-b of predictions against truth (two
    Series over the same image ids, or one :class:`PairedData`); also the count of degenerate
    bootstrap resamples."""
    from scipy import stats

    paired = truth if isinstance(truth, PairedData) else PairedData.from_series(truth, predictions)
    y, x = paired.truth, paired.predictions
    rho, lo, hi, n_deg = spearman_ci(y, x, n_boot=n_boot, seed=seed, level=CI_LEVEL, progress=progress)
    tau = stats.kendalltau(x, y).statistic
    metrics = {
        "spearman": Metric(rho, lo, hi, CI_LEVEL if n_boot else None),
        "pearson": Metric(pearson(x, y)),
        "kendall": Metric(float(tau)),
    }
    return metrics, {"n_degenerate_resamples": n_deg}


def checks(data: AADBData, protocol: str = "aadb") -> dict[str, Any]:
    """What an AADB-test submission is checked against (a file or predictions in memory alike)."""
    return dict(expected_ids=ground_truth(data).index, split_name=test_split_name(data),
                other_splits=other_split_ids(data), other_layouts=layout_hints(protocol))


def read_files(data: AADBData, submission: Path, *, max_bytes: int) -> dict[str, Any]:
    """The submission file, read and checked (for :func:`aadb_toolkit.protocols.score_submission`)."""
    return {"predictions": read_submission(submission, max_bytes=max_bytes, **checks(data))}


def evaluate(data: AADBData, predictions: Any, *, n_boot: int = 1000, seed: int = 0,
             progress: bool = False) -> Result:
    """Score predictions of AADB test (``image_id,score`` as a DataFrame, a Series indexed by
    image_id, an array in the split's order, or a checked submission); the data's provenance
    marks the result synthetic where the data was."""
    p = PROTOCOLS["aadb"]
    truth = ground_truth(data)
    sub = accept(predictions, **checks(data))
    paired = PairedData.from_series(truth, sub.scores)
    metrics, details = rank_metrics(paired, n_boot=n_boot, seed=seed, progress=progress)
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=data.fingerprint("test"), submission_sha256=sub.sha256,
                       n_images=int(truth.size), seed=seed, n_boot=n_boot, dataset="aadb", split="test",
                       details={**details, "ground_truth": "score_mean"},
                       paired=paired, provenance=data.provenance)


def ground_truth(data: AADBData) -> pd.Series:
    """Ground truth of AADB test: the mean rating (1–5) per image, indexed by image_id. An AVA
    folder is refused (the aadb, human and cross-dataset protocols read AADB here; AVA's mean votes
    are on 1–10 and its results would be labelled AADB)."""
    if data.provenance.kind == "ava":
        raise InputError(f"{data.origin} is an AVA folder; this protocol scores AADB there (score AVA with "
                         "--protocol ava, or give it to cross-dataset as --ava)", field="--data")
    test = data.split("test")
    if test.empty:
        raise SourceError(f"{data.origin}: the test split is empty")
    return pd.Series(test["score_mean"].to_numpy(dtype=float), index=test["image_id"].astype(str), name="score_mean")


def other_split_ids(data: AADBData, split: str = "test") -> dict[str, str]:
    """image_id → split of the images outside ``split`` (to name wrong-split submissions as such)."""
    other = data.images[data.images["split"] != split]
    return dict(zip(other["image_id"].astype(str), other["split"].astype(str)))


def test_split_name(data: AADBData) -> str:
    """How scorer messages name the test split: "AADB test split", or "synthetic AADB test split"."""
    return ("synthetic " if data.provenance.synthetic else "") + "AADB test split"
