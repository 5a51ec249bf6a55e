"""Fixtures of the simulate tests: small releases, written once per session and read only."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from aadb_toolkit.simulate import simulate


def read_amt_csv(path: Path) -> tuple[list[str], list[dict[str, str]], bytes]:
    """The raw CSV with the standard library only (BOM stripped): header, rows, raw bytes."""
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    return header, [dict(zip(header, row)) for row in reader], raw


@pytest.fixture(scope="session")
def amt_csv():
    """The CSV reader above, for tests (conftest modules are not imported directly)."""
    return read_amt_csv


@pytest.fixture(scope="session")
def clean_release(tmp_path_factory):
    """200 images, seed 5, no quirks, 20% random raters."""
    out = tmp_path_factory.mktemp("sim_clean") / "release"
    return simulate(out, n_images=200, seed=5, random_rater_share=0.2)


@pytest.fixture(scope="session")
def quirky_release(tmp_path_factory):
    """300 images, seed 7, with every quirk."""
    out = tmp_path_factory.mktemp("sim_quirks") / "release"
    return simulate(out, n_images=300, seed=7, quirks=True)
