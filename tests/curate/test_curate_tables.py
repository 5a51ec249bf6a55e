"""A tiny hand-written release curates to exactly the expected tables, manifest and report."""

from __future__ import annotations

import hashlib

import json

import numpy as np
import pandas as pd
import pytest
from curate_release_writer import ATTR_STEMS, ATTRS, build_release, image_name, score_of, vote_of

from aadb_toolkit import schema, sources
from aadb_toolkit.curate import anonymize, curate, key_fingerprint

URL_X = "https://farm3.staticflickr.com/2871/9412345678_0a1b2c3d4e_b.jpg"
URL_Y = "https://farm8.staticflickr.com/7302/13579246801_ffee00ddcc_b.jpg"
NAME_X = "farm3_2871_9412345678_0a1b2c3d4e_b.jpg"
NAME_Y = "farm8_7302_13579246801_ffee00ddcc_b.jpg"


def _hand_written_csv() -> bytes:
    """Two image slots, three assignments (one rejected), BOM, CRLF, quoted fields with a comma
    and a line break, one blank attribute vote."""
    header = ["HITId", "Title", "AssignmentId", "WorkerId", "AssignmentStatus", "SubmitTime", "Input.image_url1",
              "Input.image_url2", "Answer.overallScore1", "Answer.overallScore2"]
    header += [f"Answer.{s}{i}" for s in ATTR_STEMS for i in (1, 2)]

    def votes(v1, v2, blank_light_2=False):
        out = []
        for s in ATTR_STEMS:
            out += [str(v1), "" if (blank_light_2 and s == "light") else str(v2)]
        return out

    rows = [
        ["3HITAAA", "Rate,\nphotos", "3ASG1", "A1WORKERAAAAA", "Approved", "Mon Jun 01 10:00:00 PDT 2015",
         URL_X, URL_Y, "4", "2", *votes(1, 0)],
        ["3HITAAA", "Rate,\nphotos", "3ASG2", "A2WORKERBBBBB", "Submitted", "Mon Jun 01 11:00:00 PDT 2015",
         URL_X, URL_Y, "2", "5", *votes(-1, 1, blank_light_2=True)],
        ["3HITAAA", "Rate,\nphotos", "3ASG3", "A3WORKERCCCCC", "Rejected", "Mon Jun 01 12:00:00 PDT 2015",
         URL_X, URL_Y, "1", "1", *votes(0, 0)],
    ]
    lines = [",".join(f'"{c}"' for c in header)] + [",".join(f'"{c}"' for c in r) for r in rows]
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n"


@pytest.fixture
def hand_release(tmp_path):
    from curate_release_writer import jpeg

    root = tmp_path / "release"
    (root / schema.RELEASE_IMAGE_DIR).mkdir(parents=True)
    (root / "AADB_AllinAll.csv").write_bytes(_hand_written_csv())
    (root / schema.RELEASE_IMAGE_DIR / NAME_X).write_bytes(jpeg(30, 20))
    (root / schema.RELEASE_IMAGE_DIR / NAME_Y).write_bytes(jpeg(12, 40))
    return root


