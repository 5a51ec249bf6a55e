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

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from typing import Any, Mapping

from .. import ava, paper
from .._jsonfile import TOO_DEEP, parse_json_object
from .._registry import did_you_mean
from ..data import AADBData, sha256_fingerprint
from ..errors import InputError, quote
from ..submissions import Problem, Submission, SubmissionError, accept, read_submission
from . import PROTOCOLS, ReportedRow
from . import aadb_protocol, ava_protocol
from ._ranking import bootstrap_spearman, spearman_ci
from .aadb_protocol import CI_LEVEL
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
        doc = None if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read cross-dataset manifest: {exc}", file=str(path)) from exc
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        raise InputError(f"cannot read cross-dataset manifest: {TOO_DEEP}", file=str(path)) from None
    if doc is None:  # JSON read from the bytes: UTF-8 with or without a BOM, as the TOML
        doc = parse_json_object(raw, file=str(path), what="cross-dataset manifest")
    preds = doc.get("predictions")
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


def _checks(data: AADBData, ava_data: AADBData) -> dict[str, dict[str, Any]]:
    """Per test set, what its predictions are checked against (a file or predictions in memory)."""
    return {"aadb": aadb_protocol.checks(data, "cross-dataset"), "ava": ava_protocol.checks(ava_data, "test",
                                                                                           "cross-dataset")}


def evaluate(data: AADBData, predictions: Mapping[str, Any], *, ava_data: AADBData, n_boot: int = 1000,
             seed: int = 0, progress: bool = False) -> Result:
    """Score the four cells: ``predictions`` maps cell ``"train->test"`` to predictions over that
    test set (as the aadb protocol takes them); ``data`` is AADB and ``ava_data`` the AVA source."""
    p = PROTOCOLS["cross-dataset"]
    if not isinstance(predictions, Mapping) or set(predictions) != set(CELLS):
        got = sorted(predictions) if isinstance(predictions, Mapping) else type(predictions).__name__
        raise InputError(f"cross-dataset predictions map each of {', '.join(CELLS)} to predictions; got {got}")
    checks = _checks(data, ava_data)
    subs: dict[str, Submission] = {c: accept(predictions[c], **checks[c.split("->")[1]]) for c in CELLS}
    truths = {"aadb": aadb_protocol.ground_truth(data), "ava": ava_protocol.ground_truth(ava_data, "test")}
    preds = {c: sub.scores for c, sub in subs.items()}
    metrics: dict[str, Metric] = {}
    cells = {}
    for i, cell in enumerate(CELLS):
        test = cell.split("->")[1]
        paired = PairedData.from_series(truths[test], preds[cell])
        rho, lo, hi, n_deg = spearman_ci(paired.truth, paired.predictions, n_boot=n_boot, seed=seed + i,
                                         level=CI_LEVEL)
        metrics[f"rho[{cell}]"] = Metric(rho, lo, hi, CI_LEVEL if n_boot else None)
        cells[cell] = {"n_images": int(paired.truth.size), "n_degenerate_resamples": n_deg}
    transfer = [metrics["rho[aadb->ava]"].value, metrics["rho[ava->aadb]"].value]
    transfer_ci = _mean_transfer_ci(truths, preds, n_boot, seed)
    metrics["mean_transfer_rho"] = Metric(float(sum(transfer)) / 2.0, *transfer_ci, CI_LEVEL if n_boot else None)
    metrics["mean_in_domain_rho"] = Metric((metrics["rho[aadb->aadb]"].value + metrics["rho[ava->ava]"].value) / 2.0)
    n_images = sum(int(t.size) for t in truths.values())
    hashes = {c: subs[c].sha256 for c in CELLS}
    fp = sha256_fingerprint(f"{data.fingerprint('test')}\n{ava.fingerprint(ava_data, 'test')}\n")
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fp, submission_sha256=sha256_fingerprint(f"{c}\t{hashes[c]}\n" for c in CELLS),
                       n_images=n_images, seed=seed, n_boot=n_boot, dataset="aadb+ava", split="test",
                       provenance=_joint_provenance(data, ava_data),
                       details={"cells": cells, "bootstrap_seed_per_cell": "seed + cell index",
                                "submission_sha256_per_cell": hashes})


def _joint_provenance(data: AADBData, ava_data: AADBData):
    """The AADB source's provenance, synthetic when either source is (a result on any synthetic data
    is a synthetic result)."""
    import dataclasses

    synthetic = bool(data.provenance.synthetic or ava_data.provenance.synthetic)
    return dataclasses.replace(data.provenance, synthetic=synthetic)


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


def read_files(data: AADBData, submission: Path, *, ava_data: AADBData, max_bytes: int) -> dict[str, Any]:
    """The manifest and its four files, read and checked; every problem of every file is reported
    at once (nothing is scored if any is found)."""
    files = read_manifest(submission)
    checks = _checks(data, ava_data)
    preds: dict[str, Submission] = {}
    problems: list[Problem] = []
    for cell, f in files.items():
        try:
            preds[cell] = read_submission(f, max_bytes=max_bytes, **checks[cell.split("->")[1]])
        except SubmissionError as exc:
            problems.extend(Problem(f"[{cell}] {f.name}: {p}") for p in exc.problems)
        except InputError as exc:
            problems.append(Problem(f"[{cell}] {exc}"))
    if problems:
        raise SubmissionError(str(submission), problems)
    return {"predictions": preds, "ava_data": ava_data}
