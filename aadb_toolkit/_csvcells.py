"""Text cells of the CSV tables people open in a spreadsheet (leaderboards, analysis and report
tables): a cell that a spreadsheet program would run as a formula (``=``, ``+``, ``-``, ``@``, a
leading tab or carriage return) and that is not a number is written with a leading ``'``, which
makes it text. Files that other commands read back (predictions, episodes) are not such tables and
keep their values as they are."""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What a spreadsheet takes for the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """``value``, or for a text cell that would start a formula, ``"'"`` followed by it."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def table_csv(frame: pd.DataFrame, **to_csv: Any) -> str:
    """``frame`` as CSV text (no index; ``to_csv`` passed on) with :func:`csv_safe` applied to its
    column names and to every text cell; numbers are written as pandas writes them."""
    out = frame.rename(columns=lambda c: csv_safe(str(c)))
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(csv_safe)
    return out.to_csv(index=False, **to_csv)