def test_hand_written_release_gives_exact_tables(hand_release, tmp_path, key):
    result = curate(hand_release, tmp_path / "out", key=key, workers=1, progress=False)
    images = pd.read_parquet(tmp_path / "out" / schema.CURATED_IMAGES)
    ratings = pd.read_parquet(tmp_path / "out" / schema.CURATED_RATINGS)
    assert list(images.columns) == list(schema.CURATED_IMAGE_COLUMNS)
    assert list(ratings.columns) == list(schema.RATING_COLUMNS)

    ra, rb = anonymize("A1WORKERAAAAA", key), anonymize("A2WORKERBBBBB", key)
    expected_ratings = pd.DataFrame({
        "image_id": [NAME_X, NAME_Y, NAME_X, NAME_Y],
        "rater_id": [ra, ra, rb, rb],
        "batch_id": ["3HITAAA"] * 4,
        "score": np.array([4, 2, 2, 5], dtype=np.int8),
    })
    votes = {a: [1, 0, -1, 1] for a in ATTRS}
    votes["light"] = [1, 0, -1, None]  # the blank vote stays missing
    for a in ATTRS:
        expected_ratings[a] = pd.array(votes[a], dtype="Int8")
    # PDT is UTC-7: stored as naive UTC.
    expected_ratings["submit_time"] = pd.to_datetime(["2015-06-01 17:00:00"] * 2 + ["2015-06-01 18:00:00"] * 2
                                                     ).astype("datetime64[ns]")
    pd.testing.assert_frame_equal(ratings, expected_ratings, check_dtype=True)

    att_y = {a: 0.5 for a in ATTRS}
    att_y["light"] = 0.0  # only the first rater's 0 counts
    expected_images = pd.DataFrame({
        "image_id": [NAME_X, NAME_Y], "split": ["train", "train"], "score_mean": [3.0, 3.5],
        "score": [0.5, 0.625], "n_ratings": np.array([2, 2], dtype=np.int64),
        **{a: [0.0, att_y[a]] for a in ATTRS},
        "width": np.array([30, 12], dtype=np.int64), "height": np.array([20, 40], dtype=np.int64),
        "exif_orientation": np.array([1, 1], dtype=np.int64),
        "source_url": [URL_X, URL_Y], "license": ["", ""],
        "path": [f"{schema.RELEASE_IMAGE_DIR}/{NAME_X}", f"{schema.RELEASE_IMAGE_DIR}/{NAME_Y}"], "flags": ["", ""],
        "sha256": ["sha256:" + hashlib.sha256((hand_release / schema.RELEASE_IMAGE_DIR / n).read_bytes()).hexdigest()
                   for n in (NAME_X, NAME_Y)],
    })
    pd.testing.assert_frame_equal(images, expected_images, check_dtype=False)
    assert images["score_mean"].dtype == np.float64 and images["n_ratings"].dtype == np.int64

    report = json.loads((tmp_path / "out" / "curation_report.json").read_text())
    assert report["row_status"] == ["kept", "kept", "rejected"]
    rejected = [e for e in report["entries"] if e["reason"] == "rejected"]
    # Row 3 is the third data row although the quoted line breaks put it on file lines 6-7.
    assert rejected == [{"kind": "row", "action": "excluded", "reason": "rejected", "file": "AADB_AllinAll.csv",
                         "row": 3, "column": "AssignmentStatus", "image_id": None, "value": "Rejected",
                         "detail": None}]
    blank = [e for e in report["entries"] if e["reason"] == "blank_vote"]
    assert [(e["row"], e["column"]) for e in blank] == [(2, "Answer.light2")]
    assert result.n_images == 2 and result.n_ratings == 4 and result.n_raters == 2 and result.n_batches == 1


def test_manifest_and_loader_round_trip(hand_release, tmp_path, key):
    curate(hand_release, tmp_path / "out", key=key, workers=1, progress=False)
    manifest = json.loads((tmp_path / "out" / schema.CURATED_MANIFEST).read_text())
    assert manifest["format"] == schema.CURATED_FORMAT
    assert manifest["format_version"] == schema.CURATED_FORMAT_VERSION
    assert manifest["release_root"] == str(hand_release.resolve())
    assert manifest["key_fingerprint"] == key_fingerprint(key) != key_fingerprint(b"another key, 16+ bytes")
    assert manifest["counts"]["images"] == 2 and manifest["counts"]["ratings"] == 4
    assert manifest["answer_columns"]["depth_of_field"] == "Answer.depthOfField<i>"
    data = sources.load(tmp_path / "out")
    assert data.image_bytes(NAME_Y) == (hand_release / schema.RELEASE_IMAGE_DIR / NAME_Y).read_bytes()
    assert data.open_image(NAME_X).size == (30, 20)
    assert len(data.split("train")) == 2


def test_generated_release_recovers_every_rating(tmp_path, key):
    """The independent writer's clean release: every (batch, worker, slot) answer comes back."""
    rel = build_release(4)
    root = rel.write(tmp_path / "r")
    curate(root, tmp_path / "c", key=key, workers=2, progress=False)
    ratings = pd.read_parquet(tmp_path / "c" / schema.CURATED_RATINGS)
    images = pd.read_parquet(tmp_path / "c" / schema.CURATED_IMAGES)
    assert len(ratings) == 4 * 5 * 10 and len(images) == 40
    got = ratings.set_index(["batch_id", "rater_id", "image_id"])
    for b in range(4):
        for j, row in enumerate(rel.rows[b * 5:(b + 1) * 5]):
            rid = anonymize(row["WorkerId"], key)
            for i in range(1, 11):
                r = got.loc[(row["HITId"], rid, image_name(b, i)[0])]
                assert r["score"] == score_of(b, j, i)
                assert [int(r[a]) for a in ATTRS] == [vote_of(b, j, i, k) for k in range(11)]
    # The writer's label files hold the exact means: no disagreement, official split used.
    report = json.loads((tmp_path / "c" / "curation_report.json").read_text())
    assert report["split"]["method"] == "official"
    assert not [e for e in report["entries"] if e["kind"] == "label"]
    assert images.groupby("split").size().to_dict() == {"test": 10, "train": 20, "validation": 10}
