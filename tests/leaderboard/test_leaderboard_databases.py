"""The store refuses databases that are not leaderboards (untouched) and reports a damaged or
hostile leaderboard database as a clear error, never a traceback."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import leaderboard
from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols.results import Metric, PairedData, make_result

N = 30


def _result(noise, seed=0, fingerprint="sha256:fp"):
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.normal(3, 0.6, N), index=[f"i{k:03d}.jpg" for k in range(N)])
    paired = PairedData.from_series(truth, truth + np.random.default_rng(seed + 1).normal(0, noise, N))
    return make_result(protocol="aadb", protocol_version="1", main_metric="spearman",
                       metrics={"spearman": Metric(0.5 - noise / 10)}, data_fingerprint=fingerprint,
                       submission_sha256=f"sha256:{noise}-{seed}", n_images=N, seed=0, n_boot=0, paired=paired)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _contacts(path):
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        con.execute("INSERT INTO contacts VALUES ('Ada', '555')")
    con.close()
    return path


def test_a_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path, capsys):
    db = _contacts(tmp_path / "contacts.db")
    before = _digest(db)
    with pytest.raises(InputError, match="not an aadb leaderboard"):
        leaderboard.record(db, _result(0.3), "m")
    with pytest.raises(InputError, match="not an aadb leaderboard"):
        leaderboard.check_database(db)
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o")]) == 1
    assert "not an aadb leaderboard" in capsys.readouterr().err
    assert _digest(db) == before
    with sqlite3.connect(db) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["contacts"]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not (tmp_path / "contacts.db-wal").exists()


def test_a_foreign_database_with_lookalike_tables_is_refused(tmp_path):
    db = tmp_path / "lookalike.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        con.execute("CREATE TABLE results (id INTEGER, protocol TEXT)")
    con.close()
    with pytest.raises(InputError, match="not an aadb leaderboard"):
        leaderboard.record(db, _result(0.3), "m")


def test_new_and_empty_files_become_marked_leaderboards(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for db in (tmp_path / "sub" / "new.db", empty):
        leaderboard.record(db, _result(0.3), "m")
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA application_id").fetchone()[0] == leaderboard.APPLICATION_ID
        con.close()


class _CommitsMidCheck:
    """A connection that lets another writer create the leaderboard just before its statement
    number ``at``: the moment when concurrent first writers race."""

    def __init__(self, con, db, at):
        self.con, self.db, self.at, self.calls = con, db, at, 0

    def execute(self, *args):
        self.calls += 1
        if self.calls == self.at:
            leaderboard.record(self.db, _result(0.1), "the other writer")
        return self.con.execute(*args)


@pytest.mark.parametrize("at", [2, 3])
def test_a_leaderboard_created_by_another_writer_mid_check_is_not_refused(tmp_path, at):
    """Deciding what a file is reads one snapshot: another writer committing the schema between
    two reads does not make a new leaderboard look like a foreign database."""
    from aadb_toolkit.leaderboard import store

    db = tmp_path / "lb.db"
    con = sqlite3.connect(db, isolation_level=None)
    try:
        assert store._kind(_CommitsMidCheck(con, db, at), db) in ("new", "ours")
    finally:
        con.close()
    assert leaderboard.record(db, _result(0.2), "this writer").inserted


def test_a_leaderboard_written_before_the_marker_is_adopted(tmp_path):
    db = tmp_path / "old.db"
    leaderboard.record(db, _result(0.3), "m")
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA application_id = 0")
    con.close()
    assert leaderboard.record(db, _result(0.4, seed=1), "m2").inserted
    assert len(leaderboard.entries(db)) == 2


def _board(tmp_path):
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.3), "m1")
    leaderboard.record(db, _result(0.6, seed=2), "m2")
    return db


def _corrupt(db, sql, *params):
    with sqlite3.connect(db) as con:
        con.execute(sql, params)
    con.close()


@pytest.mark.parametrize("sql, params, message", [
    ("UPDATE results SET document = ? WHERE name = 'm2'", ("{not json",), "not valid JSON"),
    ("UPDATE results SET document = ? WHERE name = 'm2'", ('{"metrics": 3}',), "not a result"),
    ("UPDATE results SET document = ? WHERE name = 'm2'", ('{"format": "aadb-result", "metrics": {}}',),
     "schema_version"),
    ("UPDATE results SET document = replace(document, '\"seed\": 0', '\"seed\": 1e999') WHERE name = 'm2'", (),
     "settings.seed is not a finite number"),
    ("UPDATE predictions SET scores = ? WHERE result_id = 2", (b"\x00garbage",), "damaged"),
    ("UPDATE predictions SET scores = ? WHERE result_id = 2", (__import__("zlib").compress(b"1234567"),), "damaged"),
    ("UPDATE ground_truth SET truth = ?", ("text, not a blob",), "damaged"),
    ("UPDATE predictions SET scores = ? WHERE result_id = 2",
     (__import__("zlib").compress(np.zeros(3).tobytes()),), "hold 3 values"),
    ("UPDATE predictions SET scores = ? WHERE result_id = 2",
     (__import__("zlib").compress(np.full(N, np.nan).tobytes()),), "scores are damaged: 30 of 30 values are not finite"),
    ("UPDATE ground_truth SET truth = ?",
     (__import__("zlib").compress(np.r_[np.inf, np.ones(N - 1)].tobytes()),), "truth are damaged: 1 of 30 values"),
    ("UPDATE meta SET value = ? WHERE key = 'schema_version'", ("99",), "schema version"),
    ("UPDATE results SET n_images = ? WHERE name = 'm2'", ("many",), "not a count"),
    ("UPDATE results SET name = ? WHERE name = 'm2'", (b"\x00\x01",), "name is not text"),
    ("ALTER TABLE results DROP COLUMN recorded_utc", (), "columns"),
    ("DROP TABLE predictions", (), "columns"),
])
def test_a_hostile_leaderboard_database_gives_a_clear_error(tmp_path, capsys, sql, params, message):
    db = _board(tmp_path)
    _corrupt(db, sql, *params)
    with pytest.raises(InputError, match=message) as err:
        leaderboard.render(db, tmp_path / "o")
    assert str(db) in str(err.value)
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o2")]) == 1
    err_text = capsys.readouterr().err
    assert message in err_text and "Traceback" not in err_text


def test_non_finite_stored_predictions_are_refused_for_compare_too(tmp_path):
    """NaN predictions would make every ρ undefined and the marks meaningless: the row's blob is
    damaged wherever it is read, for a board or for ``aadb score --compare RESULT.json``."""
    db = _board(tmp_path)
    _corrupt(db, "UPDATE predictions SET scores = ? WHERE result_id = 2",
             __import__("zlib").compress(np.full(N, np.nan).tobytes()))
    with pytest.raises(InputError, match="row 2, field 'scores': stored scores are damaged") as err:
        leaderboard.recorded_predictions(db, _result(0.6, seed=2))
    assert str(db) in str(err.value)


def test_print_of_an_unknown_protocol_is_an_error_with_a_suggestion(tmp_path, capsys):
    db = _board(tmp_path)
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o"), "--print", "adb"]) == 1
    err = capsys.readouterr().err
    assert "unknown protocol 'adb'" in err and "did you mean aadb" in err


def test_name_without_leaderboard_is_an_error(tmp_path, capsys):
    rc = main(["score", "--submission", str(tmp_path / "s.csv"), "--protocol", "aadb", "--data", str(tmp_path),
               "--out", str(tmp_path / "r.json"), "--name", "my model"])
    err = capsys.readouterr().err
    assert rc == 1 and "--name" in err and "needs --db" in err
    assert not (tmp_path / "r.json").exists()


def test_score_never_puts_its_leaderboard_inside_an_input_or_another_output(tiny_curated, tmp_path, capsys):
    """``--db`` grows a SQLite file in place: inside the curated folder (an input, and the
    output of aadb curate) it would change the data; refused before any scoring."""
    import shutil

    from aadb_toolkit import _atomic

    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    images = pd.read_parquet(cur / "images.parquet")
    test = images[images["split"] == "test"]
    sub = tmp_path / "sub.csv"
    pd.DataFrame({"image_id": test["image_id"], "score": np.arange(len(test))}).to_csv(sub, index=False)
    report = tmp_path / "report"
    with _atomic.atomic_dir(report, kind="report") as stage:
        (stage / "a.txt").write_text("1")
    for db, why in ((cur / "lb.sqlite", "inside the input"), (report / "lb.sqlite", "inside the report folder")):
        rc = main(["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(cur), "--n-boot", "10",
                   "--out", str(tmp_path / "r.json"), "--db", str(db), "--name", "m"])
        err = capsys.readouterr().err
        assert rc == 1 and why in err and "Traceback" not in err, err
        assert not db.exists() and not (tmp_path / "r.json").exists()
    link = tmp_path / "link.sqlite"
    link.symlink_to(tmp_path / "elsewhere.sqlite")
    rc = main(["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(cur), "--n-boot", "10",
               "--out", str(tmp_path / "r.json"), "--db", str(link), "--name", "m"])
    assert rc == 1 and "symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.sqlite").exists()


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_checking_a_database_before_scoring_writes_nothing(tmp_path):
    """Review: ``check_database`` (run before anything is scored) made an empty ``--db`` file a
    leaderboard and marked an unmarked one, so a command wrote over a file before it had a result
    to record. The check only reads: the file's bytes stay, and no journal appears beside it."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    leaderboard.check_database(empty)
    assert empty.read_bytes() == b"" and _listing(tmp_path) == ["empty.db"]
    old = tmp_path / "old" / "old.db"
    leaderboard.record(old, _result(0.3), "m")
    with sqlite3.connect(old) as con:
        con.execute("PRAGMA application_id = 0")
        con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    before = _digest(old)
    leaderboard.check_database(old)
    assert _digest(old) == before and _listing(old.parent) == ["old.db"]


