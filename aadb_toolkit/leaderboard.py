"""The leaderboard: scored results collected in an embedded SQLite database (the default store) and
rendered as Markdown, HTML and CSV tables per protocol and per data fingerprint.

- :func:`record` adds a result in one transaction (WAL mode, busy timeout), so concurrent
  ``aadb score --leaderboard`` processes lose nothing; a UNIQUE constraint on (protocol, protocol
  version, fingerprint, submission hash, name) makes re-submitting the same file idempotent.
- :func:`render` ranks results by the protocol's main metric only among results with the same data
  fingerprint and protocol version, marks whether each ρ differs significantly from the row above and from the leader
  (Steiger's Z on the stored predictions), and adds the paper's reported numbers as rows marked
  ``reported`` that are never ranked against our data.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import sqlite3
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from . import paper
from ._atomic import write_text
from .data import sha256_fingerprint
from .errors import InputError
from .protocols import PROTOCOLS
from .protocols.results import Result
from .protocols.significance import compare

SCHEMA_VERSION = 1
#: Significance level for the marks in rendered tables.
ALPHA = 0.05
BUSY_TIMEOUT_S = 60.0
MAX_NAME_LENGTH = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    protocol TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    submission_sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    main_metric TEXT NOT NULL,
    main_value REAL,
    ci_low REAL,
    ci_high REAL,
    n_images INTEGER NOT NULL,
    toolkit_version TEXT NOT NULL,
    recorded_utc TEXT NOT NULL,
    document TEXT NOT NULL,
    UNIQUE (protocol, protocol_version, fingerprint, submission_sha256, name)
);
CREATE TABLE IF NOT EXISTS predictions (
    result_id INTEGER PRIMARY KEY REFERENCES results(id) ON DELETE CASCADE,
    ids_sha256 TEXT NOT NULL,
    scores BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ground_truth (
    fingerprint TEXT PRIMARY KEY,
    ids_sha256 TEXT NOT NULL,
    n INTEGER NOT NULL,
    truth BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class RecordOutcome:
    """What :func:`record` did: the row id, and whether it was new (False: already recorded)."""

    result_id: int
    inserted: bool


def _is_lock_error(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _retry_locked(fn, *, attempts: int = 20):
    """Run ``fn`` again when SQLite reports a lock held past the busy timeout (e.g. switching to WAL
    while another process does); the last error is raised, never swallowed."""
    delay = 0.05
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_lock_error(exc) or i == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    raise RuntimeError("unreachable")


def connect(db: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) a leaderboard database: WAL journal, busy timeout, schema in place."""
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(db), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = _retry_locked(lambda: con.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if str(mode).lower() != "wal":
            raise InputError(f"cannot switch the database to WAL mode (got {mode!r})", file=str(db))
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")

        def create() -> None:
            with _transaction(con):
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    con.execute(stmt)
                con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            if int(version) != SCHEMA_VERSION:
                raise InputError(f"leaderboard schema version {version} is not supported "
                                 f"(this toolkit uses {SCHEMA_VERSION})", file=str(db))

        _retry_locked(create)
    except sqlite3.DatabaseError as exc:
        con.close()
        if _is_lock_error(exc):
            raise InputError(f"leaderboard database stayed locked by other writers: {exc}", file=str(db)) from exc
        raise InputError(f"not a usable leaderboard database: {exc}", file=str(db)) from exc
    except BaseException:
        con.close()
        raise
    return con


class _transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error, which is then re-raised)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")


def check_name(name: str) -> str:
    """The display name as it will be stored (stripped); raises :class:`InputError` when it is empty,
    too long or holds control characters. The CLI calls it before scoring, so a bad name writes nothing."""
    name = str(name).strip()
    if not name:
        raise InputError("leaderboard name is empty", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"leaderboard name is {len(name)} characters; at most {MAX_NAME_LENGTH}", field="name")
    if any(not ch.isprintable() for ch in name):
        raise InputError("leaderboard name contains control characters", field="name")
    return name


