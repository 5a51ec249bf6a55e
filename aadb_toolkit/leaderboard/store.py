"""The leaderboard's store: scored results in an embedded SQLite database.

- :func:`record` adds a result in one transaction (WAL mode, busy timeout), so concurrent
  ``aadb score --leaderboard`` processes lose nothing; a UNIQUE constraint on (protocol, protocol
  version, fingerprint, submission hash, name) makes re-submitting the same file idempotent.
- A database is ours only when it carries the leaderboard's schema marker (SQLite's
  ``application_id``); any other SQLite file is refused untouched: no table is added to it and its
  journal mode is not switched. A new (absent or empty) file becomes a leaderboard when the first
  result is recorded in it; reading (a board, a check before scoring) is query-only: it writes nothing.
- Whatever is read back (schema, JSON documents, prediction blobs) is checked, so a damaged or
  hostile database gives a clear error naming the row, never a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..data import sha256_fingerprint
from ..errors import InputError
from ..protocols.results import Result

SCHEMA_VERSION = 1
#: The leaderboard's schema marker, SQLite's ``PRAGMA application_id`` ("AADB" in ASCII).
APPLICATION_ID = 0x41414442
BUSY_TIMEOUT_S = 60.0
MAX_NAME_LENGTH = 120

#: Every table of the schema and its columns, in order (what :func:`connect` checks).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "results": ("id", "protocol", "protocol_version", "fingerprint", "submission_sha256", "name", "main_metric",
                "main_value", "ci_low", "ci_high", "n_images", "toolkit_version", "recorded_utc", "document"),
    "predictions": ("result_id", "ids_sha256", "scores"),
    "ground_truth": ("fingerprint", "ids_sha256", "n", "truth"),
}
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


def _kind(con: sqlite3.Connection, db: Path) -> str:
    """``"ours"`` (marked), ``"new"`` (no schema object at all) or ``"unmarked"`` (a leaderboard of
    this schema written before the marker existed); any other database raises, untouched. The
    marker and the schema are read in one statement, so one snapshot: a leaderboard that another
    writer creates meanwhile is seen whole or not at all, never as a foreign database."""
    app_id, n_objects, names = con.execute(
        "SELECT (SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM sqlite_master), "
        "(SELECT group_concat(name, char(31)) FROM sqlite_master WHERE type = 'table')").fetchone()
    if app_id == APPLICATION_ID:
        return "ours"
    # a name holding the separator only garbles what the error shows: the schema check still reads each table
    tables = sorted(names.split("\x1f")) if names else []
    if app_id == 0 and n_objects == 0:
        return "new"
    if app_id == 0 and set(tables) == set(TABLE_COLUMNS) and not _schema_problems(con):
        return "unmarked"
    shown = ", ".join(repr(t[:40]) for t in tables[:5]) + (", …" if len(tables) > 5 else "")
    raise InputError(f"is an SQLite database but not an aadb leaderboard (no leaderboard schema marker; "
                     f"tables: {shown or 'none'}); it was left unchanged. Give --db a new file",
                     file=str(db))


def _schema_problems(con: sqlite3.Connection) -> list[str]:
    """What differs from the leaderboard's schema (missing tables or columns, schema version)."""
    problems = []
    for table, columns in TABLE_COLUMNS.items():
        found = tuple(r[1] for r in con.execute(f"PRAGMA table_info({table})"))
        if found != columns:
            problems.append(f"table {table!r} has columns {list(found)}, expected {list(columns)}")
    if not problems:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or str(row[0]) != str(SCHEMA_VERSION):
            problems.append(f"leaderboard schema version {None if row is None else row[0]!r} is not supported "
                            f"(this toolkit uses {SCHEMA_VERSION})")
    return problems