def test_reading_a_database_never_makes_one(tmp_path, capsys):
    """Rendering or reading back results is no reason to write: an empty file stays empty (and is
    said to hold no leaderboard yet), a missing one is not created, not even its folder."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert main(["leaderboard", "--db", str(empty), "--print", "aadb"]) == 1
    err = capsys.readouterr().err
    assert "no result is recorded in it yet" in err and str(empty) in err and "Traceback" not in err
    with pytest.raises(InputError, match="no result is recorded in it yet"):
        leaderboard.entries(empty)
    missing = tmp_path / "nowhere" / "lb.db"
    with pytest.raises(InputError, match="no such leaderboard database"):
        leaderboard.recorded_predictions(missing, _result(0.3))
    assert empty.read_bytes() == b"" and _listing(tmp_path) == ["empty.db"]


def test_a_board_is_read_without_switching_its_journal(tmp_path):
    """A read leaves even a leaderboard's own header alone (its journal mode is the writers' business),
    and no journal file behind."""
    db = _board(tmp_path)
    leaderboard.render(db, tmp_path / "wal")
    assert _listing(tmp_path) == ["lb.db", "wal"]
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    before = _digest(db)
    leaderboard.render(db, tmp_path / "o")
    assert _digest(db) == before and not (tmp_path / "lb.db-wal").exists()


def test_a_failed_score_leaves_the_empty_db_file_it_was_given_as_it_was(tiny_curated, tmp_path, capsys):
    """Review: ``aadb score --db EMPTY`` turned the file into a leaderboard before scoring, so a
    submission refused afterwards left a leaderboard behind with no result in it."""
    db = tmp_path / "lb.sqlite"
    db.write_bytes(b"")
    sub = tmp_path / "sub.csv"
    sub.write_text("image_id,score\nnot-an-image.jpg,1\n")
    rc = main(["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated), "--n-boot", "10",
               "--out", str(tmp_path / "r.json"), "--db", str(db), "--name", "m"])
    err = capsys.readouterr().err
    assert rc == 1 and "invalid submission" in err and "Traceback" not in err, err
    assert db.read_bytes() == b"" and _listing(tmp_path) == ["lb.sqlite", "sub.csv"]
