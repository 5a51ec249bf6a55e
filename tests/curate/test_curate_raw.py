"""The raw-results helpers: URL → image name, AMT submit times, answer columns."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from curate_release_writer import build_release, image_name

from aadb_toolkit.curate import AnswerColumns, curate
from aadb_toolkit.curate._raw import image_names, parse_submit_times, read_results_csv
from aadb_toolkit.errors import InputError


def test_flickr_urls_map_to_release_names():
    urls = pd.Series([
        "https://farm4.staticflickr.com/3836/14958433702_5e8f6d2a1b_b.jpg",
        "http://farm1.static.flickr.com/255/19452343093_8ee7e5e375_b.jpg",
        "https://example.org/photos/other_name.jpg?size=b",
    ])
    assert image_names(urls).tolist() == ["farm4_3836_14958433702_5e8f6d2a1b_b.jpg",
                                          "farm1_255_19452343093_8ee7e5e375_b.jpg", "other_name.jpg"]


def test_amt_submit_times_parse_to_utc():
    text = pd.Series(["Mon Jun 01 10:23:45 PDT 2015", "Tue Dec 01 10:23:45 PST 2015", "Wed Jul 01 08:00:00 UTC 2015",
                      "2015-06-01T10:00:00-04:00", "Mon Jun 01 10:23:45 XYZ 2015", "Mon Feb 30 10:00:00 PST 2015",
                      "yesterday", ""])
    got = parse_submit_times(text)
    assert got.iloc[:4].tolist() == [pd.Timestamp("2015-06-01 17:23:45"), pd.Timestamp("2015-12-01 18:23:45"),
                                     pd.Timestamp("2015-07-01 08:00:00"), pd.Timestamp("2015-06-01 14:00:00")]
    assert got.iloc[4:].isna().all()


def test_answer_column_mapping():
    cols = AnswerColumns.from_mapping({"depth_of_field": "DoF", "score": "Answer.aesthetics", "light": "Input.light"})
    assert cols.score_prefix == "Answer.aesthetics"
    assert cols.attribute_prefixes["depth_of_field"] == "Answer.DoF"
    assert cols.attribute_prefixes["light"] == "Input.light"
    assert cols.attribute_prefixes["symmetry"] == "Answer.symmetry"
    with pytest.raises(InputError, match="empty"):
        AnswerColumns.from_mapping({"light": " "})


def test_same_image_twice_in_one_assignment(tmp_path, key):
    rel = build_release(1)
    rel.rows[0]["Input.image_url2"] = rel.rows[0]["Input.image_url1"]
    curate(rel.write(tmp_path / "r"), tmp_path / "c", key=key, workers=1)
    report = json.loads((tmp_path / "c" / "curation_report.json").read_text())
    [e] = [e for e in report["entries"] if e["reason"] == "duplicate_image_in_assignment"]
    assert (e["row"], e["column"], e["image_id"]) == (1, "Input.image_url2", image_name(0, 1)[0])
    images = pd.read_parquet(tmp_path / "c" / "images.parquet").set_index("image_id")
    assert images.loc[image_name(0, 1)[0], "n_ratings"] == 5 and images.loc[image_name(0, 2)[0], "n_ratings"] == 4


def test_fewer_image_slots_and_no_rows(tmp_path, key):
    rel = build_release(1, n_slots=3, labels=False)
    result = curate(rel.write(tmp_path / "r"), tmp_path / "c", key=key, workers=1)
    assert result.n_images == 3 and result.n_ratings == 15
    assert result.report["csv"]["image_slots"] == [1, 2, 3]
    rel.rows = []
    result = curate(rel.write(tmp_path / "r2"), tmp_path / "c2", key=key, workers=1)
    assert result.n_ratings == 0 and all(a["balanced"] for a in result.report["accounting"].values())


def test_two_url_forms_of_one_photo_in_one_assignment_keep_the_first_slot_either_way(tmp_path, key):
    """Review 2026-12-04: where the variant form (another size) came first and the exact URL
    second, neither slot was excluded and the worker rated the photo twice in one assignment."""
    rel = build_release(1)
    exact = rel.rows[0]["Input.image_url1"]
    rel.rows[0]["Input.image_url1"] = exact.replace("_b.jpg", "_z.jpg")  # the variant first
    rel.rows[0]["Input.image_url2"] = exact
    curate(rel.write(tmp_path / "r"), tmp_path / "c", key=key, workers=1)
    report = json.loads((tmp_path / "c" / "curation_report.json").read_text())
    [e] = [e for e in report["entries"] if e["reason"] == "duplicate_image_in_assignment"]
    assert (e["row"], e["column"], e["image_id"]) == (1, "Input.image_url2", image_name(0, 1)[0])
    ratings = pd.read_parquet(tmp_path / "c" / "ratings.parquet")
    assert not ratings.duplicated(["batch_id", "rater_id", "image_id"]).any()


def test_a_repeated_submission_s_report_entry_quotes_its_hit_id_in_32_characters(tmp_path, key):
    """The one quoting rule (errors.quote): a long HITId was copied whole into the report's detail."""
    rel = build_release(1)
    long_hit = "H" * 120
    for row in rel.rows[:5]:
        row["HITId"] = long_hit
    rel.rows.insert(1, dict(rel.rows[0]))  # the same worker submitting the same HIT twice
    curate(rel.write(tmp_path / "r"), tmp_path / "c", key=key, workers=1)
    report = json.loads((tmp_path / "c" / "curation_report.json").read_text())
    [e] = [e for e in report["entries"] if e["reason"] == "duplicate_submission"]
    assert "H" * 33 not in e["detail"]


def test_cr_only_line_endings_read_like_lf(tmp_path, key):
    """A results CSV saved with classic Mac line endings (CR only) is the same table as with LF,
    and curates to the same ratings (it was a csv.Error traceback)."""
    rel = build_release(1)
    lf = rel.write(tmp_path / "lf")
    cr = rel.write(tmp_path / "cr", crlf=True)
    csv_file = cr / "AADB_AllinAll.csv"
    csv_file.write_bytes(csv_file.read_bytes().replace(b"\r\n", b"\r"))
    assert read_results_csv(csv_file).equals(read_results_csv(lf / "AADB_AllinAll.csv"))
    assert curate(cr, tmp_path / "c", key=key, workers=1).n_ratings == \
        curate(lf, tmp_path / "c_lf", key=key, workers=1).n_ratings


def test_a_stray_carriage_return_in_a_row_is_a_malformed_row(tmp_path):
    """A lone CR inside an unquoted field ends the line there (as pandas reads it): the row falls
    short of the header, an InputError naming the file and row, never a csv.Error."""
    csv_file = tmp_path / "AADB_AllinAll.csv"
    csv_file.write_bytes(b"HITId,WorkerId\nH1,W\r1\n")
    with pytest.raises(InputError, match="malformed CSV: the row has 1 fields") as exc:
        read_results_csv(csv_file)
    assert exc.value.file == str(csv_file) and exc.value.row == 2


def test_a_bad_byte_in_a_cr_only_file_names_its_line(tmp_path):
    csv_file = tmp_path / "AADB_AllinAll.csv"
    csv_file.write_bytes(b"HITId,WorkerId\rH1,W1\rH2,W\xff2\r")
    with pytest.raises(InputError, match=r"file line 3") as exc:
        read_results_csv(csv_file)
    assert exc.value.row == 2