def _open(con: sqlite3.Connection, db: Path, *, write: bool) -> str:
    """Check the marker and the schema; return what the file is (:func:`_kind`). Only a writer
    creates the schema in a new database, marks an unmarked one and switches to WAL."""
    kind = _kind(con, db)
    if write and kind != "ours":
        with _transaction(con):
            if _kind(con, db) == "new":  # again under the write lock: another process may have created it
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    con.execute(stmt)
                con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        kind = "ours"
    problems = _schema_problems(con) if kind != "new" else []
    if problems:
        raise InputError("not a usable leaderboard database: " + "; ".join(problems), file=str(db))
    if write:
        _use_wal(con, db)
    con.execute("PRAGMA foreign_keys = ON")
    return kind


def _use_wal(con: sqlite3.Connection, db: Path) -> None:
    """Switch a leaderboard to WAL (concurrent writers wait, never fail) with normal syncing."""
    mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise InputError(f"cannot switch the database to WAL mode (got {mode!r})", file=str(db))
    con.execute("PRAGMA synchronous = NORMAL")


def connect(db: str | os.PathLike[str], *, write: bool = True) -> sqlite3.Connection:
    """Open a leaderboard database: marker and schema checked, busy timeout. A writer (what
    :func:`record` needs) makes a new (absent or empty) file a leaderboard and uses WAL; a reader
    (``write=False``) changes nothing (a query-only connection: the file is neither created nor
    marked nor switched to WAL) and refuses a file that holds no leaderboard yet. A file that is
    not a leaderboard is refused and left unchanged."""
    return _connect(Path(db), write=write, new_ok=write)


def _connect(db: Path, *, write: bool, new_ok: bool) -> sqlite3.Connection:
    """:func:`connect`; ``new_ok`` lets a reader accept a file with no schema yet (an empty file)."""
    if db.exists() and not db.is_file():
        raise InputError("exists and is not a file", file=str(db))
    if not write and not db.exists():
        raise InputError("no such leaderboard database", file=str(db))
    if write:
        db.parent.mkdir(parents=True, exist_ok=True)
    # a reader neither creates the file (mode=rw) nor changes it (query_only), yet, unlike mode=ro,
    # cleans up the WAL side files it opened when it closes
    address = str(db) if write else db.absolute().as_uri() + "?mode=rw"
    con = sqlite3.connect(address, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=not write)
    try:
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        con.execute(f"PRAGMA query_only = {int(not write)}")
        if _retry_locked(lambda: _open(con, db, write=write)) == "new" and not new_ok:
            raise InputError("holds no leaderboard: no result is recorded in it yet (`aadb score --db` records "
                             "one)", file=str(db))
    except sqlite3.DatabaseError as exc:
        con.close()
        if _is_lock_error(exc):
            raise InputError(f"leaderboard database stayed locked by other writers: {exc}", file=str(db)) from exc
        raise InputError(f"not a usable leaderboard database: {exc}", file=str(db)) from exc
    except BaseException:
        con.close()
        raise
    return con


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
    """Raise :class:`InputError` when ``db`` exists but is not a usable leaderboard database; a
    missing or empty file is fine (:func:`record` makes it one). Checked before scoring and only
    read, so neither a bad ``--db`` nor a submission refused afterwards leaves anything written."""
    if Path(db).exists():
        _connect(Path(db), write=False, new_ok=True).close()


def _ids_hash(ids: tuple[str, ...] | list[str]) -> str:
    return sha256_fingerprint("\n".join(ids))


def _pack(values: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(values, dtype="<f8").tobytes(), 6)


def _unpack(blob: object, *, db: Path, row: int, field: str) -> np.ndarray:
    """A stored float64 vector of finite values; a blob that is not one is an error naming the row
    and field. Scored predictions and ground truth are finite (submissions are checked, means of
    ratings are), and a NaN would leave every ρ undefined and its significance marks meaningless."""
    try:
        if not isinstance(blob, bytes):
            raise ValueError(f"expected a blob, found {type(blob).__name__}")
        values = np.frombuffer(zlib.decompress(blob), dtype="<f8")
        bad = int(values.size - np.isfinite(values).sum())
        if bad:
            raise ValueError(f"{bad} of {values.size} values are not finite")
        return values
    except (zlib.error, ValueError) as exc:
        raise InputError(f"stored {field} are damaged: {exc}", file=str(db), row=row, field=field) from None


