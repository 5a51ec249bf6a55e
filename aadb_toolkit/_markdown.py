"""Escaping of untrusted text in the toolkit's Markdown outputs (one rule for every page): the
characters that could open an HTML tag, a link or a code span, or split a table row, are
backslash-escaped, so a value shows as written and can neither inject markup nor break its table."""

from __future__ import annotations

import re

_CELL = re.compile(r"([\\<\[\]`|])")
_TEXT = re.compile(r"([\\<\[\]|])")
_BREAKS = re.compile(r"[\r\n\t\v\f]+")
#: Characters no output shows as they are: C0/C1 controls (NUL included; line breaks aside) and the
#: bidirectional overrides that make text read differently from what it is.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: What an unprintable character is shown as.
REPLACEMENT = "\ufffd"


def printable(text: object) -> str:
    """``text`` with every control character (NUL, escape, bidi overrides; not line breaks) replaced
    by U+FFFD, so that no page, table or CSV cell carries them."""
    return "" if text is None else _UNPRINTABLE.sub(REPLACEMENT, str(text))


def escape(text: object) -> str:
    """``text`` as one inert Markdown table cell or inline value: ``\\ < [ ] ` |`` backslash-escaped,
    line breaks as spaces."""
    return "" if text is None else _CELL.sub(r"\\\1", _BREAKS.sub(" ", printable(text)))


def escape_text(text: object) -> str:
    """A paragraph, note or heading the toolkit wrote around data: like :func:`escape`, but its own
    code spans (backticks) stay code spans."""
    return "" if text is None else _TEXT.sub(r"\\\1", _BREAKS.sub(" ", printable(text)))


def code(text: object) -> str:
    """``text`` as an inline code span when that is safe (no backtick, no line break), else escaped."""
    s = "" if text is None else str(text)
    return f"`{s}`" if s and not re.search(r"[`\r\n]", s) else escape(s)
