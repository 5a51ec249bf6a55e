"""Histograms drawn with Pillow (``_plotting.histogram_png``): valid PNGs of the documented size,
identical bytes for identical input, readable ticks, and no matplotlib import."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from aadb_toolkit import _plotting


def _png(values, bins=np.linspace(-1, 1, 41)) -> bytes:
    return _plotting.histogram_png(np.asarray(values, float), bins=bins, xlabel="mean pairwise Spearman ρ",
                                   ylabel="batches", title="Batch mean ρ (test)")


def test_histogram_is_a_valid_png_of_the_documented_size_and_deterministic():
    values = np.random.default_rng(0).normal(0.4, 0.2, 500)
    first, second = _png(values), _png(values.copy())
    assert first == second
    image = Image.open(io.BytesIO(first))
    image.load()
    assert image.format == "PNG" and image.size == _plotting._HIST_SIZE
    assert not image.info.get("Software") and "dpi" not in image.info  # nothing that varies between runs
    assert _png(values[:-1]) != first


def test_histogram_draws_the_bars_where_the_counts_are():
    image = Image.open(io.BytesIO(_png([0.51] * 5))).convert("RGB")
    pixels = np.asarray(image)
    bar = np.all(pixels == _plotting._BAR_COLOR, axis=-1)
    cols = np.flatnonzero(bar.any(0))
    assert cols.size and cols.min() > image.size[0] // 2  # one bar, right of the centre (ρ = 0.51 > 0)
    rows = np.flatnonzero(bar.any(1))
    assert rows.max() - rows.min() > image.size[1] // 2  # the only bar reaches near the top


def test_empty_histogram_says_so():
    png = _png([], bins=np.linspace(0, 1, 41))
    image = Image.open(io.BytesIO(png))
    assert image.size == _plotting._HIST_SIZE
    assert not np.any(np.all(np.asarray(image.convert("RGB")) == _plotting._BAR_COLOR, axis=-1))


def test_ticks_are_round_and_cover_the_range():
    assert _plotting.nice_ticks(-1, 1, target=9).tolist() == [-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]
    assert _plotting.nice_ticks(0, 157.5, target=9, integer=True).tolist() == [0, 20, 40, 60, 80, 100, 120, 140]
    assert _plotting.nice_ticks(0, 3.15, target=9, integer=True).tolist() == [0, 1, 2, 3]
    assert _plotting._tick_labels(np.array([-0.5, -0.25, 0.0])) == ["\u22120.50", "\u22120.25", "0.00"]
    assert _plotting._tick_labels(np.array([0, 200, 400.0])) == ["0", "200", "400"]


def test_histograms_and_the_consistency_command_import_no_matplotlib():
    code = ("import sys, numpy as np\n"
            "from aadb_toolkit import _plotting\n"
            "import aadb_toolkit.cli.consistency, aadb_toolkit.consistency\n"
            "_plotting.histogram_png(np.ones(3), bins=np.linspace(0, 1, 5), xlabel='x', ylabel='y', title='t')\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('matplotlib', 'scipy.stats')))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
