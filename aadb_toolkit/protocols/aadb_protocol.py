"""The ``aadb`` protocol (paper Table 2): Spearman ρ between the submission's scores and the mean
rating on AADB test, with a seeded percentile-bootstrap 95% confidence interval (resampling images),
plus Pearson r and Kendall τ-b."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from .. import paper, sources
from ..data import Provenance
from ..submissions import read_submission
from . import PROTOCOLS, ReportedRow, ScoreRequest
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


def evaluate(truth: pd.Series, predictions: pd.Series, *, n_boot: int = 1000, seed: int = 0,
             fingerprint: str, submission_sha256: str, progress: bool = False,
             provenance: Provenance | None = None) -> Result:
    """Score aligned predictions against AADB test ground truth (the library entry point); the data's
    ``provenance`` marks the result synthetic where the data was."""
    p = PROTOCOLS["aadb"]
    paired = PairedData.from_series(truth, predictions)
    metrics, details = rank_metrics(paired, n_boot=n_boot, seed=seed, progress=progress)
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint, submission_sha256=submission_sha256,
                       n_images=int(truth.size), seed=seed, n_boot=n_boot, dataset="aadb", split="test",
                       details={**details, "ground_truth": "score_mean"},
                       paired=paired, provenance=provenance)


def ground_truth(data: sources.AADBData) -> pd.Series:
    """Ground truth of AADB test: the mean rating (1–5) per image, indexed by image_id."""
    test = data.split("test")
    if test.empty:
        raise sources.SourceError(f"{data.origin}: the test split is empty")
    return pd.Series(test["score_mean"].to_numpy(dtype=float), index=test["image_id"].astype(str), name="score_mean")


def other_split_ids(data: sources.AADBData, split: str = "test") -> dict[str, str]:
    """image_id → split of the images outside ``split`` (to name wrong-split submissions as such)."""
    other = data.images[data.images["split"] != split]
    return dict(zip(other["image_id"].astype(str), other["split"].astype(str)))


def score(request: ScoreRequest) -> Result:
    """Score a submission file on AADB test (``request.data`` is any source ``sources.load`` reads)."""
    data = sources.load(request.data)
    truth = ground_truth(data)
    sub = read_submission(request.submission, truth.index, max_bytes=request.max_bytes,
                          split_name=test_split_name(data), other_splits=other_split_ids(data))
    return evaluate(truth, sub.scores, n_boot=request.n_boot, seed=request.seed,
                    fingerprint=data.fingerprint("test"), submission_sha256=sub.sha256, progress=request.progress,
                    provenance=data.provenance)


def test_split_name(data: sources.AADBData) -> str:
    """How scorer messages name the test split: "AADB test split", or "synthetic AADB test split"."""
    return ("synthetic " if data.provenance.synthetic else "") + "AADB test split"
