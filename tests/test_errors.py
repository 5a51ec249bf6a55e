"""errors: how messages quote what a file or a user gave."""

from __future__ import annotations

import pytest

from aadb_toolkit.errors import EXCERPT_CHARS, excerpt, quote

KEY = "903e15cdf356ca1c404f8e9989f15861" * 2  # a generated rater key: 64 hex digits


@pytest.mark.parametrize("text", [KEY, KEY.upper(), "id=" + KEY, "x" * 20 + KEY, KEY[:16]])
def test_a_run_of_hex_digits_is_never_quoted_even_in_part(text):
    """Review 2026-12-04 (afternoon): a style list or a run file that was a link to the rater key
    was quoted in its first 31 characters ("found '903e15cdf356ca1c404f8e9989f1586…'")."""
    shown = excerpt(text)
    assert KEY[:8] not in shown.lower() and KEY[8:16] not in shown.lower()
    assert "hex" in shown and len(shown) <= EXCERPT_CHARS


@pytest.mark.parametrize("text", ["farm1_255_19452343093_8ee7e02e84_b.jpg", "1234567890123456789012",
                                  "deadbeefdeadbeefdeadbeef", "score 7 is out of range", "abc123"])
def test_ordinary_values_are_quoted_as_before(text):
    assert excerpt(text) == (text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 1] + "…")


def test_quote_redacts_too():
    assert KEY[:10] not in quote(KEY)
