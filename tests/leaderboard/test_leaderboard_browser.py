"""The wide boards in a real browser (headless Chromium, a 1400 px window): the page never scrolls
sideways (a wide table scrolls inside its own box) and the name column is wide enough to read."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aadb_toolkit import leaderboard, protocols
from aadb_toolkit.protocols.results import Metric

from test_leaderboard_render import _result

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NAME = "demo: ridge on fc7 of the demo model, generic offset"
_PROBE = ('<script>window.addEventListener("load",function(){var o=document.createElement("pre");o.id="probe";'
          'var n=document.querySelector("td.wide");o.textContent=[document.documentElement.scrollWidth,'
          'window.innerWidth,n.offsetWidth,n.offsetHeight,document.querySelector(".table-wrap").scrollWidth]'
          '.join(";");document.body.appendChild(o);});</script>')


def _wide_board(tmp_path) -> Path:
    db = tmp_path / "lb.db"
    piaa = protocols.PROTOCOLS["piaa"]
    metrics = {"mean_rho": Metric(0.33)} | {c: Metric(7.0 if c.startswith("n_") else 0.3) for c in piaa.board_columns}
    leaderboard.record(db, dataclasses.replace(_result(0.3), protocol="piaa", main_metric="mean_rho",
                                               metrics=metrics), NAME)
    human = {f"workers_gt{t}_{m}": Metric(0.5) for t in (0, 100, 200) for m in ("mean_rho", "share_beaten")}
    leaderboard.record(db, dataclasses.replace(_result(0.3), protocol="human", main_metric="share_beaten",
                                               metrics={"share_beaten": Metric(0.5), "spearman": Metric(0.4),
                                                        "n_beaten": Metric(3.0), **human}), NAME)
    out = tmp_path / "site"
    leaderboard.render(db, out)
    return out


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("board", ["piaa", "human"])
def test_a_wide_board_scrolls_in_its_own_box_not_the_page(board, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium not installed; apt-get install chromium to run this test")
    out = _wide_board(tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text((out / f"{board}.html").read_text().replace("</body>", _PROBE + "</body>"))
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="probe">([^<]*)</pre>', res.stdout)
    assert m, f"probe not found in the DOM; chromium stderr: {res.stderr[-2000:]}"
    page_width, window, name_width, name_height, table_width = map(int, m.group(1).split(";"))
    assert table_width > 1000  # the table is wider than the text column ...
    assert page_width <= window  # ... yet the page does not scroll sideways
    assert name_width >= 200 and name_height < 60  # the name reads on one or two lines
