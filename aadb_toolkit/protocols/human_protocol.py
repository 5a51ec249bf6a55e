"""The ``human`` protocol (paper Table 6 and beyond): the submission against each AADB rater.

For every worker: the worker's Spearman ρ against the per-image mean score over the test images
the worker rated (the worker's own rating included, as in the paper), and the model's ρ against the
same mean on the same images. Reported: how many workers the model beats (model ρ > worker ρ), and,
for the paper's workload groups (workers who rated > 0 / > 100 / > 200 images in the whole data
set), the group's mean ρ with a bootstrap CI, the model's mean ρ on those workers' images, and
where the model's overall test ρ falls against the group mean. The per-worker statistics come from
:mod:`aadb_toolkit.human` (one implementation for the report and the benchmark).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pathlib import Path
from typing import Any

from .. import paper
from ..data import AADBData, sha256_fingerprint
from ..submissions import accept, read_submission
from . import PROTOCOLS, ReportedRow
from ._ranking import spearman_ci
from .aadb_protocol import CI_LEVEL, checks, ground_truth
from .results import Metric, PairedData, Result, make_result

#: Workload groups of paper Table 6: workers who rated more than this many images.
THRESHOLDS: tuple[int, ...] = tuple(sorted(paper.TABLE6_HUMAN))
#: The paper's Table 6 on the real AADB, for the leaderboard.
REPORTED: tuple[ReportedRow, ...] = (
    *(ReportedRow(f"human raters who rated > {t} images ({n} workers, mean ρ)", {f"workers_gt{t}_mean_rho": rho},
                  f"{paper.SOURCE}, Table 6") for t, (n, rho) in paper.TABLE6_HUMAN.items()),
    ReportedRow("Reg+Rank+Att+Cont (paper's best model)", {"spearman": paper.TABLE6_OUR_BEST_RHO},
                f"{paper.SOURCE}, Table 6"),
)


def read_files(data: AADBData, submission: Path, *, max_bytes: int) -> dict[str, Any]:
    """The submission file, read and checked as the aadb protocol's (AADB test, ``image_id,score``)."""
    return {"predictions": read_submission(submission, max_bytes=max_bytes, **checks(data, "human"))}


def evaluate(data: AADBData, predictions: Any, *, n_boot: int = 1000, seed: int = 0, progress: bool = False,
             thresholds: tuple[int, ...] = THRESHOLDS) -> Result:
    """Score AADB-test predictions (as the aadb protocol takes them) against individual raters."""
    from .. import human

    p = PROTOCOLS["human"]
    truth = ground_truth(data)
    sub = accept(predictions, **checks(data, "human"))
    predictions, submission_sha256 = sub.scores, sub.sha256
    table = human.worker_table(data.ratings, data.images, scope="test", count_scope="all",
                               predictions=predictions)
    both = table[np.isfinite(table["rho"].to_numpy(dtype=float))]
    # a worker whose images all got one prediction: the model ranks nothing there, ρ 0 (as in piaa)
    beaten = np.nan_to_num(both["model_rho"].to_numpy(dtype=float), nan=0.0) > both["rho"].to_numpy(dtype=float)
    model_rho, rho_lo, rho_hi, _ = spearman_ci(truth.to_numpy(dtype=float),
                                               predictions.reindex(truth.index).to_numpy(dtype=float),
                                               n_boot=n_boot, seed=seed, level=CI_LEVEL)
    summary = human.threshold_summary(table, thresholds, n_boot=n_boot, seed=seed)
    level = CI_LEVEL if n_boot else None
    metrics: dict[str, Metric] = {
        "spearman": Metric(model_rho, rho_lo, rho_hi, level),
        "share_beaten": Metric(float(beaten.mean()) if beaten.size else None, *_share_ci(beaten, n_boot, seed), level),
        "n_beaten": Metric(float(beaten.sum())),
        "n_workers_compared": Metric(float(beaten.size)),
    }
    groups = []
    for _, row in summary.iterrows():
        t = int(row["min_images"])
        in_group = both["n_images"].to_numpy() > t
        g_beaten = beaten[in_group]
        mean_rho = float(row["mean_rho"])
        metrics[f"workers_gt{t}_mean_rho"] = Metric(mean_rho, _f(row["ci_low"]), _f(row["ci_high"]),
                                                    0.95 if n_boot else None)
        metrics[f"workers_gt{t}_share_beaten"] = Metric(float(g_beaten.mean()) if g_beaten.size else None,
                                                        *_share_ci(g_beaten, n_boot, seed + t + 1), level)
        groups.append({
            "min_images": t, "n_workers": int(row["n_workers"]), "mean_rho": mean_rho,
            "ci_low": _f(row["ci_low"]), "ci_high": _f(row["ci_high"]),
            "mean_model_rho_same_images": _f(row["mean_model_rho"]),
            "n_compared": int(g_beaten.size), "n_beaten": int(g_beaten.sum()),
            "model_rho_minus_group_mean": model_rho - mean_rho if np.isfinite(mean_rho) else None,
            "model_position": ("above" if model_rho > mean_rho else "below") if np.isfinite(mean_rho) else "undefined",
            "paper_n_workers": paper.TABLE6_HUMAN.get(t, (None, None))[0],
            "paper_mean_rho": paper.TABLE6_HUMAN.get(t, (None, None))[1],
        })
    workers = [{k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
               for rec in table[["rater_id", "n_images", "n_scope", "rho", "rho_status", "model_rho"]].to_dict("records")]
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint(data), submission_sha256=submission_sha256,
                       n_images=int(truth.size), seed=seed, n_boot=n_boot, dataset="aadb", split="test", provenance=data.provenance,
                       details={"groups": groups, "workers": workers, "rater_count_scope": "all",
                                "rho_scope": "test", "worker_rating_in_mean": True,
                                "n_workers_total": int(len(table))},
                       paired=PairedData.from_series(truth, predictions))


def fingerprint(data: AADBData) -> str:
    """Fingerprint of what the protocol reads: the AADB test ground truth and every rating (the
    workload groups count ratings over the whole data set)."""
    r = data.ratings[["image_id", "rater_id", "score"]].astype({"image_id": str, "rater_id": str})
    r = r.sort_values(["image_id", "rater_id", "score"], kind="stable")
    rows = (f"{image_id}\t{rater_id}\t{int(s)}\n" for image_id, rater_id, s in r.itertuples(index=False, name=None))
    return sha256_fingerprint(itertools.chain([f"human\n{data.fingerprint('test')}\n"], rows))


def _share_ci(beaten: np.ndarray, n_boot: int, seed: int) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the share of workers beaten, resampling the compared workers."""
    if n_boot == 0 or beaten.size == 0:
        return None, None
    gen = np.random.default_rng(seed)
    shares = beaten[gen.integers(0, beaten.size, size=(n_boot, beaten.size))].mean(axis=1)
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.quantile(shares, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _f(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None
