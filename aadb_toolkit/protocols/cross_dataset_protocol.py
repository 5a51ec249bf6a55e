"""The ``cross-dataset`` protocol (paper Table 7): a 2×2 of training set × test set, A, B ∈ {AADB,
AVA}, from four prediction files named in a small manifest (TOML or JSON; paths relative to it)::

    # cross_dataset.toml
    [predictions]
    "aadb->aadb" = "trained_on_aadb__aadb_test.csv"   # model trained on AADB, scored on AADB test
    "aadb->ava"  = "trained_on_aadb__ava_test.csv"
    "ava->aadb"  = "trained_on_ava__aadb_test.csv"
    "ava->ava"   = "trained_on_ava__ava_test.csv"

Each file is a normal submission for its test set (AADB test split, AVA standard test list).
Metrics: Spearman ρ (bootstrap CI) per cell, and the main metric ``mean_transfer_rho``, the mean of
the two off-diagonal (cross-dataset) cells.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paper, sources
from ..ava import load_ava
from .._registry import did_you_mean
from ..data import Provenance, sha256_fingerprint
from ..errors import InputError, quote
from ..submissions import Problem, SubmissionError, read_submission
from . import PROTOCOLS, ReportedRow, ScoreRequest
from ._ranking import bootstrap_spearman, spearman_ci
from .aadb_protocol import CI_LEVEL, ground_truth, test_split_name
from .results import Metric, PairedData, Result, make_result

DATASETS: tuple[str, ...] = ("aadb", "ava")
CELLS: tuple[str, ...] = tuple(f"{a}->{b}" for a in DATASETS for b in DATASETS)
#: The paper's Table 7, for the leaderboard.
REPORTED: tuple[ReportedRow, ...] = (ReportedRow(
    "Reg+Rank+Att+Cont (paper)",
    {**{f"rho[{a}->{b}]": v for (a, b), v in paper.TABLE7_CROSS.items()},
     "mean_transfer_rho": (paper.TABLE7_CROSS[("aadb", "ava")] + paper.TABLE7_CROSS[("ava", "aadb")]) / 2,
     "mean_in_domain_rho": (paper.TABLE7_CROSS[("aadb", "aadb")] + paper.TABLE7_CROSS[("ava", "ava")]) / 2},
    f"{paper.SOURCE}, Table 7"),)


def read_manifest(path: str | Path) -> dict[str, Path]:
    """Read a cross-dataset manifest (TOML, or JSON when it ends in ``.json``): cell → file path."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read cross-dataset manifest: {exc}", file=str(path)) from exc
    preds = doc.get("predictions") if isinstance(doc, dict) else None
    if not isinstance(preds, dict):
        raise InputError("manifest needs a [predictions] table mapping 'train->test' to a CSV file, for "
                         f"{', '.join(CELLS)}", file=str(path))
    problems = []
    for key in preds:
        if key not in CELLS:
            hint = did_you_mean(key, CELLS, n=1, quote=True)
            problems.append(f"unknown cell {quote(key)}" + (f" ({hint})" if hint else ""))
        elif not isinstance(preds[key], str):
            problems.append(f"cell {quote(key)}: expected a file path, found {type(preds[key]).__name__}")
        elif _outside_folder(path.parent, preds[key]):
            problems.append(f"cell {quote(key)}: {quote(preds[key])} is not inside the manifest's folder "
                            "(give a relative path without '..')")
    missing = [c for c in CELLS if c not in preds]
    if missing:
        problems.append(f"missing cell(s): {', '.join(missing)}")
    if problems:
        raise InputError("; ".join(problems), file=str(path), field="predictions")
    return {c: (path.parent / preds[c]) for c in CELLS}


def _outside_folder(folder: Path, name: str) -> bool:
    """True when ``name`` (relative to the manifest's folder) is empty, absolute, or resolves outside
    that folder ('..', symlinks): a scorer run on a server must not read, and echo lines of, other files."""
    if not name.strip() or Path(name).is_absolute() or "\\" in name:
        return True
    return not (folder / name).resolve().is_relative_to(folder.resolve())


