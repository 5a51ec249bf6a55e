"""How numbers are printed on consoles, boards and tables (one rule each): counts as integers,
p-values with a floor, metrics with a fixed number of decimals."""

from __future__ import annotations

import math

#: Metrics whose name starts with this are counts and print as integers.
COUNT_PREFIX = "n_"
#: p-values below this print as ``< 0.001``: the tests' resolution says no more.
P_FLOOR = 0.001


def is_count(name: str) -> bool:
    """Whether a metric called ``name`` is a count (``n_images``, ``n_raters_k10``)."""
    return name.startswith(COUNT_PREFIX)


def format_metric(name: str, value: float | None, digits: int | None = 4) -> str:
    """A metric value as text: a count as an integer, else ``digits`` decimals (``None``: full
    precision, the shortest text that reads back as the same float); ``n/a`` when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    v = float(value)
    if is_count(name) and v.is_integer():
        return str(int(v))
    return repr(v) if digits is None else f"{v:.{digits}f}"


def format_p(p: float | None) -> str:
    """A p-value as text: three significant digits, and ``< 0.001`` below :data:`P_FLOOR`."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.3g}"
