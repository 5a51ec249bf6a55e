"""Deterministic matplotlib figures rendered to PNG bytes with the Agg canvas, shared by the
analyses and the reports. No timestamps or version strings are written into the PNG metadata.

Figures are built as :class:`matplotlib.figure.Figure` objects on their own Agg canvas, without
``pyplot``: importing pyplot costs about half a second (it sets up the interactive-backend
machinery and its global figure manager), which a command that writes two histograms should not
pay, and a figure that no global manager holds needs no closing.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

#: 200 dpi: a 7-inch figure is 1,400 px wide, sharp at the report page's full width.
_DPI = 200


def figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    """A new figure and axes with the toolkit's plain style, on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    return fig, ax


#: Margins of a single 6 × 3.6-inch plot with a title and axis labels (figure fractions): set from
#: the widest count instead of measured by ``tight_layout``, which lays out and measures every text
#: once more before the real drawing (a third of a histogram's time).
PLOT_MARGINS: dict[str, float] = {"right": 0.975, "bottom": 0.14, "top": 0.91}
#: Left margin: the y label plus this much per digit of the largest y tick label.
_LEFT_BASE, _LEFT_PER_DIGIT = 0.075, 0.0135


def to_png(fig: Any, *, margins: dict[str, float] | None = None) -> bytes:
    """Render ``fig`` to PNG bytes (no metadata, so identical input gives identical bytes), laid out
    with fixed ``margins`` (``subplots_adjust`` keywords) or, by default, ``tight_layout``."""
    buf = io.BytesIO()
    if margins is None:
        fig.tight_layout()
    else:
        fig.subplots_adjust(**margins)
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def histogram_png(values: np.ndarray, *, bins: Any, xlabel: str, ylabel: str, title: str) -> bytes:
    """A histogram of ``values`` as PNG bytes; an empty input gives an annotated empty plot."""
    fig, ax = figure()
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    digits = 2
    if len(values):
        from matplotlib.ticker import MaxNLocator

        counts, _, _ = ax.hist(values, bins=bins, color="#4C72B0", edgecolor="white")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no "1.75" ticks
        digits = max(digits, len(str(int(counts.max() * 1.05))))  # the axis runs a little past the tallest bar
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        lo, hi = float(np.min(bins)), float(np.max(bins))
        ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))  # as if bars were drawn
        ax.set_yticks([])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return to_png(fig, margins={**PLOT_MARGINS, "left": _LEFT_BASE + _LEFT_PER_DIGIT * digits})
