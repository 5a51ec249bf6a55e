"""Deterministic figures rendered to PNG bytes, shared by the analyses and the reports: matplotlib
figures on the Agg canvas, and plain histograms drawn directly with Pillow (:func:`histogram_png`).
No timestamps or version strings are written into the PNG metadata.

Figures are built as :class:`matplotlib.figure.Figure` objects on their own Agg canvas, without
``pyplot``: importing pyplot costs about half a second (it sets up the interactive-backend
machinery and its global figure manager), which a command that writes two histograms should not
pay, and a figure that no global manager holds needs no closing.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
from pathlib import Path
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


# --- histograms without matplotlib ------------------------------------------------------------
#: A histogram is drawn straight onto a Pillow image at the size and look of the matplotlib figures
#: (6 × 3.6 inches at 200 dpi): importing matplotlib's figure machinery and rendering through Agg
#: cost over a second, most of a command that writes two histograms.
_HIST_SIZE = (1200, 720)
_BAR_COLOR = (76, 114, 176)  # "#4C72B0"
_GRID_COLOR = (230, 230, 230)
#: Font sizes in pixels (matplotlib's 10 pt labels and 12 pt titles at 200 dpi).
_TICK_PX, _LABEL_PX, _TITLE_PX = 25, 26, 31
#: Where a font with Greek letters (the labels say "ρ") is looked for: matplotlib's own copy of
#: DejaVu Sans (found without importing matplotlib), then the system's.
_FONT_FILE = "DejaVuSans.ttf"
_SYSTEM_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts/dejavu")


@functools.lru_cache(maxsize=None)
def _font_path() -> str | None:
    spec = importlib.util.find_spec("matplotlib")
    dirs = [Path(p) / "mpl-data" / "fonts" / "ttf" for p in (spec.submodule_search_locations or [])] if spec else []
    for folder in dirs + [Path(d) for d in _SYSTEM_FONT_DIRS]:
        if (folder / _FONT_FILE).is_file():
            return str(folder / _FONT_FILE)
    return None


@functools.lru_cache(maxsize=None)
def _font(size: int) -> Any:
    """DejaVu Sans at ``size`` pixels; without it, Pillow's own font (scalable from Pillow 10.1)."""
    from PIL import ImageFont

    path = _font_path()
    if path is not None:
        return ImageFont.truetype(path, size)
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, *, target: int = 7, integer: bool = False) -> np.ndarray:
    """Round tick positions covering [lo, hi]: steps of 1, 2, 2.5 or 5 × 10^k (whole numbers when
    ``integer``), about ``target`` of them, as matplotlib's default locator chooses."""
    span = max(hi - lo, 1e-12)
    raw = span / max(1, target - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, math.ceil(step))
        if step > 2 and step % 5 and step % 2:  # 3 → 5, 7 → 10 … keep integer steps round
            step = next(m * 10.0 ** math.floor(math.log10(step)) for m in (1, 2, 5, 10)
                        if m * 10.0 ** math.floor(math.log10(step)) >= step)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return np.round(ticks, 10)


def _tick_labels(ticks: np.ndarray) -> list[str]:
    """Tick labels with the decimals the step needs, all alike (``0.00, 0.25, …``; ``−`` minus sign)."""
    if len(ticks) < 2:
        return [f"{t:g}" for t in ticks]
    step = float(np.min(np.diff(ticks)))
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > 1e-9:
        decimals += 1
    return [f"{t:.{decimals}f}".replace("-", "\u2212") if t != 0 else f"{0:.{decimals}f}" for t in ticks]


