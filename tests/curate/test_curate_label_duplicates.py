"""A label file that lists an image twice, or two label files that list it in two splits: the
first line is kept and the other is reported with where the first one is ("row N", line N of
its file, written as a whole number)."""

from __future__ import annotations

import json

from curate_release_writer import LABEL_DIR, build_release

from aadb_toolkit.curate import curate

TRAIN_SCORE, TEST_SCORE = "imgListTrainRegression_score.txt", "imgListTestNewRegression_score.txt"


def _entries(out, reason):
    report = json.loads((out / "curation_report.json").read_text())
    return [e for e in report["entries"] if e["reason"] == reason]


def _with_duplicates(empty_file: str | None = None):
    """A release whose train score file repeats its first line as line 11 and whose test score
    file also lists that image (its line 11); ``empty_file``: a label file with no value line."""
    rel = build_release(3)
    first = rel.labels[TRAIN_SCORE].splitlines()[0]
    rel.labels[TRAIN_SCORE] += first + "\n"
    rel.labels[TEST_SCORE] += first + "\n"
    if empty_file is not None:
        rel.labels[empty_file] = "not a label line\n"
    return rel, first.split()[0]


def test_a_duplicate_label_names_the_first_line_as_a_whole_row(tmp_path, key):
    rel, image = _with_duplicates()
    curate(rel.write(tmp_path / "release"), tmp_path / "out", key=key, progress=False)
    [dup] = _entries(tmp_path / "out", "duplicate_label")
    assert (dup["file"], dup["row"], dup["image_id"]) == (f"{LABEL_DIR}/{TRAIN_SCORE}", 11, image)
    assert dup["detail"] == f"already listed in {LABEL_DIR}/{TRAIN_SCORE} row 1; first kept"
    [other] = _entries(tmp_path / "out", "label_in_several_splits")
    assert (other["file"], other["row"]) == (f"{LABEL_DIR}/{TEST_SCORE}", 11)
    assert other["detail"] == f"already listed in {LABEL_DIR}/{TRAIN_SCORE} row 1; first kept"


def test_a_label_file_without_values_does_not_turn_rows_into_fractions(tmp_path, key):
    """Review 2026-12-04: with one label file holding no value line, the row column of all label
    values became float and the duplicate's detail said "row 1.0" (in the JSON and Markdown report)."""
    rel, _ = _with_duplicates(empty_file="imgListValidationRegression_Light.txt")
    curate(rel.write(tmp_path / "release"), tmp_path / "out", key=key, progress=False)
    details = [e["detail"] for e in _entries(tmp_path / "out", "duplicate_label")
               + _entries(tmp_path / "out", "label_in_several_splits")]
    assert details == [f"already listed in {LABEL_DIR}/{TRAIN_SCORE} row 1; first kept"] * 2
    markdown = (tmp_path / "out" / "curation_report.md").read_text()
    assert "row 1.0" not in markdown and f"{TRAIN_SCORE} row 1; first kept" in markdown
