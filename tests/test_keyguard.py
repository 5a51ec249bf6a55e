"""``_keyguard``: what a curated folder's manifest records of the key, when the manifest is bad."""

from __future__ import annotations

import json

import pytest

from aadb_toolkit import _keyguard, schema


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff", b"{not json", b"[]"],
                         ids=["deep", "not_utf8", "not_json", "array"])
def test_recorded_fingerprints_of_a_manifest_it_cannot_read_are_none(tmp_path, content):
    """Review: a manifest nested deeper than the JSON reader follows was a RecursionError; every way
    the shared reader refuses a file means "no fingerprint recorded" here."""
    (tmp_path / schema.CURATED_MANIFEST).write_bytes(content)
    assert _keyguard.recorded_fingerprints(tmp_path) == ()


def test_recorded_fingerprints_read_a_readable_manifest(tmp_path):
    assert _keyguard.recorded_fingerprints(tmp_path) == ()  # no manifest at all
    (tmp_path / schema.CURATED_MANIFEST).write_text(json.dumps({"key_fingerprint": "0123456789ab"}))
    assert _keyguard.recorded_fingerprints(tmp_path) == ("0123456789ab",)
