"""Escaping of untrusted text in the toolkit's Markdown outputs: characters that could open an
HTML tag, a link, a code span or emphasis, or split a table row are backslash-escaped, so a value
shows as written and can neither inject markup nor break the table it sits in."""

from __future__ import annotations

import re

_ACTIVE = re.compile(r"([\\<>\[\]`|*_])")


def escape(text: object) -> str:
    """``text`` as literal Markdown: ``\\ < > [ ] ` | * _`` backslash-escaped, line breaks as spaces
    (one table cell, one line)."""
    if text is None:
        return ""
    return _ACTIVE.sub(r"\\\1", re.sub(r"[\r\n\t\v\f]+", " ", str(text)))


def code(text: object) -> str:
    """``text`` as an inline code span when that is safe (no backtick, no line break), else escaped."""
    s = "" if text is None else str(text)
    return f"`{s}`" if s and not re.search(r"[`\r\n]", s) else escape(s)