def _query(db: str | os.PathLike[str], fn, *, write: bool = False):
    """Run ``fn(con)`` on an open database (read-only unless ``write``); SQLite errors become clear
    errors naming the file."""
    con = connect(db, write=write)
    try:
        return fn(con)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise InputError(f"cannot read the leaderboard database: {exc}", file=str(db)) from exc
    finally:
        con.close()


def record(db: str | os.PathLike[str], result: Result, name: str) -> RecordOutcome:
    """Record a scored result under a display ``name`` in one transaction; recording the same
    (protocol, protocol version, fingerprint, submission, name) again changes nothing and returns the
    existing row; after a protocol version bump the same file is a new result."""
    name = check_name(name)
    main = result.metrics.get(result.main_metric)
    if main is None:
        raise InputError(f"result has no value for its main metric {result.main_metric!r}")
    if result.paired is not None and not (np.isfinite(result.paired.predictions).all()
                                          and np.isfinite(result.paired.truth).all()):
        raise InputError("the result's paired predictions or ground truth are not finite everywhere; not "
                         "recorded (the board's significance tests would read them)", field="paired")
    doc = json.dumps(result.to_dict(), sort_keys=True, allow_nan=False)
    key = (result.protocol, result.protocol_version, result.data_fingerprint, result.submission_sha256, name)
    row = (*key, result.main_metric, main.value, main.ci_low, main.ci_high, result.n_images, result.toolkit_version,
           result.created_utc or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), doc)

    def write(con: sqlite3.Connection) -> RecordOutcome:
        with _transaction(con):
            cur = con.execute(
                "INSERT OR IGNORE INTO results (protocol, protocol_version, fingerprint, submission_sha256, name, "
                "main_metric, main_value, ci_low, ci_high, n_images, toolkit_version, recorded_utc, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            if cur.rowcount == 0:
                rid = con.execute("SELECT id FROM results WHERE protocol = ? AND protocol_version = ? AND "
                                  "fingerprint = ? AND submission_sha256 = ? AND name = ?", key).fetchone()[0]
                return RecordOutcome(int(rid), False)
            rid = int(cur.lastrowid)
            if result.paired is not None:
                ids_sha = _ids_hash(result.paired.image_ids)
                con.execute("INSERT INTO predictions (result_id, ids_sha256, scores) VALUES (?, ?, ?)",
                            (rid, ids_sha, _pack(result.paired.predictions)))
                con.execute("INSERT OR IGNORE INTO ground_truth (fingerprint, ids_sha256, n, truth) VALUES (?, ?, ?, ?)",
                            (result.data_fingerprint, ids_sha, len(result.paired.image_ids), _pack(result.paired.truth)))
            return RecordOutcome(rid, True)

    return _query(db, lambda con: _retry_locked(lambda: write(con)), write=True)


def _parse_document(text: object, *, db: Path, row: int) -> Result:
    """A stored result document, parsed and checked; a damaged one is an error naming its row."""
    try:
        doc = json.loads(text) if isinstance(text, (str, bytes)) else None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"stored result document is not valid JSON: {exc}", file=str(db), row=row,
                         field="document") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict) or not all(
            isinstance(m, dict) for m in doc["metrics"].values()):
        raise InputError("stored result document is not a result (no metrics object)", file=str(db), row=row,
                         field="document")
    try:
        return Result.from_dict(doc)
    except InputError as exc:
        raise InputError(str(exc), file=str(db), row=row, field="document") from None


_TEXT_COLUMNS = ("protocol", "protocol_version", "fingerprint", "submission_sha256", "name", "main_metric",
                 "toolkit_version", "recorded_utc")


