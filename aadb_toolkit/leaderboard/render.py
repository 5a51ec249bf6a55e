"""Leaderboard pages: each protocol's board as Markdown, HTML (both from one
:class:`~aadb_toolkit.reports._document.Document`, so the boards look like the reports) and CSV,
plus an index page. A board is built from the protocol's declaration alone — its main metric, the
columns it shows and the paper's reported rows — so a new protocol gets its board by declaring itself."""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import Any

from .. import paper
from .._atomic import write_text
from .._csvcells import csv_safe
from .._format import format_metric, format_p, is_count
from .._markdown import printable
from .._registry import lookup
from ..protocols import PROTOCOLS, Protocol, ReportedRow
from ..reports._document import Document, Table, Verbatim, render_html, render_markdown
from .ranking import RankingGroup, ranking_groups

#: Significance level for the marks in rendered tables.
ALPHA = 0.05
#: Hex digits of a hash shown in tables (the CSV keeps the full hash).
SHORT_HASH_DIGITS = 12
_FIXED = ("p vs above", "p vs leader", "n_images", "data", "submission", "recorded_utc", "source")


def short_hash(value: str) -> str:
    """``sha256:0123456789ab…`` for a long hash; short values unchanged."""
    algo, sep, digest = str(value).partition(":")
    if not sep or len(digest) <= SHORT_HASH_DIGITS + 4:
        return str(value)
    return f"{algo}:{digest[:SHORT_HASH_DIGITS]}…"


def _fmt(x: Any, metric: str = "", digits: int = 4) -> str:
    if x is None:
        return ""
    try:
        float(x)
    except (TypeError, ValueError):
        return printable(x)
    return "" if math.isnan(float(x)) else format_metric(metric, float(x), digits or None)


