"""Fatal input errors name the file, row and field, and leave no partial output behind (an older
output stays as it was)."""

from __future__ import annotations

import os

import pytest
from curate_release_writer import build_release

from aadb_toolkit.cli import main
from aadb_toolkit.curate import curate
from aadb_toolkit.errors import InputError

CSV = "AADB_AllinAll.csv"


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_nothing_left(parent, name="out"):
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")], "staging folder left behind"


def test_missing_csv(tmp_path, key):
    root = build_release(1).write(tmp_path / "r")
    (root / CSV).unlink()
    with pytest.raises(InputError, match="not found") as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert err.value.file.endswith(CSV)
    _assert_nothing_left(tmp_path)


@pytest.mark.parametrize("column", ["WorkerId", "Answer.overallScore3", "Answer.depthOfField10", "Input.image_url7"])
def test_missing_required_column(tmp_path, key, column):
    rel = build_release(1)
    rel.columns.remove(column)
    root = rel.write(tmp_path / "r")
    with pytest.raises(InputError) as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert err.value.file.endswith(CSV) and err.value.field == column and err.value.row == 0
    assert "missing from the header row" in str(err.value)
    _assert_nothing_left(tmp_path)


@pytest.mark.parametrize("value, what", [("abc", "is not a number"), ("6", "is out of range"),
                                         ("0", "is out of range"), ("3.5", "is out of range"),
                                         ("nan", "is not a number")])
def test_bad_score_is_fatal_by_default(tmp_path, key, value, what):
    rel = build_release(2)
    rel.rows[7]["Answer.overallScore4"] = value  # data row 8
    rel.rows[9]["Answer.overallScore1"] = "zzz"  # a later bad value is counted, not named
    root = rel.write(tmp_path / "r", crlf=True)
    with pytest.raises(InputError) as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    e = err.value
    assert (e.file, e.row, e.field) == (str(root / CSV), 8, "Answer.overallScore4")
    assert what in str(e) and repr(value) in str(e) and "1 more bad value" in str(e)
    assert "--on-bad-value exclude" in str(e)
    _assert_nothing_left(tmp_path)


def test_bad_vote_is_fatal_by_default(tmp_path, key):
    rel = build_release(1)
    rel.rows[2]["Answer.symmetry5"] = "+2"
    root = rel.write(tmp_path / "r")
    with pytest.raises(InputError, match="not -1, 0 or \\+1") as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert (err.value.row, err.value.field) == (3, "Answer.symmetry5")


def test_bad_value_in_a_rejected_row_is_not_fatal(tmp_path, key):
    rel = build_release(1)
    rel.rows[2]["Answer.overallScore5"] = "abc"
    rel.rows[2]["AssignmentStatus"] = "Rejected"
    result = curate(rel.write(tmp_path / "r"), tmp_path / "out", key=key, workers=1)
    assert result.n_ratings == 40


def test_unreadable_csv_not_utf8(tmp_path, key):
    root = build_release(1).write(tmp_path / "r")
    data = (root / CSV).read_bytes().split(b"\n")
    data[4] = data[4].replace(b"Approved", b"Appr\xff\xfeved")
    (root / CSV).write_bytes(b"\n".join(data))
    with pytest.raises(InputError, match="not valid UTF-8.*file line 5") as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert err.value.row == 4 and err.value.file.endswith(CSV)
    _assert_nothing_left(tmp_path)


def test_malformed_csv_row(tmp_path, key):
    root = build_release(1).write(tmp_path / "r")
    lines = (root / CSV).read_text().split("\n")
    lines[3] += ',"extra","fields"'
    (root / CSV).write_text("\n".join(lines))
    with pytest.raises(InputError, match="malformed CSV") as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert err.value.row == 3


