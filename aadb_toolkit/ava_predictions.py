"""Predictions of trained runs for the AVA benchmarks: the test and validation files the ``ava``
protocol scores (Table 3), and the four cells and manifest of the ``cross-dataset`` protocol
(Table 7). Runs trained on either data set predict either: both load into the same data model."""

from __future__ import annotations

import os
from pathlib import Path

from ._atomic import write_text
from .errors import InputError
from .models import predict, write_predictions
from .sources import AADBData


def write_ava_submission(run: str | os.PathLike[str], data: AADBData, out_dir: str | os.PathLike[str], *,
                         device: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                         progress: bool | None = None) -> tuple[Path, Path]:
    """Predict an AVA source's test and validation splits with a trained run and write the two
    submission CSVs the ``ava`` protocol scores (τ is chosen on the validation file, never on
    test). Returns (test CSV, validation CSV)."""
    out_dir = Path(out_dir)
    paths = []
    for split in ("test", "validation"):
        preds = predict(run, data, split, device=device, cache_dir=cache_dir, progress=progress)
        paths.append(write_predictions(preds, out_dir / f"ava_{split}.csv"))
    return paths[0], paths[1]


def write_cross_dataset_predictions(runs: dict[str, str | os.PathLike[str]], test_sets: dict[str, AADBData],
                                    out_dir: str | os.PathLike[str], *, device: str | None = None,
                                    progress: bool | None = None) -> Path:
    """Predict each test set with each run and write the four files and the manifest the
    ``cross-dataset`` protocol scores (paper Table 7). ``runs`` and ``test_sets`` map "aadb" and
    "ava" to a trained run folder and to loaded data. Returns the manifest's path."""
    out_dir = Path(out_dir)
    expected = {"aadb", "ava"}
    if set(runs) != expected or set(test_sets) != expected:
        raise InputError(f"need a run and a test set for each of {sorted(expected)}; got runs {sorted(runs)}, "
                         f"test sets {sorted(test_sets)}")
    lines = ["[predictions]"]
    for train_on, run in runs.items():
        for test_on, data in test_sets.items():
            preds = predict(run, data, "test", device=device, progress=progress)
            f = write_predictions(preds, out_dir / f"trained_on_{train_on}__{test_on}_test.csv")
            lines.append(f'"{train_on}->{test_on}" = "{f.name}"')
    manifest = out_dir / "cross_dataset.toml"
    write_text(manifest, "\n".join(lines) + "\n")
    return manifest
