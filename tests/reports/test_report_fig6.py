"""Fig. 6 of the report as its caption says: the 100 and 200 lines dashed, whole-number worker
ticks, and figures as wide as the report page (~1,400 px)."""

import io

import numpy as np
import pandas as pd
from PIL import Image

from aadb_toolkit.reports import human_consistency as hc


def _workers(n=7):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"rater_id": [f"R{i:02d}" for i in range(n)], "n_images": rng.integers(5, 400, n),
                         "rho": rng.uniform(-0.2, 0.9, n)})


def test_fig6_lines_are_dashed_and_worker_ticks_are_whole_numbers(monkeypatch):
    monkeypatch.setattr(hc, "to_png", lambda fig: fig)
    for fig in (hc.fig6_images_per_worker(_workers()), hc.fig6_worker_rho(_workers(), 0.5)):
        ax = fig.axes[0]
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    ax = hc.fig6_images_per_worker(_workers()).axes[0]
    styles = {ln.get_label(): ln.get_linestyle() for ln in ax.lines}
    assert styles["100 images"] == "--" and styles["200 images"] == "--"


def test_fig6_pngs_are_as_wide_as_the_page():
    for png in (hc.fig6_images_per_worker(_workers()), hc.fig6_worker_rho(_workers(), None)):
        width, _ = Image.open(io.BytesIO(png)).size
        assert 1300 <= width <= 1500, width