def _text_size(draw: Any, text: str, font: Any) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def histogram_png(values: np.ndarray, *, bins: Any, xlabel: str, ylabel: str, title: str) -> bytes:
    """A histogram of ``values`` as PNG bytes (identical bytes for identical input: no metadata);
    an empty input gives an annotated empty plot. Bars, grid, ticks and labels are drawn with
    Pillow in the style of the toolkit's matplotlib figures."""
    from PIL import Image, ImageDraw

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    edges = np.asarray(bins, dtype=float)
    counts = np.histogram(values, bins=edges)[0] if len(values) else None
    width, height = _HIST_SIZE
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    tick_font, label_font, title_font = _font(_TICK_PX), _font(_LABEL_PX), _font(_TITLE_PX)
    x_lo, x_hi = float(edges[0]), float(edges[-1])
    pad = 0.05 * (x_hi - x_lo)  # the axis runs a little past the outer bars, as matplotlib's margins
    x_lo, x_hi = x_lo - pad, x_hi + pad
    y_hi = 1.05 * float(counts.max()) if counts is not None and counts.max() > 0 else 1.0
    y_ticks = nice_ticks(0, y_hi, target=9, integer=True) if counts is not None else np.zeros(0)
    y_labels = [str(int(t)) for t in y_ticks]
    label_w = max([_text_size(draw, t, tick_font)[0] for t in y_labels] + [0])
    left = 24 + _text_size(draw, ylabel, label_font)[1] + 24 + label_w + 18
    box = (left, 64, width - 30, height - 100)  # x0, y0, x1, y1 of the axes

    def px(x: float) -> float:
        return box[0] + (x - x_lo) / (x_hi - x_lo) * (box[2] - box[0])

    def py(y: float) -> float:
        return box[3] - y / y_hi * (box[3] - box[1])

    x_ticks = nice_ticks(float(edges[0]), float(edges[-1]), target=9)
    for t in x_ticks:  # grid first, bars over it
        draw.line([(round(px(t)), box[1]), (round(px(t)), box[3])], fill=_GRID_COLOR, width=2)
    for t in y_ticks:
        draw.line([(box[0], round(py(t))), (box[2], round(py(t)))], fill=_GRID_COLOR, width=2)
    if counts is not None:
        for c, a, b in zip(counts, edges[:-1], edges[1:]):
            if c > 0:
                draw.rectangle([round(px(a)) + 1, round(py(c)), round(px(b)) - 2, box[3]], fill=_BAR_COLOR)
    else:
        w, h = _text_size(draw, "no values", label_font)
        draw.text(((box[0] + box[2] - w) / 2, (box[1] + box[3] - h) / 2), "no values", fill="black", font=label_font)
    draw.rectangle(box, outline="black", width=2)
    for t, lab in zip(x_ticks, _tick_labels(x_ticks)):
        x = round(px(t))
        draw.line([(x, box[3]), (x, box[3] + 9)], fill="black", width=2)
        draw.text((x, box[3] + 14), lab, fill="black", font=tick_font, anchor="mt")
    for t, lab in zip(y_ticks, y_labels):
        y = round(py(t))
        draw.line([(box[0] - 9, y), (box[0], y)], fill="black", width=2)
        draw.text((box[0] - 14, y), lab, fill="black", font=tick_font, anchor="rm")
    draw.text(((box[0] + box[2]) / 2, height - 22), xlabel, fill="black", font=label_font, anchor="md")
    draw.text(((box[0] + box[2]) / 2, box[1] - 14), title, fill="black", font=title_font, anchor="md")
    _vertical_text(image, ylabel, label_font, (24, (box[1] + box[3]) / 2))
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _vertical_text(image: Any, text: str, font: Any, at: tuple[float, float]) -> None:
    """Paste ``text`` rotated a quarter turn (reading upwards) with its left edge at ``at[0]`` and
    centred on ``at[1]``."""
    from PIL import Image, ImageDraw

    probe = ImageDraw.Draw(image)
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, anchor="ls")
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (bottom - top, 0)
    strip = Image.new("L", (right - left + 2, ascent + descent), 0)
    ImageDraw.Draw(strip).text((-left + 1, ascent), text, fill=255, font=font, anchor="ls")
    strip = strip.rotate(90, expand=True)
    x, y = round(at[0]), round(at[1] - strip.size[1] / 2)
    image.paste((0, 0, 0), (x, y, x + strip.size[0], y + strip.size[1]), strip)