def _sig(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    return f"{format_p(p)} {'*' if p < ALPHA else 'n.s.'}"


def _metric_columns(decl: Protocol | None, groups: list[RankingGroup], reported: tuple[ReportedRow, ...],
                    main: str) -> list[str]:
    """The declared board columns, or the main metric then every metric results or reported rows carry."""
    if decl is not None and decl.board_columns:
        return list(dict.fromkeys([main, *decl.board_columns]))
    cols = [main]
    for g in groups:
        for m in g.table["metrics"]:
            cols += [k for k in m if k not in cols]
    for r in reported:
        cols += [k for k in r.metrics if k not in cols]
    return cols


def _submitted_rows(g: RankingGroup, metric_cols: list[str], main: str, digits: int) -> list[dict[str, str]]:
    rows = []
    for _, r in g.table.iterrows():
        row = {"kind": "submitted", "fingerprint": printable(g.label), "rank": str(int(r["rank"])),
               "name": printable(r["name"])}
        for c in metric_cols:
            row[c] = _fmt(r["metrics"].get(c, {}).get("value"), c, digits)
        lo, hi = r["ci_low"], r["ci_high"]
        row[f"{main} 95% CI"] = "" if math.isnan(lo) else f"[{_fmt(lo, digits=digits)}, {_fmt(hi, digits=digits)}]"
        row["p vs above"], row["p vs leader"] = _sig(r["p_vs_above"]), _sig(r["p_vs_leader"])
        row["n_images"] = str(int(r["n_images"]))
        row["data"] = printable(r["dataset"] or ("synthetic" if r["synthetic"] else ""))
        row["submission"] = printable(r["submission_sha256"])
        row["recorded_utc"] = printable(r["recorded_utc"])
        row["source"] = printable(f"aadb_toolkit {r['toolkit_version']}, protocol v{r['protocol_version']}")
        rows.append(row)
    return rows


def board_rows(protocol: str, groups: list[RankingGroup], *, digits: int = 4) -> tuple[list[str], list[dict[str, str]]]:
    """Column names and text rows of one protocol's board: submitted rows ranked per group, then the
    paper's reported rows (``digits=0``: full precision, as the CSV writes them)."""
    decl = PROTOCOLS.get(protocol)
    main = decl.main_metric if decl else (groups[0].table["main_metric"].iloc[0] if groups else "value")
    reported = decl.reported_rows() if decl else ()
    metric_cols = _metric_columns(decl, groups, reported, main)
    columns = ["kind", "fingerprint", "rank", "name", *metric_cols, f"{main} 95% CI", *_FIXED]
    rows = [row for g in groups for row in _submitted_rows(g, metric_cols, main, digits)]
    for rep in reported:
        row = {c: "" for c in columns}
        row.update(kind="reported", fingerprint="(paper's data)", name=rep.name, source=rep.source)
        row.update({c: _reported(rep.metrics.get(c), c, digits) for c in metric_cols})
        rows.append(row)
    return columns, rows


def _reported(value: float | None, metric: str, digits: int) -> str:
    """A paper number: rounded like the rest of the board, or in full as the paper gives it."""
    if value is None or digits or is_count(metric):
        return _fmt(value, metric, digits)
    return paper.as_reported(value)


#: Board columns filled by the toolkit itself (numbers and marks): shown verbatim in Markdown when
#: they read as numbers (anything else taken from the database is escaped like every other cell).
_TOOLKIT_CELLS = frozenset({"rank", "p vs above", "p vs leader", "n_images"})
_NUMERIC = re.compile(r"(?:[-+0-9.,eE\[\] *]|n\.s\.|n/a|inf|nan)*")  # "< 0.001" is escaped: "\< 0.001"
#: Board columns holding text: left-aligned; the name gets room.
_TEXT_COLUMNS = frozenset({"data", "submission", "source"})
_K_SUFFIX = re.compile(r"(.+)_k(\d+)")


def _table(columns: list[str], rows: list[dict[str, str]], trusted: frozenset[str], declared: frozenset[str],
           css_class: str = "board") -> Table:
    """A board table: numbers never wrap, the name column has room, ``_k<k>`` columns are grouped."""
    cells = [[Verbatim(r[c]) if c in trusted and _NUMERIC.fullmatch(r[c]) else r[c] for c in columns] for r in rows]
    return Table([Verbatim(c) if c in declared else c for c in columns], cells, wide=frozenset({"name"}),
                 text=_TEXT_COLUMNS, css_class=css_class, **_k_groups(columns))


def _k_groups(columns: list[str]) -> dict[str, Any]:
    """Columns named ``<metric>_k<k>`` grouped under a "k = <k>" header (HTML), each shown as ``<metric>``."""
    keys = [_K_SUFFIX.fullmatch(c) for c in columns]
    if not any(keys):
        return {}
    groups: list[tuple[str, int]] = []
    for m in keys:
        label = f"k = {m.group(2)}" if m else ""
        if groups and groups[-1][0] == label:
            groups[-1] = (label, groups[-1][1] + 1)
        else:
            groups.append((label, 1))
    return {"groups": groups, "labels": [m.group(1) if m else c for m, c in zip(keys, columns)]}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _nonempty(columns: list[str], rows: list[dict[str, str]], keep: tuple[str, ...]) -> list[str]:
    """The columns that hold a value in some row (and those in ``keep``): no always-empty column."""
    return [c for c in columns if c in keep or any(r.get(c) for r in rows)]


def board_document(protocol: str, groups: list[RankingGroup]) -> Document:
    """One protocol's board as a document: ranked groups (synthetic ones labelled), then the paper's rows."""
    decl = PROTOCOLS.get(protocol)
    columns, rows = board_rows(protocol, groups)
    main = decl.main_metric if decl else columns[4]
    metric_cols = columns[4:columns.index(f"{main} 95% CI") + 1]
    declared = frozenset({*columns, *(r for rep in (decl.reported_rows() if decl else ()) for r in rep.metrics)}
                         - ({*metric_cols} - {main, f"{main} 95% CI", *(decl.board_columns if decl else ())}))
    submitted = [r for r in rows if r["kind"] == "submitted"]
    ordered = [main, f"{main} 95% CI", *[c for c in metric_cols if c not in (main, f"{main} 95% CI")]]
    shown = _nonempty(["rank", "name", *ordered, "p vs above", "p vs leader", "n_images", "data", "submission"],
                      submitted, keep=("rank", "name", main))
    doc = Document(f"Leaderboard: `{protocol}`")
    if decl:
        doc.para(f"{_sentence(decl.description)}. Protocol version {decl.version}; ranked by `{decl.main_metric}`.")
    marks = "p vs above" in shown or "p vs leader" in shown
    doc.para((f"Marks: `*` = the difference in ρ to the row above / to the leader is significant at {ALPHA} "
              "(Steiger's Z on the stored predictions, two-sided); `n.s.` = not significant. " if marks else "")
             + "Results are ranked only against results with the same data fingerprint, protocol version and "
             "provenance. Hashes are shortened here; the CSV has them in full.")
    if any(g.synthetic for g in groups):
        doc.note("Groups marked SYNTHETIC hold results on synthetic data drawn by `aadb simulate` (a test "
                 "instrument, not AADB). They are never ranked against results on real data, and their numbers "
                 "say nothing about real photos or raters.")
    trusted = _TOOLKIT_CELLS | set(metric_cols)
    for g in groups:
        sub = [{**r, "submission": short_hash(r["submission"])} for r in submitted if r["fingerprint"] == printable(g.label)]
        what = " — SYNTHETIC data (not AADB)" if g.synthetic else ""
        if decl is not None and g.protocol_version != decl.version:
            what += f" — protocol v{printable(g.protocol_version)}"
        doc.heading(f"Data fingerprint `{printable(short_hash(g.fingerprint))}`{what} ({len(sub)} result(s), "
                    f"{sub[0]['n_images']} images)")
        doc.add(_table(shown, sub, trusted, declared))
    if not groups:
        doc.para("No results recorded yet.")
    reported = [r for r in rows if r["kind"] == "reported"]
    if reported:
        rep_cols = ["name", *[c for c in metric_cols if any(r[c] for r in reported)], "source"]
        doc.heading("Reported in the paper (marked `reported`)")
        doc.para("Numbers the paper reports on the real AADB/AVA. They are not ranked against the rows above: "
                 "those were computed on data with their own fingerprint, which is not the paper's data.")
        doc.add(_table(rep_cols, [{**r, "name": f"{r['name']} (reported)"} for r in reported],
                       frozenset(rep_cols), frozenset(rep_cols), css_class="board reported"))
    return doc


def board_csv(protocol: str, groups: list[RankingGroup]) -> str:
    """The board as CSV: every column, full hashes and full-precision numbers; text cells that a
    spreadsheet would run as a formula are neutralised."""
    columns, rows = board_rows(protocol, groups, digits=0)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = ["protocol", *columns]
    w.writerow([_csv_cell(c) for c in names])  # a metric name from a result document is text too
    for r in rows:
        cells = {"protocol": protocol, **r}
        w.writerow([_csv_cell(cells.get(k, "")) for k in names])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    """A cell as the board's CSV holds it: text made printable, and never a spreadsheet formula
    (:func:`~aadb_toolkit._csvcells.csv_safe`)."""
    return csv_safe(printable(value) if isinstance(value, str) else value)


def known_protocols(db: str | os.PathLike[str]) -> dict[str, list[RankingGroup]]:
    """Every registered protocol → its ranking groups. Results recorded under a name that is not a
    registered protocol get no board (see :func:`unregistered_protocols`)."""
    groups = ranking_groups(db)
    return {p: groups.get(p, []) for p in PROTOCOLS}


def unregistered_protocols(db: str | os.PathLike[str]) -> dict[str, int]:
    """Protocol names in the database that are not registered → their number of results."""
    return {p: sum(len(g.table) for g in gs) for p, gs in ranking_groups(db).items() if p not in PROTOCOLS}


def format_markdown(db: str | os.PathLike[str], protocol: str = "aadb") -> str:
    """The Markdown board of one protocol (what :func:`render` writes to ``<protocol>.md``); an
    unknown protocol name is an error with close-match suggestions."""
    boards = known_protocols(db)
    return render_markdown(board_document(protocol, lookup(boards, printable(protocol), what="protocol")))


def render(db: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``<protocol>.md``, ``.html`` and ``.csv`` for every protocol (recorded or declared) and
    an ``index.md``/``index.html``, each file atomically; returns name → path."""
    out = Path(out_dir)
    written: dict[str, Path] = {}
    index = Document("Leaderboards")
    links = []
    for protocol, groups in known_protocols(db).items():
        safe = protocol  # a registered name: a plain file stem
        doc = board_document(protocol, groups)
        for ext, text in (("md", render_markdown(doc)), ("html", render_html(doc)), ("csv", board_csv(protocol, groups))):
            written[f"{safe}.{ext}"] = _write(out / f"{safe}.{ext}", text)
        n = sum(len(g.table) for g in groups)
        n_syn = sum(len(g.table) for g in groups if g.synthetic)
        links.append((protocol, safe, f": {n} result(s) in {len(groups)} ranking group(s)"
                      + (f", {n_syn} of them on SYNTHETIC data" if n_syn else "")))
    index.para("One board per benchmark protocol. Each ranks results only within a group of the same data "
               "fingerprint, protocol version and provenance, beside the numbers the paper reports.")
    index.links(links)
    foreign = unregistered_protocols(db)
    if foreign:  # named as inert text: a link or a file is only ever made from a registered name
        index.note("The database also holds results under names that are not a registered protocol of this "
                   "toolkit version; they have no board: "
                   + "; ".join(f"{printable(p)!r} ({n} result(s))" for p, n in sorted(foreign.items())) + ".")
    for ext, text in (("md", render_markdown(index)), ("html", render_html(index))):
        written[f"index.{ext}"] = _write(out / f"index.{ext}", text)
    return written


def _write(path: Path, text: str) -> Path:
    write_text(path, text)
    return path
