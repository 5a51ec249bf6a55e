"""The one lookup for every name table of the toolkit (protocols, report kinds, commands,
consistency methods, model heads, loss terms, pair strategies): a name either is in the table or
gets an error that suggests the closest names (``difflib``), as lm-evaluation-harness does."""

from __future__ import annotations

import difflib
from typing import Iterable, Mapping, TypeVar

from .errors import InputError

T = TypeVar("T")
#: How close a name must be to a known one to be suggested (difflib's ratio).
SUGGESTION_CUTOFF = 0.6


def close_matches(name: object, known: Iterable[str], *, n: int = 3, cutoff: float = SUGGESTION_CUTOFF) -> list[str]:
    """Up to ``n`` known names closest to ``name``, best first."""
    return difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)


def did_you_mean(name: object, known: Iterable[str], *, n: int = 3, quote: bool = False,
                 cutoff: float = SUGGESTION_CUTOFF) -> str:
    """``"did you mean a, b?"`` for the names closest to ``name`` (quoted with ``quote``), or ``""``."""
    close = close_matches(name, known, n=n, cutoff=cutoff)
    if not close:
        return ""
    return "did you mean " + ", ".join(repr(c) if quote else c for c in close) + "?"


def lookup(table: Mapping[str, T], name: str, *, what: str, error: type[Exception] = InputError,
           n: int = 3, cutoff: float = SUGGESTION_CUTOFF, **error_fields) -> T:
    """``table[name]``; an unknown name raises ``error`` naming what was looked up, the closest
    known names and all known names."""
    try:
        return table[name]
    except (KeyError, TypeError):
        pass
    hint = did_you_mean(name, table, n=n, cutoff=cutoff)
    message = f"unknown {what} {name!r}" + (f"; {hint}" if hint else "") + f" (known: {', '.join(table)})"
    raise error(message, **error_fields) from None
