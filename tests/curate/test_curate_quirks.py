"""Each real-world quirk of SPEC §2 is handled and reported with its location, and the report's
counts add up. One messy release (planted by the independent writer) is curated once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from curate_release_writer import IMAGE_DIR, LABEL_DIR, build_release, image_name, jpeg
from PIL import Image

from aadb_toolkit import schema
from aadb_toolkit.curate import anonymize, curate

KEY = b"quirks-test-key-0123456789"
CSV = "AADB_AllinAll.csv"


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """Curate a release with every quirk planted; return (release, out, report, images, ratings, plan)."""
    tmp = tmp_path_factory.mktemp("messy")
    rel = build_release(3)
    n = lambda b, i: image_name(b, i)[0]  # noqa: E731
    rows = rel.rows
    rows[1]["AssignmentStatus"] = "Rejected"                                    # row 2
    dup = dict(rows[2], AssignmentId="3ASGDUP", SubmitTime="Mon Jun 01 09:00:00 PDT 2015")
    rows.append(dup)                                                            # row 16, earlier than row 3
    rows[3]["Answer.overallScore4"] = ""                                        # row 4 slot 4: blank score
    for c in rel.columns:                                                       # row 5 slot 10: empty slot
        if c.endswith("10") and (c.startswith("Answer.") or c.startswith("Input.")):
            rows[4][c] = ""
    rows[5]["Answer.overallScore1"] = "abc"                                     # row 6: non-numeric
    rows[6]["Answer.overallScore2"] = "7"                                       # row 7: out of range
    rows[7]["Answer.light3"] = "2"                                              # row 8: invalid vote
    rows[8]["Answer.symmetry3"] = ""                                            # row 9: blank vote
    rows[11]["SubmitTime"] = "sometime in June"                                 # row 12: unparseable time
    del rel.images[n(1, 5)]                                                     # missing file
    rel.images[n(1, 6)] = rel.images[n(1, 6)][: len(rel.images[n(1, 6)]) // 2]  # truncated
    rel.images[n(1, 7)] = jpeg(20, 10, mode="L")                                # grayscale
    rel.images[n(1, 8)] = jpeg(20, 10, colour=(10, 20, 30, 40), mode="CMYK")   # CMYK
    rel.images[n(1, 9)] = jpeg(20, 10, colour=(10, 20, 30, 128), mode="RGBA", fmt="PNG")  # alpha + PNG bytes
    rel.images[n(2, 1)] = jpeg(20, 10, fmt="PNG")                               # PNG bytes
    rel.images[n(2, 2)] = jpeg(30, 20, exif=_exif_orientation(6))              # EXIF: rotate 90°
    rel.images["farm9_1_2_3_b.jpg"] = jpeg(8, 8)                                # file nobody rated
    score_train = "imgListTrainRegression_score.txt"
    score_test = "imgListTestNewRegression_score.txt"
    rel.labels[score_train] += "farm5_999_1_abc_b.jpg 0.5000\ngarbage\n"          # label without image; malformed
    lines = rel.labels[score_test].splitlines()
    lines = [f"{n(2, 3)} 0.1234" if ln.startswith(n(2, 3) + " ") else ln for ln in lines]
    rel.labels[score_test] = "\n".join(lines) + "\n"                            # disagreeing label
    for fname, text in rel.labels.items():                                      # image without labels
        rel.labels[fname] = "".join(ln + "\n" for ln in text.splitlines() if not ln.startswith(n(2, 4) + " "))
    root = rel.write(tmp / "release", crlf=True, bom=True)
    out = tmp / "curated"
    curate(root, out, key=KEY, workers=2, on_bad_value="exclude", progress=False)
    report = json.loads((out / "curation_report.json").read_text())
    images = pd.read_parquet(out / schema.CURATED_IMAGES)
    ratings = pd.read_parquet(out / schema.CURATED_RATINGS)
    return root, out, report, images.set_index("image_id"), ratings, rel


def _entries(report, reason, **match):
    return [e for e in report["entries"] if e["reason"] == reason and all(e[k] == v for k, v in match.items())]


def test_rejected_assignment_excluded(messy):
    _, _, report, _, ratings, rel = messy
    assert _entries(report, "rejected", row=2, column="AssignmentStatus")
    assert anonymize(rel.rows[1]["WorkerId"], KEY) not in set(ratings.loc[ratings["batch_id"] == "3HIT0000QZ",
                                                                           "rater_id"])


def test_repeated_submission_keeps_the_earliest(messy):
    _, _, report, _, ratings, rel = messy
    [e] = _entries(report, "duplicate_submission")
    assert e["row"] == 3 and "row 16" in e["detail"]
    rid = anonymize(rel.rows[2]["WorkerId"], KEY)
    mine = ratings[(ratings["rater_id"] == rid) & (ratings["batch_id"] == "3HIT0000QZ")]
    assert len(mine) == 10
    assert (mine["submit_time"] == pd.Timestamp("2015-06-01 16:00:00")).all()  # 09:00 PDT, the copy


def test_blank_and_bad_answers_excluded_with_location(messy):
    _, _, report, images, _, _ = messy
    assert _entries(report, "blank_score", row=4, column="Answer.overallScore4")
    assert _entries(report, "non_numeric_score", row=6, column="Answer.overallScore1", value="abc")
    assert _entries(report, "score_out_of_range", row=7, column="Answer.overallScore2", value="7")
    assert report["csv"]["answers"]["empty_slot"] == 1
    assert images.loc[image_name(0, 4)[0], "n_ratings"] == 3  # rejected row 2 and blank row 4
    assert images.loc[image_name(1, 1)[0], "n_ratings"] == 4


def test_invalid_vote_excludes_the_answer_blank_vote_only_the_vote(messy):
    _, _, report, images, ratings, rel = messy
    assert _entries(report, "invalid_vote", kind="answer", row=8, column="Answer.light3", value="2")
    assert _entries(report, "blank_vote", kind="vote", row=9, column="Answer.symmetry3")
    img = image_name(1, 3)[0]
    bad, blank = (anonymize(rel.rows[k]["WorkerId"], KEY) for k in (7, 8))
    mine = ratings[ratings["image_id"] == img].set_index("rater_id")
    assert bad not in mine.index and len(mine) == 4
    assert pd.isna(mine.loc[blank, "symmetry"]) and not pd.isna(mine.loc[blank, "light"])
    assert images.loc[img, "symmetry"] == pytest.approx(mine["symmetry"].dropna().astype(float).mean())
    assert mine["symmetry"].notna().sum() == 3


def test_unparseable_submit_time_flagged(messy):
    _, _, report, _, ratings, rel = messy
    assert _entries(report, "unparsed_submit_time", row=12, value="sometime in June")
    rid = anonymize(rel.rows[11]["WorkerId"], KEY)
    assert ratings.loc[ratings["rater_id"] == rid, "submit_time"].isna().sum() == 10


def test_missing_and_corrupt_images_excluded(messy):
    _, _, report, images, ratings, _ = messy
    missing, corrupt = image_name(1, 5)[0], image_name(1, 6)[0]
    assert missing not in images.index and corrupt not in images.index
    assert not ratings["image_id"].isin([missing, corrupt]).any()
    assert _entries(report, "missing_file", image_id=missing)
    [c] = _entries(report, "corrupt_file", image_id=corrupt)
    assert c["file"] == f"{IMAGE_DIR}/{corrupt}" and "truncated" in c["detail"].lower()
    # Each excluded answer names its row and URL column (5 raters, one of them rejected).
    assert sorted(e["row"] for e in _entries(report, "image_missing")) == [6, 7, 8, 9, 10]
    assert {e["column"] for e in _entries(report, "image_corrupt")} == {"Input.image_url6"}
    assert report["image_status"][missing] == "excluded:missing_file"


def test_image_format_quirks_kept_and_flagged(messy):
    _, _, report, images, _, _ = messy
    flags = images["flags"].str.split(";")
    assert "grayscale" in flags[image_name(1, 7)[0]]
    assert "cmyk" in flags[image_name(1, 8)[0]]
    assert {"alpha", "png_bytes"} <= set(flags[image_name(1, 9)[0]])
    assert "png_bytes" in flags[image_name(2, 1)[0]]
    rot = images.loc[image_name(2, 2)[0]]
    assert (rot["width"], rot["height"], rot["exif_orientation"]) == (20, 30, 6)
    assert "exif_rotated" in rot["flags"].split(";")
    assert _entries(report, "png_bytes", image_id=image_name(2, 1)[0], action="flagged")
    assert report["images"]["flags"]["png_bytes"] == 2


def test_unrated_file_reported(messy):
    _, _, report, images, _, _ = messy
    assert "farm9_1_2_3_b.jpg" not in images.index
    [e] = _entries(report, "no_ratings", image_id="farm9_1_2_3_b.jpg")
    assert e["detail"] == "not referenced by any answer"
    assert report["image_status"]["farm9_1_2_3_b.jpg"] == "reported:no_ratings"


def test_label_findings(messy):
    _, _, report, images, _, _ = messy
    [d] = _entries(report, "label_disagrees", image_id=image_name(2, 3)[0])
    assert d["file"] == f"{LABEL_DIR}/imgListTestNewRegression_score.txt" and d["column"] == "score"
    ours = images.loc[image_name(2, 3)[0], "score"]
    assert "label 0.1234" in d["detail"] and f"ratings {ours:.6g}" in d["detail"]
    assert "label_mismatch" in images.loc[image_name(2, 3)[0], "flags"]
    # Labels computed from 5 raters disagree where raters were excluded (blank score, row 4 slot 4).
    assert _entries(report, "label_disagrees", image_id=image_name(0, 4)[0], column="score")
    assert _entries(report, "label_without_image", image_id="farm5_999_1_abc_b.jpg")
    assert _entries(report, "malformed_label_line", file=f"{LABEL_DIR}/imgListTrainRegression_score.txt", row=12)
    assert _entries(report, "label_without_ratings", image_id=image_name(1, 6)[0])  # the corrupt image
    unlabeled = images.loc[image_name(2, 4)[0]]
    assert unlabeled["split"] == "test" and "no_label" in unlabeled["flags"]  # the split of its batch
    assert images.loc[image_name(2, 5)[0], "split"] == "test"


def test_counts_add_up_and_everything_is_accounted(messy):
    root, _, report, images, ratings, rel = messy
    for name, acc in report["accounting"].items():
        assert acc["balanced"] and acc["total"] == sum(acc["parts"].values()), name
    assert len(report["row_status"]) == len(rel.rows) == report["csv"]["rows_total"]
    assert sum(report["csv"]["answers"].values()) == report["csv"]["rows_kept"] * 10
    assert report["csv"]["answers"]["kept"] == len(ratings) == images["n_ratings"].sum()
    files = {p.name for p in (root / IMAGE_DIR).iterdir()}
    assert set(report["image_status"]) == files | {image_name(1, 5)[0]}
    kept = {k for k, v in report["image_status"].items() if v.startswith("kept")}
    assert kept == set(images.index)
    # Every excluded CSV row appears as an entry with its row number.
    excluded_rows = {i + 1 for i, s in enumerate(report["row_status"]) if s != "kept"}
    assert excluded_rows == {e["row"] for e in report["entries"] if e["kind"] == "row" and e["action"] == "excluded"}
    md = (messy[1] / "curation_report.md").read_text()
    assert "| csv rows |" in md and "**NO**" not in md and "duplicate_submission" in md


def test_report_is_deterministic(messy, tmp_path):
    root, out, _, _, _, _ = messy
    curate(root, tmp_path / "again", key=KEY, workers=1, on_bad_value="exclude", progress=False)
    for name in ("curation_report.json", "manifest.json", "images.parquet", "ratings.parquet"):
        a, b = (out / name).read_bytes(), (tmp_path / "again" / name).read_bytes()
        if name.endswith(".json"):
            a, b = json.loads(a), json.loads(b)
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(tmp_path / "again" / name))
        else:
            assert a == b, name
    assert np.array_equal(pd.read_parquet(out / "images.parquet")["split"], pd.read_parquet(
        tmp_path / "again" / "images.parquet")["split"])
