"""Shared fixtures; the data builder lives in ``tiny_data.py`` (importable: ``tests`` is on the
pytest ``pythonpath``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_data import make_tiny_curated


@pytest.fixture(scope="session")
def tiny_curated(tmp_path_factory) -> Path:
    """A curated folder of 20 batches (200 images, 1,000 ratings); treat it as read-only."""
    return make_tiny_curated(tmp_path_factory.mktemp("tiny"), n_batches=20, seed=0)


@pytest.fixture(autouse=True)
def _private_rater_key(tmp_path_factory, monkeypatch):
    """Tests never create or read the user's own rater key (~/.config/aadb_toolkit/rater.key):
    unless a test sets its own, the anonymization key lives in this session's temporary folder."""
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(tmp_path_factory.getbasetemp() / "rater.key"))
