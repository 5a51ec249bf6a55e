"""Boards are built from protocol declarations, keep synthetic results apart and labelled, show
short hashes (full in the CSV) and integer counts, and look like the reports."""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import leaderboard, protocols
from aadb_toolkit.protocols import Protocol, ReportedRow
from aadb_toolkit.protocols.results import Metric, PairedData, make_result

N = 40
#: The paper rows of the toy protocol declared in a test below.
TOY_REPORTED = (ReportedRow("paper personalizer", {"mean_rho": 0.5, "n_raters": 80.0}, "Somebody 2020, Table 1"),)
FP = "sha256:" + "ab" * 32


def _result(noise, *, seed=0, synthetic=False, sha=None, protocol="aadb", metrics=None):
    rng = np.random.default_rng(seed)
    truth = pd.Series(np.random.default_rng(99).normal(3, 0.6, N), index=[f"i{k:03d}.jpg" for k in range(N)])
    paired = PairedData.from_series(truth, truth + rng.normal(0, noise, N))
    return make_result(protocol=protocol, protocol_version="1", main_metric="spearman",
                       metrics=metrics or {"spearman": Metric(1 - noise)}, data_fingerprint=FP,
                       submission_sha256=sha or "sha256:" + f"{seed:02d}" * 32, n_images=N, seed=0, n_boot=0,
                       paired=paired, dataset="synthetic-aadb" if synthetic else "aadb", synthetic=synthetic)


def _csv_rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_synthetic_results_are_a_separate_labelled_ranking_group(tmp_path):
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.5, seed=1), "real model")
    leaderboard.record(db, _result(0.1, seed=2, synthetic=True), "synthetic model")
    groups = leaderboard.ranking_groups(db)["aadb"]
    assert [(g.synthetic, g.table["name"].tolist()) for g in groups] == [
        (False, ["real model"]), (True, ["synthetic model"])]
    assert [g.table["rank"].tolist() for g in groups] == [[1], [1]]  # never ranked together
    leaderboard.render(db, tmp_path / "o")
    md = (tmp_path / "o" / "aadb.md").read_text()
    html = (tmp_path / "o" / "aadb.html").read_text()
    for text in (md, html):
        assert "SYNTHETIC data (not AADB)" in text and "synthetic-aadb" in text
    rows = {r["name"]: r for r in _csv_rows(tmp_path / "o" / "aadb.csv") if r["kind"] == "submitted"}
    assert rows["synthetic model"]["data"] == "synthetic-aadb" and rows["real model"]["data"] == "aadb"
    assert "(synthetic data)" in rows["synthetic model"]["fingerprint"]
    assert "SYNTHETIC" in (tmp_path / "o" / "index.md").read_text()


def test_tables_show_short_hashes_and_the_csv_full_ones(tmp_path):
    db = tmp_path / "lb.db"
    full = "sha256:" + "cd" * 32
    leaderboard.record(db, _result(0.3, sha=full), "m")
    leaderboard.render(db, tmp_path / "o")
    for ext in ("md", "html"):
        text = (tmp_path / "o" / f"aadb.{ext}").read_text()
        assert full not in text and FP not in text and "sha256:cdcdcdcdcdcd…" in text
    (row,) = [r for r in _csv_rows(tmp_path / "o" / "aadb.csv") if r["kind"] == "submitted"]
    assert row["submission"] == full and row["fingerprint"] == FP


def test_counts_print_as_integers(tmp_path):
    db = tmp_path / "lb.db"
    r = dataclasses.replace(_result(0.3), protocol="human", main_metric="share_beaten", metrics={
        "share_beaten": Metric(0.75), "n_beaten": Metric(3.0), "n_workers_compared": Metric(4.0)})
    leaderboard.record(db, r, "m")
    md = leaderboard.format_markdown(db, "human")
    line = next(x for x in md.splitlines() if x.startswith("| 1 | m"))
    assert "| 0.7500 | 3 | 4 |" in line and "3.0000" not in md


def test_index_page_is_styled_like_the_reports(tmp_path):
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.3), "m")
    leaderboard.render(db, tmp_path / "o")
    index = (tmp_path / "o" / "index.html").read_text()
    report_css = "border-bottom: 2px solid #4C72B0"  # the reports' stylesheet
    assert report_css in index and report_css in (tmp_path / "o" / "aadb.html").read_text()
    assert '<a href="aadb.html">aadb</a>' in index
    assert "[aadb](aadb.md)" in (tmp_path / "o" / "index.md").read_text()


def test_a_declared_protocol_gets_its_board_by_declaration(tmp_path, monkeypatch):
    decl = Protocol("toy", "2", "mean_rho", "aadb", ("test",), "aadb_toolkit.protocols.aadb_protocol",
                    "a toy protocol", reported=f"{__name__}:TOY_REPORTED", board_columns=("n_raters",))
    monkeypatch.setitem(protocols.PROTOCOLS, "toy", decl)
    db = tmp_path / "lb.db"
    r = dataclasses.replace(_result(0.3), protocol="toy", protocol_version="2", main_metric="mean_rho", metrics={
        "mean_rho": Metric(0.61), "n_raters": Metric(12.0), "hidden": Metric(9.0)})
    leaderboard.record(db, r, "m")
    written = leaderboard.render(db, tmp_path / "o")
    assert {"toy.md", "toy.html", "toy.csv"} <= set(written)
    md = (tmp_path / "o" / "toy.md").read_text()
    assert "| rank | name | mean_rho | n_raters |" in md and "hidden" not in md
    assert "paper personalizer (reported)" in md and "Somebody 2020, Table 1" in md
    assert "| 1 | m | 0.6100 | 12 |" in md


