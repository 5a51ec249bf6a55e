"""Fixtures for the curation tests; the independent release writer is in ``curate_release_writer.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # make curate_release_writer importable in any import mode


@pytest.fixture
def key() -> bytes:
    return b"test-key-0123456789abcdef-not-secret"


@pytest.fixture(autouse=True)
def _isolated_key_env(tmp_path, monkeypatch):
    """Never touch the real ~/.config key: point the default key file into the test's folder."""
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(tmp_path / "env-rater.key"))
