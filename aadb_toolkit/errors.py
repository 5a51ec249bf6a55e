"""Errors the toolkit raises for bad input. Each names where the problem is (file, row, field)."""

from __future__ import annotations

import re


class AADBError(Exception):
    """Base class of the toolkit's user-facing errors; the CLI prints them without a traceback."""


class InputError(AADBError, ValueError):
    """Bad input data: the message names the file and, where known, the row and field."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None) -> None:
        self.file, self.row, self.field = file, row, field
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {quote(field)}")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class SourceError(AADBError):
    """A data source (curated folder, published folder, Hub repo id) could not be recognised or read."""


class OutputError(InputError):
    """An output path the toolkit refuses to write, because writing it would lose or expose data
    (a folder the toolkit did not write, an input of the command, a symlink, a key inside it)."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = "--out") -> None:
        super().__init__(message, file=file, field=field)


#: Reports and error messages quote at most this many characters of an input line or value, so a
#: file that is not what it claims to be (a secret behind a symlink, say) is never copied out.
EXCERPT_CHARS = 32


#: A run of hex digits this long, with letters and digits both, is never quoted: a generated rater
#: key is 64 of them, and a file that turns out to hold one (behind a link, say) must not be quoted
#: even in part. Ids, numbers and words are shorter or lack one of the two.
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
HEX_NOT_QUOTED = "<hex, not quoted>"


def _hide_hex(match: re.Match[str]) -> str:
    run = match.group()
    return HEX_NOT_QUOTED if any(c.isdigit() for c in run) and any(c.isalpha() for c in run) else run


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """A short printable prefix of an input text, for reports and errors: characters that are not
    printable (control characters, line breaks) become ``?``, a long run of hex digits (a key's
    shape) becomes :data:`HEX_NOT_QUOTED`, and text longer than ``limit`` characters (never more
    than :data:`EXCERPT_CHARS`) is cut and ends in ``…``."""
    limit = max(1, min(int(limit), EXCERPT_CHARS))
    # the runs are found on a longer prefix, so that one cut by the limit is still recognised
    shown = _HEX_RUN.sub(_hide_hex, str(text)[: 4 * EXCERPT_CHARS])
    cut = "".join(c if c.isprintable() else "?" for c in shown[: limit + 1])
    return cut if len(cut) <= limit else cut[: limit - 1] + "…"


def quote(text: object) -> str:
    """The one way a message repeats file content or a user's value: :func:`excerpt` in quotes
    (at most :data:`EXCERPT_CHARS` characters, unprintable ones as ``?``), so no message copies
    out more than a short, harmless prefix of whatever a file turned out to hold."""
    return repr(excerpt(text))