def evaluate(truths: dict[str, pd.Series], predictions: dict[str, pd.Series], *, n_boot: int = 1000, seed: int = 0,
             fingerprint: str, submission_sha256: str, details: dict | None = None,
             provenance: Provenance | None = None) -> Result:
    """Score four aligned prediction sets; ``truths`` maps test set → ground truth, ``predictions``
    maps cell ``"train->test"`` → predictions over that test set (the library entry point)."""
    p = PROTOCOLS["cross-dataset"]
    metrics: dict[str, Metric] = {}
    cells = {}
    for i, cell in enumerate(CELLS):
        test = cell.split("->")[1]
        paired = PairedData.from_series(truths[test], predictions[cell])
        rho, lo, hi, n_deg = spearman_ci(paired.truth, paired.predictions, n_boot=n_boot, seed=seed + i,
                                         level=CI_LEVEL)
        metrics[f"rho[{cell}]"] = Metric(rho, lo, hi, CI_LEVEL if n_boot else None)
        cells[cell] = {"n_images": int(paired.truth.size), "n_degenerate_resamples": n_deg}
    transfer = [metrics["rho[aadb->ava]"].value, metrics["rho[ava->aadb]"].value]
    transfer_ci = _mean_transfer_ci(truths, predictions, n_boot, seed)
    metrics["mean_transfer_rho"] = Metric(float(sum(transfer)) / 2.0, *transfer_ci, CI_LEVEL if n_boot else None)
    metrics["mean_in_domain_rho"] = Metric((metrics["rho[aadb->aadb]"].value + metrics["rho[ava->ava]"].value) / 2.0)
    n_images = sum(int(t.size) for t in truths.values())
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint, submission_sha256=submission_sha256, n_images=n_images,
                       seed=seed, n_boot=n_boot, dataset="aadb+ava", split="test", provenance=provenance,
                       details={"cells": cells, "bootstrap_seed_per_cell": "seed + cell index", **(details or {})})


def _mean_transfer_ci(truths: dict[str, pd.Series], predictions: dict[str, pd.Series], n_boot: int,
                      seed: int) -> tuple[float | None, float | None]:
    """Percentile CI of the mean of the two transfer cells. They are scored on different test sets
    (independent samples), so draw k of each cell's bootstrap (same seeds as its own CI) are paired."""
    if n_boot == 0:
        return None, None
    draws = []
    for cell in ("aadb->ava", "ava->aadb"):
        paired = PairedData.from_series(truths[cell.split("->")[1]], predictions[cell])
        draws.append(bootstrap_spearman(paired.truth, paired.predictions, n_boot, seed + CELLS.index(cell))[:, 0])
    mean = (draws[0] + draws[1]) / 2.0
    ok = np.isfinite(mean)
    if not ok.any():
        return None, None
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.quantile(mean[ok], [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def score(request: ScoreRequest) -> Result:
    """Score a manifest of four prediction files (``request.data``: the AADB source;
    ``request.ava_data``: the AVA folder)."""
    if request.ava_data is None:
        raise InputError("the cross-dataset protocol needs the AVA folder (--ava DIR)")
    files = read_manifest(request.submission)
    aadb = sources.load(request.data)
    ava = load_ava(request.ava_data)
    truths = {"aadb": ground_truth(aadb), "ava": ava.ground_truth("test")}
    names = {"aadb": test_split_name(aadb), "ava": "AVA standard test list"}
    preds: dict[str, pd.Series] = {}
    hashes: dict[str, str] = {}
    problems: list[Problem] = []
    for cell, f in files.items():
        test = cell.split("->")[1]
        try:
            sub = read_submission(f, truths[test].index, max_bytes=request.max_bytes, split_name=names[test])
        except SubmissionError as exc:
            problems.extend(Problem(f"[{cell}] {f.name}: {p}") for p in exc.problems)
            continue
        except InputError as exc:
            problems.append(Problem(f"[{cell}] {exc}"))
            continue
        preds[cell], hashes[cell] = sub.scores, sub.sha256
    if problems:
        raise SubmissionError(str(request.submission), problems)
    combined = sha256_fingerprint(f"{c}\t{hashes[c]}\n" for c in CELLS)
    fp = sha256_fingerprint(f"{aadb.fingerprint('test')}\n{ava.fingerprint('test')}\n")
    return evaluate(truths, preds, n_boot=request.n_boot, seed=request.seed, fingerprint=fp,
                    submission_sha256=combined, details={"submission_sha256_per_cell": hashes},
                    provenance=aadb.provenance)
