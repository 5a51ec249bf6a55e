"""Deterministic matplotlib figures (Agg backend) rendered to PNG bytes, shared by the analyses
and the reports. No timestamps or version strings are written into the PNG metadata."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

#: 200 dpi: a 7-inch figure is 1,400 px wide, sharp at the report page's full width.
_DPI = 200


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    """A new figure and axes with the toolkit's plain style."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(width, height), dpi=_DPI)
    ax.grid(True, alpha=0.3)
    return fig, ax


def to_png(fig: Any) -> bytes:
    """Render ``fig`` to PNG bytes (no metadata, so identical input gives identical bytes) and close it."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def histogram_png(values: np.ndarray, *, bins: Any, xlabel: str, ylabel: str, title: str) -> bytes:
    """A histogram of ``values`` as PNG bytes; an empty input gives an annotated empty plot."""
    fig, ax = figure()
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values):
        ax.hist(values, bins=bins, color="#4C72B0", edgecolor="white")
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return to_png(fig)
