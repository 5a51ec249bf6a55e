"""Submission validation: every malformed case gives a clear error with row numbers, all problems are
reported at once, and nothing is scored or stored on failure."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.submissions import SubmissionError, read_submission, sha256_file, write_predictions

IDS = ["img_a.jpg", "img_b.jpg", "img_c.jpg", "img_d.jpg"]


def _write(tmp_path, content, name="sub.csv"):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


def _problems(tmp_path, content, **kw):
    with pytest.raises(SubmissionError) as exc:
        read_submission(_write(tmp_path, content), IDS, **kw)
    return exc.value


GOOD = "image_id,score\nimg_a.jpg,0.1\nimg_b.jpg,0.4\nimg_c.jpg,-2.5\nimg_d.jpg,1e3\n"


def test_valid_submission_reads_scores_in_split_order(tmp_path):
    p = _write(tmp_path, "image_id,score\nimg_d.jpg,4\nimg_b.jpg,2\nimg_a.jpg,1\nimg_c.jpg,3.5\n")
    sub = read_submission(p, IDS)
    assert list(sub.scores.index) == IDS
    assert sub.scores.tolist() == [1.0, 2.0, 3.5, 4.0]
    assert sub.sha256 == sha256_file(p)


@pytest.mark.parametrize("content", [
    "\ufeff" + GOOD,  # UTF-8 BOM is fine
    GOOD.replace("\n", "\r\n"),  # CRLF
    GOOD.rstrip("\n"),  # no final newline
    GOOD + "\n\n",  # blank lines at the very end
    'image_id,score\n"img_a.jpg",0.1\nimg_b.jpg," 0.4"\nimg_c.jpg,-2.5\nimg_d.jpg,1000\n',  # quoting
])
def test_accepted_variants(tmp_path, content):
    sub = read_submission(_write(tmp_path, content), IDS)
    assert sub.scores["img_b.jpg"] == pytest.approx(0.4)


@pytest.mark.parametrize("content, row, needle", [
    ("image_id,score\nimg_a.jpg,0.1\nimg_b.jpg,0.4\nimg_c.jpg,0.3\n", None, "1 image(s) of the split have no row: 'img_d.jpg'"),
    (GOOD + "img_x.jpg,0.2\n", 6, "unknown image_id 'img_x.jpg'"),
    (GOOD + "img_b.jpg,0.2\n", 6, "duplicated image_id 'img_b.jpg' (first on row 3)"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg,nan"), 4, "score is NaN"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg,inf"), 4, "is infinite"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg,1e999"), 4, "is infinite"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg,high"), 4, "'high' is not a number"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg,"), 4, "score is empty"),
    (GOOD.replace("image_id,score", "id,score"), 1, "header is 'id,score', expected exactly 'image_id,score'"),
    (GOOD.replace("image_id,score", "score,image_id"), 1, "columns must be in the order image_id,score"),
    (GOOD.replace("image_id,score", "Image_ID,Score"), 1, "case- and space-sensitive"),
    (GOOD.replace(",", ";"), 1, "fields must be separated by commas"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg,-2.5,7"), 4, "expected 2 fields (image_id,score), found 3"),
    (GOOD.replace("img_c.jpg,-2.5", "img_c.jpg"), 4, "found 1"),
    (GOOD.replace("img_c.jpg,-2.5", "images/img_c.jpg,-2.5"), 4, "looks like a path"),
    (GOOD.replace("img_c.jpg,-2.5", "..\\img_c.jpg,-2.5"), 4, "looks like a path"),
    (GOOD.replace("img_c.jpg,-2.5", "..img_c.jpg,-2.5"), 4, "looks like a path"),
    (GOOD.replace("img_c.jpg,-2.5", " img_c.jpg,-2.5"), 4, "(surrounding spaces?)"),
    (GOOD.replace("img_c.jpg,-2.5", ",-2.5"), 4, "image_id is empty"),
    (GOOD.replace("img_b.jpg,0.4\n", "img_b.jpg,0.4\n\n"), 4, "empty line"),
    ("image_id,score\nimg_a.jpg,1\nimg_b.jpg,1\nimg_c.jpg,1\nimg_d.jpg,1.0\n", None, "all 4 scores are equal (1.0)"),
    ("", None, "file is empty"),
    ("\ufeff", None, "file is empty"),  # a byte-order mark and nothing else (review 2026-12-04)
    ("\ufeff\r\n \n", None, "file is empty"),
    ("image_id,score\n", None, "4 image(s) of the split have no row"),
])
def test_each_malformed_case_is_reported_with_its_row(tmp_path, content, row, needle):
    err = _problems(tmp_path, content)
    assert any(needle in p.message for p in err.problems), [str(p) for p in err.problems]
    if row is not None:
        assert any(p.row == row and needle in p.message for p in err.problems)
    assert str(tmp_path / "sub.csv") in str(err) and "nothing was scored" in str(err)
    assert isinstance(err, InputError)


def test_missing_header_treats_first_line_as_data(tmp_path):
    err = _problems(tmp_path, "img_a.jpg,0.1\nimg_b.jpg,0.4\nimg_c.jpg,-2.5\nimg_d.jpg,3\n")
    assert [p.row for p in err.problems] == [1]  # only the header problem; img_a is not "missing"


@pytest.mark.parametrize("data, needle", [
    (b"image_id,score\nimg_a.jpg,0.1\x00\x01\x02\n", "binary file, not a CSV"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("image_id,score\nimg_a.jpg,0.1\n".encode("utf-16"), "UTF-16"),
    ("image_id,score\nimg_\xe9.jpg,0.1\n".encode("latin-1"), "not valid UTF-8"),
])
def test_encoding_and_binary_problems(tmp_path, data, needle):
    err = _problems(tmp_path, data)
    assert needle in str(err)


def test_latin1_error_names_the_line(tmp_path):
    err = _problems(tmp_path, ("image_id,score\nimg_a.jpg,1\nimg_\xe9.jpg,0.1\n").encode("latin-1"))
    assert err.problems[0].row == 3


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    p = _write(tmp_path, GOOD)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    with pytest.raises(SubmissionError, match="over the limit of 20 bytes"):
        read_submission(p, IDS, max_bytes=20)
    assert not opened


def test_every_problem_is_reported_at_once_in_row_order(tmp_path):
    content = ("image_id,score\nimg_a.jpg,nan\nimg_x.jpg,0.3\nimg_a.jpg,0.2\nsub/img_b.jpg,1\nimg_c.jpg,abc,1\n")
    err = _problems(tmp_path, content)
    msgs = [str(p) for p in err.problems]
    assert len(err.problems) == 6, msgs
    rows = [p.row for p in err.problems if p.row is not None]
    assert rows == [2, 3, 4, 5, 6]
    assert "3 image(s) of the split have no row" in msgs[-1]  # img_c.jpg row is unusable
    text = str(err)
    for r in (2, 3, 4, 5, 6):
        assert f"row {r}:" in text


def test_error_message_is_capped_but_keeps_all_problems(tmp_path):
    lines = ["image_id,score"] + [f"bad_{i}.jpg,{i}" for i in range(100)]
    err = _problems(tmp_path, "\n".join(lines) + "\n")
    assert len(err.problems) == 101  # 100 unknown + missing
    assert "... and 75 more problem(s) in rows" in str(err)
    assert str(err).endswith("4 image(s) of the split have no row: 'img_a.jpg', 'img_b.jpg', 'img_c.jpg', 'img_d.jpg'")


def test_write_predictions_round_trips(tmp_path):
    s = pd.Series([0.25, -1.0, 3.0, 1 / 3], index=IDS)
    p = write_predictions(s, tmp_path / "w.csv")
    back = read_submission(p, IDS).scores
    assert np.array_equal(back.to_numpy(), s.to_numpy())
    with pytest.raises(ValueError, match="non-finite"):
        write_predictions(pd.Series([math.nan, 1.0], index=IDS[:2]), tmp_path / "bad.csv")


def test_cli_stores_nothing_on_invalid_submission(tmp_path, tiny_curated, capsys):
    bad = _write(tmp_path, "image_id,score\nnot_an_image.jpg,1\n")
    out, db = tmp_path / "result.json", tmp_path / "lb.db"
    rc = main(["score", "--submission", str(bad), "--protocol", "aadb", "--data", str(tiny_curated),
               "--out", str(out), "--leaderboard", str(db), "--name", "x"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "unknown image_id 'not_an_image.jpg'" in err and "row 2" in err
    assert not out.exists()
    assert not db.exists() or sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0] == 0


def test_quoted_file_without_header_is_checked_the_same_way(tmp_path):
    err = _problems(tmp_path, '"img_a.jpg",0.1\nimg_b.jpg,"0.4"\nimg_c.jpg,-2.5\nimg_d.jpg,3\nimg_e.jpg,1\n')
    assert [(p.row, p.message[:20]) for p in err.problems] == [(1, "header is 'img_a.jpg"), (5, "unknown image_id 'im")]


def test_the_hash_is_of_the_one_read_that_is_parsed(tmp_path, monkeypatch):
    """Review suspected the sha256 came from a second read; the bytes parsed are the bytes hashed,
    so a file replaced after the read gets neither its new scores nor its new hash."""
    import hashlib

    from aadb_toolkit import submissions

    p = _write(tmp_path, GOOD)
    real = submissions._read_bounded

    def read_then_replace(path, max_bytes, target):
        data = real(path, max_bytes, target)
        path.write_text(GOOD.replace("0.1", "9.9"))
        return data

    monkeypatch.setattr(submissions, "_read_bounded", read_then_replace)
    sub = read_submission(p, IDS)
    assert sub.sha256 == "sha256:" + hashlib.sha256(GOOD.encode()).hexdigest() != sha256_file(p)
    assert sub.scores.tolist() == [0.1, 0.4, -2.5, 1000.0]


def test_a_failed_sidecar_write_leaves_the_old_predictions_and_sidecar_both(tmp_path, monkeypatch):
    """Review 2026-12-04 (afternoon): the CSV was renamed into place before the sidecar was
    written, so a full disk at the sidecar replaced the predictions and left the old sidecar,
    which then recorded another file's sha256."""
    import errno
    import pathlib

    path = tmp_path / "p.csv"
    write_predictions(pd.Series([0.1, 0.2], index=IDS[:2]), path, model={"name": "old"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = pathlib.Path.write_bytes

    def full_disk(self, data):
        if "model.json" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    with pytest.raises(OSError):
        write_predictions(pd.Series([0.3, 0.4], index=IDS[:2]), path, model={"name": "new"})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