def check_database(db: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` when ``db`` exists but is not a usable leaderboard database (checked
    before scoring, so a bad ``--leaderboard`` path writes nothing); a missing file is fine."""
    if Path(db).exists():
        connect(db).close()


def _ids_hash(ids: tuple[str, ...] | list[str]) -> str:
    return sha256_fingerprint("\n".join(ids))


def _pack(values: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(values, dtype="<f8").tobytes(), 6)


def _unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<f8")


def record(db: str | os.PathLike[str], result: Result, name: str) -> RecordOutcome:
    """Record a scored result under a display ``name`` in one transaction; recording the same
    (protocol, protocol version, fingerprint, submission, name) again changes nothing and returns the
    existing row; after a protocol version bump the same file is a new result."""
    name = check_name(name)
    main = result.metrics.get(result.main_metric)
    if main is None:
        raise InputError(f"result has no value for its main metric {result.main_metric!r}")
    doc = json.dumps(result.to_dict(), sort_keys=True, allow_nan=False)
    row = (result.protocol, result.protocol_version, result.data_fingerprint, result.submission_sha256, name,
           result.main_metric, main.value, main.ci_low, main.ci_high, result.n_images, result.toolkit_version,
           result.created_utc or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), doc)
    con = connect(db)
    try:
        def write() -> RecordOutcome:
            with _transaction(con):
                cur = con.execute(
                    "INSERT OR IGNORE INTO results (protocol, protocol_version, fingerprint, submission_sha256, name, "
                    "main_metric, main_value, ci_low, ci_high, n_images, toolkit_version, recorded_utc, document) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                if cur.rowcount == 0:
                    rid = con.execute(
                        "SELECT id FROM results WHERE protocol = ? AND protocol_version = ? AND fingerprint = ? "
                        "AND submission_sha256 = ? AND name = ?",
                        (result.protocol, result.protocol_version, result.data_fingerprint, result.submission_sha256,
                         name),
                    ).fetchone()[0]
                    return RecordOutcome(int(rid), False)
                rid = int(cur.lastrowid)
                if result.paired is not None:
                    ids_sha = _ids_hash(result.paired.image_ids)
                    con.execute("INSERT INTO predictions (result_id, ids_sha256, scores) VALUES (?, ?, ?)",
                                (rid, ids_sha, _pack(result.paired.predictions)))
                    con.execute("INSERT OR IGNORE INTO ground_truth (fingerprint, ids_sha256, n, truth) "
                                "VALUES (?, ?, ?, ?)", (result.data_fingerprint, ids_sha, len(result.paired.image_ids),
                                                         _pack(result.paired.truth)))
                return RecordOutcome(rid, True)

        return _retry_locked(write)
    finally:
        con.close()


def entries(db: str | os.PathLike[str]) -> pd.DataFrame:
    """Every recorded result (one row each, with its parsed metrics in ``metrics``)."""
    con = connect(db)
    try:
        df = pd.read_sql_query(
            "SELECT id, protocol, protocol_version, fingerprint, submission_sha256, name, main_metric, main_value, "
            "ci_low, ci_high, n_images, toolkit_version, recorded_utc, document FROM results ORDER BY id", con)
    finally:
        con.close()
    df["metrics"] = [json.loads(d)["metrics"] for d in df["document"]]
    return df


def _paired_arrays(con: sqlite3.Connection, result_id: int, fingerprint: str) -> tuple[np.ndarray, np.ndarray] | None:
    p = con.execute("SELECT ids_sha256, scores FROM predictions WHERE result_id = ?", (result_id,)).fetchone()
    t = con.execute("SELECT ids_sha256, truth FROM ground_truth WHERE fingerprint = ?", (fingerprint,)).fetchone()
    if p is None or t is None or p[0] != t[0]:
        return None
    return _unpack(t[1]), _unpack(p[1])


def recorded_predictions(db: str | os.PathLike[str], result: Result) -> np.ndarray | None:
    """The stored predictions of a recorded result (aligned to its sorted image ids), found by
    protocol, data fingerprint and submission hash; None when the database has none."""
    con = connect(db)
    try:
        row = con.execute(
            "SELECT p.ids_sha256, p.scores FROM results r JOIN predictions p ON p.result_id = r.id "
            "WHERE r.protocol = ? AND r.fingerprint = ? AND r.submission_sha256 = ? ORDER BY r.id LIMIT 1",
            (result.protocol, result.data_fingerprint, result.submission_sha256)).fetchone()
    finally:
        con.close()
    return None if row is None else _unpack(row[1])


# --- ranking -------------------------------------------------------------------------------


def ranked_tables(db: str | os.PathLike[str]) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """protocol → [(fingerprint, ranked table)]: results ranked by the main metric within each data
    fingerprint and protocol version, with p-values against the row above and the leader where the main metric is ρ."""
    df = entries(db)
    out: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    con = connect(db)
    try:
        for protocol in sorted(df["protocol"].unique()):
            decl = PROTOCOLS.get(protocol)
            higher = decl.higher_is_better if decl else True
            sections = []
            sub = df[df["protocol"] == protocol]
            groups = sub.sort_values("id")[["fingerprint", "protocol_version"]].drop_duplicates()
            for fp, version in groups.itertuples(index=False):
                g = sub[(sub["fingerprint"] == fp) & (sub["protocol_version"] == version)].copy()
                key = g["main_value"].astype(float) * (-1 if higher else 1)
                g = g.assign(_key=key.fillna(np.inf)).sort_values(["_key", "id"]).drop(columns="_key")
                g["rank"] = np.arange(1, len(g) + 1)
                g["p_vs_above"], g["p_vs_leader"] = np.nan, np.nan
                if len(g) > 1 and g["main_metric"].iloc[0] == "spearman":
                    arrays = [_paired_arrays(con, int(i), fp) for i in g["id"]]
                    p_above, p_lead = [np.nan], [np.nan]
                    for k in range(1, len(g)):
                        p_above.append(_steiger_p(arrays[k - 1], arrays[k]))
                        p_lead.append(_steiger_p(arrays[0], arrays[k]))
                    g["p_vs_above"], g["p_vs_leader"] = p_above, p_lead
                # results of an older protocol version form their own section, labelled as such
                label = fp if decl is None or version == decl.version else f"{fp} (protocol v{version})"
                sections.append((label, g.reset_index(drop=True)))
            out[protocol] = sections
    finally:
        con.close()
    return out


def _steiger_p(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None) -> float:
    if a is None or b is None or a[0].shape != b[0].shape or a[0].size <= 3:
        return float("nan")
    return compare(a[0], a[1], b[1]).steiger_p


def reported_rows(protocol: str) -> list[dict[str, Any]]:
    """The paper's reported numbers for a protocol, as table rows (metric name → value)."""
    src = "Kong et al. ECCV 2016"
    if protocol == "aadb":
        return [{"name": k, "spearman": v, "source": f"{src}, Table 2"} for k, v in paper.TABLE2_AADB_RHO.items()]
    if protocol == "ava":
        return [{"name": k, "spearman": rho, "accuracy": acc / 100.0, "source": f"{src}, Table 3"}
                for k, (rho, acc) in paper.TABLE3_AVA.items()]
    if protocol == "human":
        rows = [{"name": f"human raters who rated > {t} images ({n} workers, mean ρ)",
                 f"workers_gt{t}_mean_rho": rho, "source": f"{src}, Table 6"} for t, (n, rho) in paper.TABLE6_HUMAN.items()]
        rows.append({"name": "Reg+Rank+Att+Cont (paper's best model)", "spearman": paper.TABLE6_OUR_BEST_RHO,
                     "source": f"{src}, Table 6"})
        return rows
    if protocol == "cross-dataset":
        row: dict[str, Any] = {"name": "Reg+Rank+Att+Cont (paper)", "source": f"{src}, Table 7"}
        for (a, b), v in paper.TABLE7_CROSS.items():
            row[f"rho[{a}->{b}]"] = v
        row["mean_transfer_rho"] = (paper.TABLE7_CROSS[("aadb", "ava")] + paper.TABLE7_CROSS[("ava", "aadb")]) / 2
        row["mean_in_domain_rho"] = (paper.TABLE7_CROSS[("aadb", "aadb")] + paper.TABLE7_CROSS[("ava", "ava")]) / 2
        return [row]
    return []


# --- rendering -----------------------------------------------------------------------------


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if np.isnan(v):
        return ""
    return f"{v:.{digits}f}"


def _sig(p: float) -> str:
    if p is None or np.isnan(p):
        return ""
    mark = "*" if p < ALPHA else "n.s."
    return f"{p:.3g} {mark}"


def _metric_columns(groups: list[pd.DataFrame], reported: list[dict[str, Any]], main: str) -> list[str]:
    cols: list[str] = [main]
    for g in groups:
        for m in g["metrics"]:
            for k in m:
                if k not in cols:
                    cols.append(k)
    for r in reported:
        for k in r:
            if k not in ("name", "source") and k not in cols:
                cols.append(k)
    return cols


def _table_rows(protocol: str, sections: list[tuple[str, pd.DataFrame]]) -> tuple[list[str], list[dict[str, str]]]:
    """Column names and string rows (submitted rows ranked per fingerprint, then reported rows)."""
    decl = PROTOCOLS.get(protocol)
    main = decl.main_metric if decl else (sections[0][1]["main_metric"].iloc[0] if sections else "value")
    reported = reported_rows(protocol)
    metric_cols = _metric_columns([g for _, g in sections], reported, main)
    columns = ["kind", "fingerprint", "rank", "name", *metric_cols, f"{main} 95% CI", "p vs above", "p vs leader",
               "n_images", "submission", "recorded_utc", "source"]
    rows: list[dict[str, str]] = []
    for fp, g in sections:
        for _, r in g.iterrows():
            m = r["metrics"]
            row = {"kind": "submitted", "fingerprint": fp, "rank": str(int(r["rank"])), "name": r["name"]}
            for c in metric_cols:
                row[c] = _fmt(m.get(c, {}).get("value"))
            lo, hi = r["ci_low"], r["ci_high"]
            row[f"{main} 95% CI"] = f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None and not pd.isna(lo) else ""
            row["p vs above"], row["p vs leader"] = _sig(r["p_vs_above"]), _sig(r["p_vs_leader"])
            row["n_images"] = str(int(r["n_images"]))
            row["submission"] = str(r["submission_sha256"])
            row["recorded_utc"] = str(r["recorded_utc"])
            row["source"] = f"aadb_toolkit {r['toolkit_version']}, protocol v{r['protocol_version']}"
            rows.append(row)
    for rep in reported:
        row = {c: "" for c in columns}
        row.update(kind="reported", fingerprint="(paper's data)", rank="", name=rep["name"], source=rep["source"])
        for c in metric_cols:
            row[c] = _fmt(rep.get(c))
        rows.append(row)
    return columns, rows


def format_markdown(db: str | os.PathLike[str], protocol: str = "aadb") -> str:
    """The Markdown leaderboard of one protocol (what :func:`render` writes to ``<protocol>.md``)."""
    tables = ranked_tables(db)
    return _markdown(protocol, tables.get(protocol, []))


def _short(fp: str) -> str:
    return fp if len(fp) <= 23 else fp[:23] + "…"


def _md_cell(text: str) -> str:
    """A name made inert in a Markdown table cell: ``\\ < [ ] ` |`` are backslash-escaped, so a name
    cannot open an HTML tag (``<script>``), a link or code span, or split the table row."""
    return re.sub(r"([\\<\[\]`|])", r"\\\1", text)


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formula injection: a text cell starting with ``= + - @`` (or tab/CR)
    that is not a number gets a leading ``'`` so spreadsheet programs show it as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _markdown(protocol: str, sections: list[tuple[str, pd.DataFrame]]) -> str:
    decl = PROTOCOLS.get(protocol)
    columns, rows = _table_rows(protocol, sections)
    show = [c for c in columns if c not in ("kind", "fingerprint", "submission", "recorded_utc", "source")]
    lines = [f"# Leaderboard: `{protocol}`", ""]
    if decl:
        lines += [f"{decl.description}. Protocol version {decl.version}; ranked by `{decl.main_metric}`.", ""]
    lines += [f"Marks: `*` = the difference in ρ to the row above / to the leader is significant at "
              f"{ALPHA} (Steiger's Z on the stored predictions, two-sided); `n.s.` = not significant. "
              "Results are ranked only against results with the same data fingerprint.", ""]

    def table(rs: list[dict[str, str]], cols: list[str]) -> list[str]:
        out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        for r in rs:
            out.append("| " + " | ".join(_md_cell(r[c]) if c == "name" else r[c].replace("|", "\\|")
                                         for c in cols) + " |")
        return out

    for fp, g in sections:
        sub = [r for r in rows if r["kind"] == "submitted" and r["fingerprint"] == fp]
        lines += [f"## Data fingerprint `{_short(fp)}` ({len(sub)} result(s), {sub[0]['n_images']} images)", ""]
        lines += table(sub, show) + [""]
    if not sections:
        lines += ["No results recorded yet.", ""]
    rep = [r for r in rows if r["kind"] == "reported"]
    if rep:
        rep_cols = ["name", *[c for c in show if c not in ("rank", "name", "p vs above", "p vs leader", "n_images")
                              and any(r[c] for r in rep)], "source"]
        lines += ["## Reported in the paper (marked `reported`)", "",
                  "Numbers the paper reports on the real AADB/AVA. They are not ranked against the rows above: "
                  "those were computed on data with their own fingerprint, which is not the paper's data.", ""]
        lines += table([{**r, "name": f"{r['name']} (reported)"} for r in rep], rep_cols) + [""]
    return "\n".join(lines)


def _html(protocol: str, sections: list[tuple[str, pd.DataFrame]]) -> str:
    columns, rows = _table_rows(protocol, sections)
    decl = PROTOCOLS.get(protocol)
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>Leaderboard: {e(protocol)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}tr.reported{background:#f3f3f3;"
             "font-style:italic}</style></head><body>", f"<h1>Leaderboard: <code>{e(protocol)}</code></h1>"]
    if decl:
        parts.append(f"<p>{e(decl.description)}. Protocol version {e(decl.version)}; ranked by "
                     f"<code>{e(decl.main_metric)}</code>. Marks: * = significant difference in ρ at {ALPHA} "
                     "(Steiger's Z); n.s. = not significant. Results are ranked only against results with the "
                     "same data fingerprint; reported rows are the paper's numbers on its own data.</p>")
    show = [c for c in columns if c not in ("fingerprint",)]
    groups = [(f"Data fingerprint {fp}", [r for r in rows if r["kind"] == "submitted" and r["fingerprint"] == fp])
              for fp, _ in sections]
    groups.append(("Reported in the paper (not ranked against our data)", [r for r in rows if r["kind"] == "reported"]))
    for title, rs in groups:
        if not rs:
            continue
        parts.append(f"<h2>{e(title)}</h2><table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in show)
                     + "</tr></thead><tbody>")
        for r in rs:
            parts.append(f"<tr class=\"{e(r['kind'])}\">" + "".join(f"<td>{e(r[c])}</td>" for c in show) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _csv(protocol: str, sections: list[tuple[str, pd.DataFrame]]) -> str:
    columns, rows = _table_rows(protocol, sections)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["protocol", *columns], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_cell(v) for k, v in {"protocol": protocol, **r}.items()})
    return buf.getvalue()


def render(db: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``<protocol>.md``, ``.html`` and ``.csv`` for every protocol (recorded or with reported
    numbers) and an ``index.md``/``index.html``, each file atomically; returns name → path."""
    out = Path(out_dir)
    tables = ranked_tables(db)
    protocols = list(dict.fromkeys([*PROTOCOLS, *tables]))
    written: dict[str, Path] = {}
    index_md = ["# Leaderboards", ""]
    index_html = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Leaderboards</title></head>"
                  "<body><h1>Leaderboards</h1><ul>"]
    for protocol in protocols:
        sections = tables.get(protocol, [])
        safe = protocol.replace("/", "_")
        for ext, text in (("md", _markdown(protocol, sections)), ("html", _html(protocol, sections)),
                          ("csv", _csv(protocol, sections))):
            path = out / f"{safe}.{ext}"
            write_text(path, text)
            written[f"{safe}.{ext}"] = path
        n = sum(len(g) for _, g in sections)
        index_md.append(f"- [{protocol}]({safe}.md): {n} result(s) in {len(sections)} data fingerprint(s)")
        index_html.append(f"<li><a href=\"{html.escape(safe)}.html\">{html.escape(protocol)}</a>: {n} result(s)</li>")
    index_html.append("</ul></body></html>")
    write_text(out / "index.md", "\n".join(index_md) + "\n")
    write_text(out / "index.html", "\n".join(index_html) + "\n")
    written["index.md"], written["index.html"] = out / "index.md", out / "index.html"
    return written


def iter_results(db: str | os.PathLike[str]) -> Iterator[Result]:
    """Every recorded result, parsed back into :class:`Result` objects (without predictions)."""
    for doc in entries(db)["document"]:
        yield Result.from_dict(json.loads(doc))
