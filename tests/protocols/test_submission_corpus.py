"""The judge's corpus (issue 6): malformed and valid submissions, each a small file the test writes,
run both through the library (``read_submission`` / ``score_submission``) and through the CLI
(``aadb score ... --leaderboard DB --name N``). A malformed file must fail with one clear message
naming the problem and its rows, exit code 1, no result JSON and nothing stored in the leaderboard;
a valid file must score and be stored. Ends with the leaderboard's own corpus: idempotent
re-submission, result-document fields, fingerprints never ranked together, and hostile names.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import re
import sqlite3
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aadb_toolkit import __version__, leaderboard, sources
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import PROTOCOLS, score_submission
from aadb_toolkit.protocols.aadb_protocol import evaluate
from aadb_toolkit.submissions import SubmissionError, read_submission

from tiny_data import make_tiny_curated, memory_source

# --- building files ------------------------------------------------------------------------

Ids = list[str]


def _scores(ids: Ids) -> list[str]:
    """Distinct, deterministic scores (not in id order, so ρ is not trivially ±1)."""
    return [f"{((7 * k) % len(ids)) * 0.25:.2f}" for k in range(len(ids))]


def _lines(ids: Ids, scores: list[str] | None = None, *, header: str = "image_id,score", sep: str = ",") -> list[str]:
    scores = _scores(ids) if scores is None else scores
    return [header, *(f"{i}{sep}{s}" for i, s in zip(ids, scores))]


def _text(lines: list[str], nl: str = "\n") -> bytes:
    return (nl.join(lines) + nl).encode("utf-8")


def _replace(ids: Ids, k: int, *, image_id: str | None = None, score: str | None = None) -> bytes:
    """The plain file with data row ``k`` (0-based; file row k + 2) given another id and/or score."""
    lines = _lines(ids)
    old_id, old_score = lines[k + 1].split(",")
    lines[k + 1] = f"{old_id if image_id is None else image_id},{old_score if score is None else score}"
    return _text(lines)


def _insert(ids: Ids, k: int, line: str) -> bytes:
    """The plain file with ``line`` inserted before data row ``k`` (it becomes file row k + 2)."""
    lines = _lines(ids)
    lines.insert(k + 1, line)
    return _text(lines)


def _gzip(ids: Ids) -> bytes:
    return gzip.compress(_text(_lines(ids)))


def _zip(ids: Ids) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("predictions.csv", _text(_lines(ids)))
    return buf.getvalue()


HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
             b"<body><h1>Bad Gateway</h1><p>nginx, please retry</p></body></html>\n")


@dataclass(frozen=True)
class Bad:
    """A malformed case: its file, what the message must say, the rows it must name."""

    build: Callable[[Ids, Ids], bytes]  # (test ids, validation ids) -> the file's bytes
    needles: tuple[str, ...]
    rows: tuple[int, ...] = ()
    max_bytes: Callable[[int], int] | None = None  # file size -> the limit to score under


N_TEST = 20  # test images of the tiny curated folder (checked in the fixture)

BAD: dict[str, Bad] = {
    # header variants (SPEC §7: exactly `image_id,score`; swapped order is rejected, see docs/protocols.md)
    "header_with_space": Bad(lambda t, v: _text(_lines(t, header="image_id, score")),
                             ("expected exactly 'image_id,score'", "case- and space-sensitive"), (1,)),
    "header_upper_case": Bad(lambda t, v: _text(_lines(t, header="IMAGE_ID,SCORE")), ("case- and space-sensitive",), (1,)),
    "header_quoted_with_space": Bad(lambda t, v: _text(_lines(t, header='"image_id ","score"')),
                                    ("case- and space-sensitive",), (1,)),
    "header_extra_column": Bad(lambda t, v: _text([f"{line},x" for line in _lines(t, header="image_id,score")]),
                               ("expected exactly 'image_id,score'", "expected 2 fields (image_id,score), found 3"),
                               (1, 2, 3)),
    "header_missing_column": Bad(lambda t, v: _text(["image_id", *t]), ("header is 'image_id'", "found 1"), (1, 2)),
    "header_swapped": Bad(lambda t, v: _text([f"{s},{i}" for i, s in (line.split(",") for line in _lines(t))]),
                          ("swapped columns are not accepted",), (1,)),
    "header_absent": Bad(lambda t, v: _text(_lines(t)[1:]), ("header is", "expected exactly 'image_id,score'"), (1,)),
    "excel_sep_line": Bad(lambda t, v: b"sep=,\n" + _text(_lines(t)), ("header is 'sep=,'",), (1,)),
    # delimiters and encodings
    "semicolon_delimiter": Bad(lambda t, v: _text(_lines(t, header="image_id;score", sep=";")),
                               ("fields must be separated by commas",), (1,)),
    "tab_delimiter": Bad(lambda t, v: _text(_lines(t, header="image_id\tscore", sep="\t")),
                         ("fields must be separated by commas",), (1,)),
    "utf16_with_bom": Bad(lambda t, v: _text(_lines(t)).decode().encode("utf-16"), ("UTF-16",)),
    "utf16_without_bom": Bad(lambda t, v: _text(_lines(t)).decode().encode("utf-16-le"), ("UTF-16",)),
    "latin1_bytes": Bad(lambda t, v: _text(_lines(t))[:-1] + "\ncaf\xe9.jpg,1\n".encode("latin-1"),
                        ("not valid UTF-8", "byte 0xe9"), (N_TEST + 2,)),
    # blank lines inside the file
    "blank_line_in_middle": Bad(lambda t, v: _insert(t, 3, ""), ("empty line",), (5,)),
    "whitespace_line_in_middle": Bad(lambda t, v: _insert(t, 3, "   "), ("empty line",), (5,)),
    # scores
    "score_hex": Bad(lambda t, v: _replace(t, 2, score="0x10"), ("score '0x10' is not a number",), (4,)),
    "score_nan": Bad(lambda t, v: _replace(t, 2, score="nan"), ("score is NaN",), (4,)),
    "score_NaN": Bad(lambda t, v: _replace(t, 2, score="NaN"), ("score is NaN",), (4,)),
    "score_inf": Bad(lambda t, v: _replace(t, 2, score="inf"), ("score 'inf' is infinite",), (4,)),
    "score_minus_inf": Bad(lambda t, v: _replace(t, 2, score="-inf"), ("score '-inf' is infinite",), (4,)),
    "score_overflow": Bad(lambda t, v: _replace(t, 2, score="1e309"), ("score '1e309' is infinite",), (4,)),
    "score_empty": Bad(lambda t, v: _replace(t, 2, score=""), ("score is empty",), (4,)),
    "score_blank": Bad(lambda t, v: _replace(t, 2, score="   "), ("score is empty",), (4,)),
    "score_decimal_comma": Bad(lambda t, v: _replace(t, 2, score="1,5"), ("found 3",), (4,)),
    "score_decimal_comma_quoted": Bad(lambda t, v: _replace(t, 2, score='"1,5"'), ("score '1,5' is not a number",), (4,)),
    "score_underscore": Bad(lambda t, v: _replace(t, 2, score="1_000"), ("score '1_000' is not a number",), (4,)),
    "score_formula": Bad(lambda t, v: _replace(t, 2, score="=1+2"), ("score '=1+2' is not a number",), (4,)),
    "score_word": Bad(lambda t, v: _replace(t, 2, score="high"), ("score 'high' is not a number",), (4,)),
    "all_scores_equal": Bad(lambda t, v: _text(_lines(t, ["0.5"] * len(t))), (f"all {N_TEST} scores are equal",)),
    "all_scores_equal_spelled_differently": Bad(
        lambda t, v: _text(_lines(t, [("1", "1.0", "1e0", "+1", " 1 ")[k % 5] for k in range(len(t))])),
        ("scores are equal (1.0)",)),
    # ids
    "duplicate_id_same_score": Bad(lambda t, v: _text(_lines(t) + [_lines(t)[1]]),
                                   ("duplicated image_id", "(first on row 2)"), (N_TEST + 2,)),
    "duplicate_id_different_score": Bad(lambda t, v: _text(_lines(t) + [f"{t[0]},99"]),
                                        ("duplicated image_id",), (N_TEST + 2,)),
    "id_different_case": Bad(lambda t, v: _replace(t, 3, image_id=t[3].upper()),
                             ("unknown image_id", "1 image(s) of the AADB test split have no row"), (5,)),
    "id_surrounding_space": Bad(lambda t, v: _replace(t, 3, image_id=f" {t[3]} "), ("(surrounding spaces?)",), (5,)),
    "id_trailing_tab": Bad(lambda t, v: _replace(t, 3, image_id=f"{t[3]}\t"), ("(surrounding spaces?)",), (5,)),
    "id_parent_path": Bad(lambda t, v: _replace(t, 3, image_id="../x.jpg"), ("looks like a path",), (5,)),
    "id_absolute_path": Bad(lambda t, v: _replace(t, 3, image_id="/abs"), ("looks like a path",), (5,)),
    "id_backslash": Bad(lambda t, v: _replace(t, 3, image_id="a\\b"), ("looks like a path",), (5,)),
    "id_windows_path": Bad(lambda t, v: _replace(t, 3, image_id="C:\\x"), ("looks like a path",), (5,)),
    "id_with_folder": Bad(lambda t, v: _replace(t, 3, image_id=f"images/{t[3]}"), ("looks like a path",), (5,)),
    "id_formula": Bad(lambda t, v: _replace(t, 3, image_id="=1+2"), ("image_id '=1+2' starts with '=': a spreadsheet formula",), (5,)),
    "id_at_formula": Bad(lambda t, v: _replace(t, 3, image_id="@SUM(A1)"), ("image_id '@SUM(A1)' starts with '@': a spreadsheet formula",), (5,)),
    "id_unknown_extra_row": Bad(lambda t, v: _text(_lines(t) + ["not_in_split.jpg,1"]),
                                ("unknown image_id 'not_in_split.jpg': not in the AADB test split",), (N_TEST + 2,)),
    "id_missing": Bad(lambda t, v: _text(_lines(t)[:-1]), ("1 image(s) of the AADB test split have no row",)),
    "wrong_split_validation_ids": Bad(lambda t, v: _text(_lines(v)),
                                      ("unknown image_id", f"{N_TEST} image(s) of the AADB test split have no row"),
                                      (2, 3)),
    # not a CSV at all
    "empty_file": Bad(lambda t, v: b"", ("file is empty",)),
    "whitespace_only_file": Bad(lambda t, v: b" \n\n\t\n", ("file is empty",)),
    "header_only": Bad(lambda t, v: b"image_id,score\n", (f"{N_TEST} image(s) of the AADB test split have no row",)),
    "binary_file": Bad(lambda t, v: bytes(range(256)) * 8, ("binary file, not a CSV",)),
    "gzip_file": Bad(lambda t, v: _gzip(t), ("gzip-compressed",)),
    "zip_file": Bad(lambda t, v: _zip(t), ("ZIP archive",)),
    "html_error_page": Bad(lambda t, v: HTML_PAGE, ("HTML/XML page",)),
    "nul_byte": Bad(lambda t, v: _replace(t, 2, image_id=t[2] + "\x00"), ("NUL bytes (first on line 4)",)),
    "over_size_limit": Bad(lambda t, v: _text(_lines(t)), ("over the limit of",), max_bytes=lambda size: size - 1),
    "very_long_id": Bad(lambda t, v: _text(_lines(t) + ["x" * 300_000 + ",1"]), ("unknown image_id 'xxxx",),
                        (N_TEST + 2,)),
    "very_long_id_twice": Bad(lambda t, v: _text(_lines(t) + ["x" * 100_000 + ",1"] * 2),
                              ("unknown image_id 'xxxx", "duplicated image_id 'xxxx"), (N_TEST + 2, N_TEST + 3)),
    "very_long_quoted_field": Bad(lambda t, v: _text(_lines(t) + ['"' + "x" * 300_000 + '",1']),
                                  ("not a parseable CSV", "field larger than field limit"), (N_TEST + 2,)),
    "far_too_many_lines": Bad(lambda t, v: _text(_lines(t) + ["x,1"] * 5000),
                              ("file has 5,021 lines, but the AADB test split has 20 images",)),
    "over_a_thousand_problems": Bad(lambda t, v: _text(["image_id,score"] + [f"u{k}.jpg,{k}" for k in range(1030)]),
                                    ("checking stopped at row 1002 after 1,000 problems", "more problem(s) in rows"),
                                    (2, 26)),
    "unterminated_quote": Bad(lambda t, v: _replace(t, 2, image_id='"' + t[2]), ("not a parseable CSV",)),
}

# Valid cases: (file, the scores it must be read as, aligned to the test ids).
Good = Callable[[Ids], tuple[bytes, list[float]]]


def _plain(ids: Ids) -> tuple[bytes, list[float]]:
    return _text(_lines(ids)), [float(s) for s in _scores(ids)]


def _notations(ids: Ids) -> tuple[bytes, list[float]]:
    forms = ["1e-3", "  0.5 ", "+1", "-2", "3.", ".25", "1E2", "-0", "7", "1.5e+1"]
    scores = [forms[k] if k < len(forms) else str(10 + k) for k in range(len(ids))]
    return _text(_lines(ids, scores)), [float(s) for s in scores]


def _extremes(ids: Ids) -> tuple[bytes, list[float]]:
    scores = ["1e308", "-1e308", "1e-320", "0", "-1e-320", "1.7976931348623157e308"] + [f"{k}e300" for k in range(len(ids) - 6)]
    return _text(_lines(ids, scores)), [float(s) for s in scores]


def _subnormal(ids: Ids) -> tuple[bytes, list[float]]:
    scores = [f"{(7 * k) % len(ids) + 1}e-320" for k in range(len(ids))]
    return _text(_lines(ids, scores)), [float(s) for s in scores]


def _two_values(ids: Ids) -> tuple[bytes, list[float]]:
    scores = ["0" if k % 2 else "1" for k in range(len(ids))]
    return _text(_lines(ids, scores)), [float(s) for s in scores]


def _quoted(ids: Ids) -> tuple[bytes, list[float]]:
    lines = ['"image_id","score"', *(f'"{i}","{s}"' for i, s in zip(ids, _scores(ids)))]
    return _text(lines), [float(s) for s in _scores(ids)]


def _shuffled(ids: Ids) -> tuple[bytes, list[float]]:
    lines = _lines(ids)
    return _text([lines[0], *reversed(lines[1:])]), [float(s) for s in _scores(ids)]


GOOD: dict[str, Good] = {
    "plain": _plain,
    "utf8_bom": lambda ids: (b"\xef\xbb\xbf" + _plain(ids)[0], _plain(ids)[1]),
    "crlf_line_endings": lambda ids: (_text(_lines(ids), "\r\n"), _plain(ids)[1]),
    "excel_bom_crlf_quoted": lambda ids: (b"\xef\xbb\xbf" + _quoted(ids)[0].replace(b"\n", b"\r\n"), _quoted(ids)[1]),
    "cr_only_line_endings": lambda ids: (_text(_lines(ids), "\r"), _plain(ids)[1]),
    "no_final_newline": lambda ids: (_plain(ids)[0].rstrip(b"\n"), _plain(ids)[1]),
    "trailing_blank_lines": lambda ids: (_plain(ids)[0] + b"\n\n   \n", _plain(ids)[1]),
    "quoted_header_and_values": _quoted,
    "rows_in_any_order": _shuffled,
    "score_notations": _notations,
    "huge_and_tiny_reals": _extremes,
    "subnormal_scores_only": _subnormal,
    "only_two_distinct_scores": _two_values,
}

# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_ids(tiny_curated) -> tuple[Ids, Ids, pd.Series]:
    """(test ids, validation ids, test ground truth) of the tiny curated folder."""
    data = sources.load(tiny_curated)
    test, val = data.split("test"), data.split("validation")
    assert len(test) == N_TEST and len(val) > 1
    truth = pd.Series(test["score_mean"].to_numpy(dtype=float), index=test["image_id"].astype(str))
    return test["image_id"].astype(str).tolist(), val["image_id"].astype(str).tolist(), truth


@pytest.fixture(scope="module")
def busy_db(tmp_path_factory, tiny_curated, split_ids) -> Path:
    """A leaderboard that already holds one entry (a rejected submission must leave it untouched)."""
    folder = tmp_path_factory.mktemp("busy")
    sub = folder / "first.csv"
    sub.write_bytes(_plain(split_ids[0])[0])
    db = folder / "lb.db"
    leaderboard.record(db, score_submission("aadb", sub, tiny_curated, n_boot=20), "first entry")
    return db


def _count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM results").fetchone()[0])


def _score_cli(sub: Path, data: Path, out: Path, db: Path, name: str, *extra: str) -> int:
    return main(["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(data), "--out", str(out),
                 "--n-boot", "20", "--leaderboard", str(db), f"--name={name}", *extra])  # '=': names may start with '-'


# --- malformed cases -------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_submission_is_rejected_by_library_and_cli(case, tmp_path, tiny_curated, split_ids, busy_db, capsys):
    bad = BAD[case]
    test_ids, val_ids, _ = split_ids
    sub = tmp_path / "submission.csv"
    sub.write_bytes(bad.build(test_ids, val_ids))
    limit = bad.max_bytes(sub.stat().st_size) if bad.max_bytes else None
    kw = {"max_bytes": limit} if limit is not None else {}

    # library: one SubmissionError naming the file, the problem and its rows
    with pytest.raises(SubmissionError) as exc:
        read_submission(sub, test_ids, split_name="AADB test split", **kw)
    text = str(exc.value)
    assert text.startswith(f"{sub}: invalid submission") and "nothing was scored" in text
    for needle in bad.needles:
        assert needle in text, text[:2000]
    for row in bad.rows:
        assert f"row {row}:" in text, text[:2000]
    assert len(text) < 10_000  # capped: a 300,000-character line is not echoed back
    with pytest.raises(SubmissionError):
        score_submission("aadb", sub, tiny_curated, n_boot=20, **kw)

    # CLI: exit 1, one error message, no result JSON, nothing stored
    out, before = tmp_path / "result.json", _count(busy_db)
    capsys.readouterr()
    rc = _score_cli(sub, tiny_curated, out, busy_db, f"hostile {case}",
                    *(["--max-bytes", str(limit)] if limit is not None else []))
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.err.count("error:") == 1 and captured.err.startswith("aadb score: error: ")
    for needle in bad.needles:
        assert needle in captured.err
    for row in bad.rows:
        assert f"row {row}:" in captured.err
    assert "wrote" not in captured.out and not out.exists()
    assert _count(busy_db) == before
    # no DB is created for a rejected submission either
    fresh = tmp_path / "fresh.db"
    assert _score_cli(sub, tiny_curated, out, fresh, "x", *(["--max-bytes", str(limit)] if limit else [])) == 1
    assert not fresh.exists() and not out.exists()


def test_rejected_submission_leaves_an_existing_result_file_untouched(tmp_path, tiny_curated, split_ids, capsys):
    sub = tmp_path / "s.csv"
    sub.write_bytes(BAD["score_nan"].build(split_ids[0], split_ids[1]))
    out = tmp_path / "result.json"
    out.write_text('{"previous": true}')
    assert _score_cli(sub, tiny_curated, out, tmp_path / "lb.db", "x") == 1
    assert out.read_text() == '{"previous": true}'


def test_swapped_header_reports_only_the_header(tmp_path, split_ids):
    """A swapped header explains every row; the rows are not listed as 20 unknown ids."""
    sub = tmp_path / "s.csv"
    sub.write_bytes(BAD["header_swapped"].build(split_ids[0], split_ids[1]))
    with pytest.raises(SubmissionError) as exc:
        read_submission(sub, split_ids[0])
    assert [p.row for p in exc.value.problems] == [1]


def test_every_problem_of_a_careless_file_is_listed_at_once(tmp_path, split_ids):
    ids = split_ids[0]
    lines = _lines(ids)
    lines[2] = f"{ids[1]},nan"  # row 3
    lines[4] = f"../{ids[3]},1"  # row 5
    lines[6] = f"{ids[0]},2"  # row 7: duplicate of row 2
    lines.insert(9, "")  # row 10
    sub = tmp_path / "s.csv"
    sub.write_bytes(_text(lines))
    with pytest.raises(SubmissionError) as exc:
        read_submission(sub, ids, split_name="AADB test split")
    rows = [p.row for p in exc.value.problems]
    assert rows == [3, 5, 7, 10, None], [str(p) for p in exc.value.problems]
    assert "2 image(s) of the AADB test split have no row" in str(exc.value)  # ids[3] and ids[5]


def test_ids_of_the_split_are_never_taken_for_paths(tmp_path):
    """An id that really is in the split is accepted even when it contains '..' (found by this corpus:
    it used to be rejected as a path)."""
    ids = ["a..b.jpg", "c.jpg", "d.jpg"]
    sub = tmp_path / "s.csv"
    sub.write_text("image_id,score\na..b.jpg,1\nc.jpg,2\nd.jpg,3\n")
    assert read_submission(sub, ids).scores.tolist() == [1.0, 2.0, 3.0]
    sub.write_text("image_id,score\na..b.jpg,1\nc.jpg,2\n../d.jpg,3\n")
    with pytest.raises(SubmissionError, match="row 4: image_id '../d.jpg' looks like a path"):
        read_submission(sub, ids)


# --- valid cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(GOOD))
def test_valid_submission_scores_and_is_stored(case, tmp_path, tiny_curated, split_ids, capsys):
    test_ids, _, truth = split_ids
    data, expected = GOOD[case](test_ids)
    sub = tmp_path / "submission.csv"
    sub.write_bytes(data)

    got = read_submission(sub, test_ids)
    assert got.scores.index.tolist() == test_ids
    assert got.scores.tolist() == expected
    assert got.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()

    result = score_submission("aadb", sub, tiny_curated, n_boot=50)
    rho = stats.spearmanr(truth.to_numpy(), np.array(expected)).statistic
    assert result.metrics["spearman"].value == pytest.approx(rho, abs=1e-12)
    for m in ("spearman", "pearson", "kendall"):  # finite even for scores near 1e308 or 1e-320
        assert math.isfinite(result.metrics[m].value), (m, result.metrics[m])
    r = stats.pearsonr(truth.to_numpy(), np.array(expected) / np.max(np.abs(expected))).statistic
    assert result.metrics["pearson"].value == pytest.approx(r, abs=1e-9)

    out, db = tmp_path / "result.json", tmp_path / "lb.db"
    assert _score_cli(sub, tiny_curated, out, db, f"valid {case}") == 0
    doc = json.loads(out.read_text())
    assert doc["metrics"]["spearman"]["value"] == pytest.approx(rho, abs=1e-12)
    assert doc["submission"]["sha256"] == got.sha256
    stored = leaderboard.entries(db)
    assert stored["name"].tolist() == [f"valid {case}"] and stored["main_value"].iloc[0] == pytest.approx(rho)


def test_ava_size_submission_of_255000_rows(tmp_path):
    ids = [f"{700000 + k}" for k in range(255_000)]
    rng = np.random.default_rng(0)
    truth = pd.Series(rng.normal(5.0, 0.7, len(ids)), index=ids)
    pred = truth.to_numpy() + rng.normal(0, 0.7, len(ids))
    sub = tmp_path / "ava.csv"
    sub.write_text("image_id,score\n" + "".join(f"{i},{float(p)!r}\n" for i, p in zip(ids[::-1], pred[::-1])))
    got = read_submission(sub, ids, split_name="AVA test")
    assert got.n_images == 255_000 and np.array_equal(got.scores.to_numpy(), pred)
    result = evaluate(memory_source(truth), got, n_boot=100, seed=0)
    spearman = result.metrics["spearman"]
    assert spearman.value == pytest.approx(stats.spearmanr(truth.to_numpy(), pred).statistic, abs=1e-12)
    assert spearman.ci_low < spearman.value < spearman.ci_high


# --- the leaderboard's corpus ----------------------------------------------------------------


def _write_sub(path: Path, truth: pd.Series, noise: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pred = truth.to_numpy() + rng.normal(0.0, noise, truth.size)
    path.write_text("image_id,score\n" + "".join(f"{i},{float(p)!r}\n" for i, p in zip(truth.index, pred)))
    return path


def test_same_file_twice_is_idempotent_and_a_new_name_is_a_new_row(tmp_path, tiny_curated, split_ids, capsys):
    sub = _write_sub(tmp_path / "s.csv", split_ids[2], 0.3, 1)
    db = tmp_path / "lb.db"
    assert _score_cli(sub, tiny_curated, tmp_path / "r1.json", db, "model A") == 0
    assert _score_cli(sub, tiny_curated, tmp_path / "r2.json", db, "model A") == 0
    assert "already recorded (unchanged)" in capsys.readouterr().out
    assert _count(db) == 1
    copy = tmp_path / "copy.csv"
    copy.write_bytes(sub.read_bytes())
    assert _score_cli(copy, tiny_curated, tmp_path / "r3.json", db, "model A") == 0  # same bytes, same entry
    assert _count(db) == 1
    assert _score_cli(sub, tiny_curated, tmp_path / "r4.json", db, "model A (again, renamed)") == 0
    assert leaderboard.entries(db)["name"].tolist() == ["model A", "model A (again, renamed)"]


def test_result_document_fields(tmp_path, tiny_curated, split_ids):
    sub = _write_sub(tmp_path / "s.csv", split_ids[2], 0.3, 2)
    out = tmp_path / "r.json"
    assert _score_cli(sub, tiny_curated, out, tmp_path / "lb.db", "fields") == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "aadb-result" and doc["schema_version"] == 1
    assert doc["protocol"] == {"name": "aadb", "version": PROTOCOLS["aadb"].version, "main_metric": "spearman"}
    assert doc["toolkit_version"] == __version__
    assert doc["data"]["fingerprint"] == sources.load(tiny_curated).fingerprint("test")
    assert doc["data"]["n_images"] == N_TEST and doc["data"]["split"] == "test"
    assert doc["submission"]["sha256"] == "sha256:" + hashlib.sha256(sub.read_bytes()).hexdigest()
    assert doc["settings"] == {"seed": 0, "n_boot": 20}
    stored = leaderboard.entries(tmp_path / "lb.db").iloc[0]
    assert stored["fingerprint"] == doc["data"]["fingerprint"] and stored["submission_sha256"] == doc["submission"]["sha256"]


def test_different_fingerprints_are_never_ranked_together_in_any_rendering(tmp_path, tiny_curated, split_ids):
    other = make_tiny_curated(tmp_path / "other", n_batches=10, seed=1)
    other_truth = sources.load(other).split("test").set_index("image_id")["score_mean"].astype(float)
    db = tmp_path / "lb.db"
    assert _score_cli(_write_sub(tmp_path / "a1.csv", split_ids[2], 0.05, 3), tiny_curated, tmp_path / "a1.json", db, "A good") == 0
    assert _score_cli(_write_sub(tmp_path / "a2.csv", split_ids[2], 2.0, 4), tiny_curated, tmp_path / "a2.json", db, "A poor") == 0
    assert _score_cli(_write_sub(tmp_path / "b.csv", other_truth, 0.5, 5), other, tmp_path / "b.json", db, "B mid") == 0
    fp_a = sources.load(tiny_curated).fingerprint("test")
    fp_b = sources.load(other).fingerprint("test")
    assert fp_a != fp_b
    written = leaderboard.render(db, tmp_path / "site")

    rows = [r for r in csv.DictReader(io.StringIO(written["aadb.csv"].read_text())) if r["kind"] == "submitted"]
    by_fp = {fp: [(r["rank"], r["name"]) for r in rows if r["fingerprint"] == fp] for fp in (fp_a, fp_b)}
    assert by_fp == {fp_a: [("1", "A good"), ("2", "A poor")], fp_b: [("1", "B mid")]}
    assert [r["p vs above"] for r in rows if r["fingerprint"] == fp_b] == [""]  # nothing to compare with

    md = written["aadb.md"].read_text()
    sections = md.split("## Data fingerprint")[1:]
    assert len(sections) == 2
    assert "A good" in sections[0] and "A poor" in sections[0] and "B mid" not in sections[0]
    assert "B mid" in sections[1] and "A good" not in sections[1].split("## Reported")[0]
    page = written["aadb.html"].read_text()
    tables = page.split("<h2>Data fingerprint")[1:]
    assert len(tables) == 2 and "B mid" not in tables[0] and "A good" not in tables[1].split("Reported in")[0]


HOSTILE = ["<script>alert(1)</script>", "=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0",
           "-2+3", "@SUM(A1:A2)", "a|b [click](javascript:alert(1)) `x`"]


def test_hostile_names_are_inert_in_html_markdown_and_csv(tmp_path, tiny_curated, split_ids):
    db = tmp_path / "lb.db"
    for k, name in enumerate(HOSTILE):
        sub = _write_sub(tmp_path / f"s{k}.csv", split_ids[2], 0.2 + 0.2 * k, 10 + k)
        assert _score_cli(sub, tiny_curated, tmp_path / f"r{k}.json", db, name) == 0
    written = leaderboard.render(db, tmp_path / "site")

    page = written["aadb.html"].read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<a " not in page.lower()

    md = written["aadb.md"].read_text()
    assert re.search(r"(?<!\\)<", md) is None  # every '<' is backslash-escaped: no tag can open
    assert "\\<script>alert(1)\\</script>" in md
    assert "\\[click\\](javascript:alert(1))" in md and "a\\|b" in md and "\\`x\\`" in md

    rows = list(csv.DictReader(io.StringIO(written["aadb.csv"].read_text())))
    names = [r["name"] for r in rows if r["kind"] == "submitted"]
    assert sorted(names) == sorted("'" + n if n[0] in "=+-@" else n for n in HOSTILE)
    for r in rows:
        for cell in r.values():
            if cell and cell[0] in "=+@\t\r":
                pytest.fail(f"formula-like CSV cell {cell!r}")
            if cell.startswith("-"):
                float(cell)  # only numbers may start with '-'
    # the names are stored as given: the escaping is the renderer's job
    assert sorted(leaderboard.entries(db)["name"]) == sorted(HOSTILE)


@pytest.mark.parametrize("name, needle", [("   ", "leaderboard name is empty"), ("x" * 121, "at most 120"),
                                          ("two\nlines", "control characters"), ("bidi\u202eemanl", "control characters")])
def test_bad_name_is_refused_before_anything_is_written(name, needle, tmp_path, tiny_curated, split_ids, capsys):
    """Found by this corpus: a bad --name used to fail only after the result JSON was written."""
    sub = tmp_path / "s.csv"
    sub.write_bytes(_plain(split_ids[0])[0])
    out, db = tmp_path / "r.json", tmp_path / "lb.db"
    assert _score_cli(sub, tiny_curated, out, db, name) == 1
    assert needle in capsys.readouterr().err
    assert not out.exists() and not db.exists()


def test_unusable_leaderboard_file_is_refused_before_anything_is_written(tmp_path, tiny_curated, split_ids, capsys):
    sub = tmp_path / "s.csv"
    sub.write_bytes(_plain(split_ids[0])[0])
    out, db = tmp_path / "r.json", tmp_path / "lb.db"
    db.write_text("image_id,score\nthis is not a database\n")
    assert _score_cli(sub, tiny_curated, out, db, "x") == 1
    assert "not a usable leaderboard database" in capsys.readouterr().err
    assert not out.exists() and db.read_text() == "image_id,score\nthis is not a database\n"


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.csv", "sub/../../outside.csv", "link.csv", "",
                                    "..\\outside.csv"])
def test_cross_dataset_manifest_cannot_name_files_outside_its_folder(target, tmp_path):
    """Found by this corpus: a manifest could make a hosted scorer read any file and echo its first line."""
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.protocols.cross_dataset_protocol import CELLS, read_manifest

    folder = tmp_path / "bundle"
    folder.mkdir()
    (tmp_path / "outside.csv").write_text("secret,1\n")
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    names = {c: f"{c.replace('->', '_')}.csv" for c in CELLS}
    names["ava->aadb"] = target
    manifest = folder / "cross.toml"
    manifest.write_text("[predictions]\n" + "".join(f"{json.dumps(c)} = {json.dumps(f)}\n" for c, f in names.items()))
    with pytest.raises(InputError, match="is not inside the manifest's folder"):
        read_manifest(manifest)
    names["ava->aadb"] = "sub/ok.csv"
    manifest.write_text("[predictions]\n" + "".join(f"{json.dumps(c)} = {json.dumps(f)}\n" for c, f in names.items()))
    assert read_manifest(manifest)["ava->aadb"] == folder / "sub" / "ok.csv"


# --- the ava protocol: two files, τ chosen on validation -------------------------------------


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory) -> Path:
    from aadb_toolkit.simulate import write_synthetic_ava

    return write_synthetic_ava(tmp_path_factory.mktemp("ava") / "AVA_dataset", 3000, seed=5, images=False)


def _ava_cli(test: Path, val: Path, root: Path, out: Path, db: Path) -> int:
    return main(["score", "--submission", str(test), "--validation", str(val), "--protocol", "ava", "--data", str(root),
                 "--out", str(out), "--n-boot", "20", "--leaderboard", str(db), "--name", "ava entry"])


def _huge(mean_votes: pd.Series) -> pd.Series:
    """A monotone map of mean votes (1–10) onto 0.6e308–1.5e308: the sum of two scores near 5 overflows."""
    return 1e308 + (mean_votes - 5.0) * 1e307


def test_ava_scores_near_1e308_choose_a_finite_threshold(tmp_path, ava_root):
    """Found by this corpus: the midpoint of two scores near 1e308 overflowed, so τ became inf and the
    reported accuracy was that of "everything is low"."""
    from aadb_toolkit.protocols.ava_protocol import binary_labels
    from aadb_toolkit.protocols.ava_protocol import ground_truth as ava_ground_truth
    from aadb_toolkit.sources import load as load_source

    ava = load_source(ava_root, images=False)
    files = {}
    for split in ("test", "validation"):
        truth = ava_ground_truth(ava, split)
        files[split] = _write_sub(tmp_path / f"{split}.csv", _huge(truth), 0.0, 0)  # monotone: perfect order
    out, db = tmp_path / "r.json", tmp_path / "lb.db"
    assert _ava_cli(files["test"], files["validation"], ava_root, out, db) == 0
    doc = json.loads(out.read_text())
    tau = doc["details"]["threshold"]
    assert tau is not None and math.isfinite(tau)
    test_truth = ava_ground_truth(ava, "test")
    expected = float(np.mean((_huge(test_truth).to_numpy() > tau) == binary_labels(test_truth.to_numpy())))
    assert doc["metrics"]["accuracy"]["value"] == pytest.approx(expected) and expected > 0.95
    assert doc["metrics"]["validation_accuracy"]["value"] == 1.0


@pytest.mark.parametrize("which, needle", [("validation", "score is NaN"), ("test", "unknown image_id"),
                                           ("both", "looks like a path"), ("float_ids", "written as a float?")])
def test_ava_malformed_file_is_named_and_nothing_is_stored(which, needle, tmp_path, ava_root, capsys):
    from aadb_toolkit.protocols.ava_protocol import ground_truth as ava_ground_truth
    from aadb_toolkit.sources import load as load_source

    ava = load_source(ava_root, images=False)
    test = _write_sub(tmp_path / "test.csv", ava_ground_truth(ava, "test"), 0.5, 1)
    val = _write_sub(tmp_path / "val.csv", ava_ground_truth(ava, "validation"), 0.5, 2)

    def edit_row_2(f: Path, edit: Callable[[str, str], str]) -> None:
        lines = f.read_text().splitlines()
        lines[1] = edit(*lines[1].split(","))
        f.write_text("\n".join(lines) + "\n")

    if which == "validation":
        edit_row_2(val, lambda i, s: f"{i},nan")
    elif which == "test":  # validation predictions sent as the test file: the wrong split
        test.write_bytes(val.read_bytes())
    elif which == "float_ids":  # ids that went through a float column (pandas writes 953417.0)
        edit_row_2(test, lambda i, s: f"{i}.0,{s}")
    else:
        for f in (test, val):
            edit_row_2(f, lambda i, s: f"../{i},{s}")
    out, db = tmp_path / "r.json", tmp_path / "lb.db"
    assert _ava_cli(test, val, ava_root, out, db) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and needle in err and "row 2:" in err
    assert str(val if which == "validation" else test) in err
    assert not out.exists() and not db.exists()