def _check_columns(df: pd.DataFrame, db: Path) -> None:
    """Every stored text column holds text and ``n_images`` a count; else an error naming the row."""
    for col in _TEXT_COLUMNS:
        bad = ~df[col].map(lambda v: isinstance(v, str))
        if bad.any():
            row = int(df["id"][bad].iloc[0])
            raise InputError(f"stored {col} is not text ({df[col][bad].iloc[0]!r:.40})", file=str(db), row=row,
                             field=col)
    n = pd.to_numeric(df["n_images"], errors="coerce")
    bad = n.isna() | (n < 0) | (n != n.round())
    if bad.any():
        raise InputError(f"stored n_images is not a count ({df['n_images'][bad].iloc[0]!r:.40})", file=str(db),
                         row=int(df["id"][bad].iloc[0]), field="n_images")
    df["n_images"] = n.astype(int)


def entries(db: str | os.PathLike[str]) -> pd.DataFrame:
    """Every recorded result, one row each: the stored columns, its parsed ``metrics`` (name →
    ``{"value", ...}``), and the provenance of its data (``synthetic``, ``dataset``)."""
    df = _query(db, lambda con: pd.read_sql_query(
        "SELECT id, protocol, protocol_version, fingerprint, submission_sha256, name, main_metric, main_value, "
        "ci_low, ci_high, n_images, toolkit_version, recorded_utc, document FROM results ORDER BY id", con))
    _check_columns(df, Path(db))
    results = [_parse_document(d, db=Path(db), row=int(i)) for i, d in zip(df["id"], df["document"])]
    df["metrics"] = [{k: m.to_dict() for k, m in r.metrics.items()} for r in results]
    df["synthetic"] = [r.synthetic for r in results]
    df["dataset"] = [r.dataset for r in results]
    for col in ("main_value", "ci_low", "ci_high"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def paired_arrays(con: sqlite3.Connection, db: Path, result_id: int,
                  fingerprint: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The stored (truth, predictions) of one result, or None when the database has none for it."""
    p = con.execute("SELECT ids_sha256, scores FROM predictions WHERE result_id = ?", (result_id,)).fetchone()
    t = con.execute("SELECT ids_sha256, truth FROM ground_truth WHERE fingerprint = ?", (fingerprint,)).fetchone()
    if p is None or t is None or p[0] != t[0]:
        return None
    truth = _unpack(t[1], db=db, row=result_id, field="truth")
    pred = _unpack(p[1], db=db, row=result_id, field="scores")
    if truth.shape != pred.shape:
        raise InputError(f"stored predictions hold {pred.size} values but the ground truth {truth.size}",
                         file=str(db), row=result_id, field="scores")
    return truth, pred


def recorded_predictions(db: str | os.PathLike[str], result: Result) -> np.ndarray | None:
    """The stored predictions of a recorded result (aligned to its sorted image ids), found by
    protocol, data fingerprint and submission hash; None when the database has none."""
    row = _query(db, lambda con: con.execute(
        "SELECT r.id, p.scores FROM results r JOIN predictions p ON p.result_id = r.id "
        "WHERE r.protocol = ? AND r.fingerprint = ? AND r.submission_sha256 = ? ORDER BY r.id LIMIT 1",
        (result.protocol, result.data_fingerprint, result.submission_sha256)).fetchone())
    return None if row is None else _unpack(row[1], db=Path(db), row=int(row[0]), field="scores")


def iter_results(db: str | os.PathLike[str]) -> Iterator[Result]:
    """Every recorded result, parsed back into :class:`Result` objects (without predictions)."""
    df = _query(db, lambda con: pd.read_sql_query("SELECT id, document FROM results ORDER BY id", con))
    for i, doc in zip(df["id"], df["document"]):
        yield _parse_document(doc, db=Path(db), row=int(i))