def test_empty_and_unreadable_csv(tmp_path, key):
    root = build_release(1).write(tmp_path / "r")
    (root / CSV).write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        curate(root, tmp_path / "out", key=key, workers=1)
    if os.geteuid() != 0:  # root reads any file, so the permission case only runs as a normal user
        (root / CSV).write_text("x")
        (root / CSV).chmod(0)
        with pytest.raises(InputError, match="cannot read"):
            curate(root, tmp_path / "out", key=key, workers=1)
    _assert_nothing_left(tmp_path)


def test_error_leaves_older_output_untouched(tmp_path, key):
    rel = build_release(2)
    root = rel.write(tmp_path / "r")
    curate(root, tmp_path / "out", key=key, workers=1)
    before = _snapshot(tmp_path / "out")
    rel.rows[3]["Answer.overallScore2"] = "9"
    rel.write(root)
    with pytest.raises(InputError):
        curate(root, tmp_path / "out", key=key, workers=1)
    assert _snapshot(tmp_path / "out") == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_refuses_output_inside_release_or_over_foreign_folder(tmp_path, key):
    root = build_release(1).write(tmp_path / "r")
    with pytest.raises(InputError, match="outside the release"):
        curate(root, root / "curated", key=key, workers=1)
    with pytest.raises(InputError, match="outside the release"):
        curate(root, tmp_path, key=key, workers=1)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a curated folder"):
        curate(root, foreign, key=key, workers=1)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_unknown_answer_column_name(tmp_path, key):
    root = build_release(1).write(tmp_path / "r")
    with pytest.raises(InputError, match="did you mean depth_of_field"):
        curate(root, tmp_path / "out", key=key, answer_columns={"depth_of_feild": "DoF"}, workers=1)


def test_cli_prints_one_line_error_and_exits_1(tmp_path, capsys):
    rel = build_release(1)
    rel.rows[0]["Answer.overallScore1"] = "x"
    root = rel.write(tmp_path / "r")
    code = main(["curate", "--release", str(root), "--out", str(tmp_path / "out"),
                 "--key-file", str(tmp_path / "k"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "row 1" in err and "'Answer.overallScore1'" in err and "Traceback" not in err
    _assert_nothing_left(tmp_path)


def test_repeated_header_column(tmp_path, key):
    rel = build_release(1)
    rel.columns.append("Answer.overallScore2")
    root = rel.write(tmp_path / "r")
    with pytest.raises(InputError, match="repeats") as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert err.value.field == "Answer.overallScore2" and err.value.row == 0


@pytest.mark.parametrize("rows", [[1], "all"])
def test_one_extra_field_on_the_first_data_row_is_a_fatal_error_not_an_empty_curation(tmp_path, key, rows):
    """Review 2026-12-04: a trailing comma on the first data row made pandas take the first column
    as the row index and shift every column left; curation then succeeded with 0 images."""
    root = build_release(1).write(tmp_path / "r")
    lines = (root / CSV).read_text().split("\n")
    for i in (range(1, len(lines)) if rows == "all" else rows):
        if lines[i]:
            lines[i] += ","
    (root / CSV).write_text("\n".join(lines))
    with pytest.raises(InputError, match="malformed CSV") as err:
        curate(root, tmp_path / "out", key=key, workers=1)
    assert err.value.row == 1
    _assert_nothing_left(tmp_path)


def test_a_field_longer_than_the_csv_module_s_default_limit_is_read(tmp_path, key):
    """Review 2026-12-04: a 200,000-character field (in a column curation ignores) ended in an
    internal error from the csv module's field size limit, though pandas had read the file."""
    root = build_release(1).write(tmp_path / "r")
    lines = (root / CSV).read_text().split("\n")
    lines[0] += ",RequesterFeedback"
    lines[1:] = [line + ("," + "x" * 200_000 if i == 0 else ",") if line else line for i, line in enumerate(lines[1:])]
    (root / CSV).write_text("\n".join(lines))
    curate(root, tmp_path / "out", key=key, workers=1)
    assert (tmp_path / "out" / "ratings.parquet").is_file()