@pytest.mark.parametrize("protocol", sorted(protocols.PROTOCOLS))
def test_every_declared_protocol_declares_its_reported_rows(protocol):
    decl = protocols.PROTOCOLS[protocol]
    assert all(isinstance(r, ReportedRow) and r.source for r in decl.reported_rows())


def test_the_board_csv_gives_the_papers_numbers_as_the_paper_does(tmp_path):
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.3), "m")
    leaderboard.render(db, tmp_path / "o")
    text = (tmp_path / "o" / "ava.csv").read_text()
    assert "0.7284999999999999" not in text and "999999" not in text and "000000000" not in text


def test_wide_boards_scroll_in_their_own_box_with_a_readable_name_column_and_k_groups(tmp_path):
    db = tmp_path / "lb.db"
    metrics = {"mean_rho": Metric(0.5), "rho_k10": Metric(0.4), "n_raters_k10": Metric(7.0),
               "rho_k100": Metric(0.6), "n_raters_k100": Metric(3.0)}
    leaderboard.record(db, dataclasses.replace(_result(0.3), protocol="piaa", main_metric="mean_rho",
                                               metrics=metrics), "demo: ridge on fc7 of the demo model")
    leaderboard.render(db, tmp_path / "o")
    html = (tmp_path / "o" / "piaa.html").read_text()
    assert '<div class="table-wrap"><table class="board">' in html and "overflow-x: auto" in html
    assert '<td class="wide">demo: ridge on fc7 of the demo model</td>' in html
    assert '<th colspan="2" class="group">k = 10</th>' in html and '<th colspan="2" class="group">k = 100</th>' in html
    assert "<h1>Leaderboard: <code>piaa</code></h1>\n<p>Personalized" in html  # a description starts with a capital


def test_always_empty_columns_are_left_out_with_their_explanation(tmp_path):
    db = tmp_path / "lb.db"
    r = dataclasses.replace(_result(0.3), protocol="human", main_metric="share_beaten", paired=None, metrics={
        "share_beaten": Metric(0.75), "n_beaten": Metric(3.0), "n_workers_compared": Metric(4.0)})
    leaderboard.record(db, r, "m")
    md = leaderboard.format_markdown(db, "human")
    assert "p vs above" not in md and "p vs leader" not in md and "Marks:" not in md
    assert "workers_gt100_mean_rho" not in md.split("Reported in the paper")[0]
    db2 = tmp_path / "lb2.db"
    leaderboard.record(db2, _result(0.3, seed=1), "a")
    leaderboard.record(db2, _result(0.5, seed=2), "b")
    md2 = leaderboard.format_markdown(db2, "aadb")
    assert "p vs above" in md2 and "Marks:" in md2


def test_headers_never_break_inside_an_arrow(tmp_path):
    db = tmp_path / "lb.db"
    metrics = {"mean_transfer_rho": Metric(0.4), "rho[aadb->ava]": Metric(0.3), "rho[ava->aadb]": Metric(0.5)}
    leaderboard.record(db, dataclasses.replace(_result(0.3), protocol="cross-dataset",
                                               main_metric="mean_transfer_rho", metrics=metrics), "m")
    leaderboard.render(db, tmp_path / "o")
    html = (tmp_path / "o" / "cross-dataset.html").read_text()
    assert "<th>rho[aadb\u2011&gt;ava]</th>" in html and "aadb-&gt;" not in html


def test_reported_rows_carry_the_papers_printed_digits(tmp_path):
    """Review: the CSV printed the paper's ρ 0.6450 as ``0.645`` and Table 3's 68.00 % as ``0.68``.
    A reported number keeps the paper's digits; a percentage shown as a fraction moves the decimal
    point of the paper's text (72.85 → 0.7285, 71.50 → 0.7150), never adding binary noise."""
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.3), "m")
    leaderboard.render(db, tmp_path / "o")
    aadb = {r["name"]: r for r in _csv_rows(tmp_path / "o" / "aadb.csv") if r["kind"] == "reported"}
    assert aadb["Reg+Rank (within-rater)"]["spearman"] == "0.6450"
    assert aadb["Reg+Rank+Att+Cont"]["spearman"] == "0.6782"
    ava = {r["name"]: r for r in _csv_rows(tmp_path / "o" / "ava.csv") if r["kind"] == "reported"}
    assert [ava[k]["accuracy"] for k in ("Murray et al.", "SPP", "Reg+Rank")] == ["0.6800", "0.7285", "0.7150"]
    assert ava["Reg"]["spearman"] == "0.4995"
