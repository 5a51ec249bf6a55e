"""Every quirk of SPEC §2 is injected with --quirks, recorded in quirks.json, and really present."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps, UnidentifiedImageError

from aadb_toolkit import schema
from aadb_toolkit.simulate._quirks import EXPECTED


@pytest.fixture(scope="module")
def q(quirky_release, amt_csv):
    root = quirky_release.release_dir
    quirks = json.loads((quirky_release.truth_dir / "quirks.json").read_text())["quirks"]
    header, rows, raw = amt_csv(root / schema.RELEASE_RAW_RESULTS)
    labels = {}
    for p in (root / schema.RELEASE_LABEL_DIR).iterdir():
        labels[p.name] = [line.split(" ") for line in p.read_text().splitlines()]
    by_kind = defaultdict(list)
    for rec in quirks:
        by_kind[rec["kind"]].append(rec)
    truth = pd.read_parquet(quirky_release.truth_dir / "ratings.parquet")
    return dict(root=root, rows=rows, raw=raw, labels=labels, by_kind=by_kind, truth=truth,
                images=pd.read_parquet(quirky_release.truth_dir / "images.parquet"))


def _labelled(q, image_id):
    return {name for name, lines in q["labels"].items() if any(i == image_id for i, _ in lines)}


def _image_name(url: str) -> str:
    """https://farm<k>.staticflickr.com/<server>/<rest> -> farm<k>_<server>_<rest>"""
    farm = url.split("//farm")[1].split(".")[0]
    server, rest = url.split("/")[-2:]
    return f"farm{farm}_{server}_{rest}"


def _csv_images(q):
    return {_image_name(r[f"Input.image_url{i}"]) for r in q["rows"] for i in range(1, 11)}


def test_every_kind_is_recorded_with_its_expected_outcome(q):
    assert set(q["by_kind"]) == set(EXPECTED)
    for kind, recs in q["by_kind"].items():
        for rec in recs:
            assert rec["expected"] == EXPECTED[kind]
    # a small share: the data stays usable
    n_images = 300
    touched = {r["image_id"] for recs in q["by_kind"].values() for r in recs if "image_id" in r}
    assert len(touched) < 0.15 * n_images
    assert q["truth"]["is_valid"].mean() > 0.95


def test_csv_encoding_quirks(q):
    assert q["raw"].startswith(b"\xef\xbb\xbf\"HITId\"")
    body = q["raw"]
    assert body.count(b"\r\n") == len(q["rows"]) + 1 and body.count(b"\n") == body.count(b"\r\n")


def test_rejected_assignments(q):
    for rec in q["by_kind"]["rejected_assignment"]:
        row = q["rows"][rec["row"]]
        assert row["AssignmentId"] == rec["assignment_id"] and row["AssignmentStatus"] == "Rejected"
        assert row["RejectionTime"] and not row["ApprovalTime"]
        same_hit = [r for r in q["rows"] if r["HITId"] == rec["hit_id"]]
        others = {r["WorkerId"] for r in same_hit if r["AssignmentStatus"] != "Rejected"}
        assert len(same_hit) == 6 and len(others) == 5 and row["WorkerId"] not in others
        t = q["truth"][q["truth"]["assignment_id"] == rec["assignment_id"]]
        assert len(t) == 10 and (t["invalid_reason"] == "rejected_assignment").all()


def test_duplicate_submissions(q):
    for rec in q["by_kind"]["duplicate_submission"]:
        dup, kept = q["rows"][rec["row"]], q["rows"][rec["kept_row"]]
        assert dup["AssignmentId"] == rec["assignment_id"] and kept["AssignmentId"] == rec["kept_assignment_id"]
        assert dup["WorkerId"] == kept["WorkerId"] and dup["HITId"] == kept["HITId"]
        answers = [c for c in dup if c.startswith("Answer.")]
        assert [dup[c] for c in answers] == [kept[c] for c in answers]
        t = q["truth"].set_index("assignment_id")
        assert (t.loc[rec["assignment_id"], "invalid_reason"] == "duplicate_submission").all()
        assert t.loc[rec["kept_assignment_id"], "answer_valid"].all()
        sub = pd.to_datetime(t.loc[[rec["kept_assignment_id"], rec["assignment_id"]], "submit_time"].unique())
        assert sub[0] < sub[1]


@pytest.mark.parametrize("kind", ["blank_score", "out_of_range_score", "invalid_attribute"])
def test_bad_answer_cells(q, kind):
    recs = q["by_kind"][kind]
    assert recs
    for rec in recs:
        row = q["rows"][rec["row"]]
        assert row["AssignmentId"] == rec["assignment_id"]
        assert row[rec["column"]] == rec["value"]
        if kind == "blank_score":
            assert rec["value"] == ""
        elif kind == "out_of_range_score":
            assert rec["value"] not in {"1", "2", "3", "4", "5"}
        else:
            assert rec["value"] not in {"-1", "0", "1"}
        assert _image_name(row[f"Input.image_url{rec['slot']}"]) == rec["image_id"]
        t = q["truth"]
        hit = t[(t["assignment_id"] == rec["assignment_id"])]
        assert (hit.loc[hit["slot"] == rec["slot"], "invalid_reason"] == kind).all()
        assert hit.loc[hit["slot"] != rec["slot"], "is_valid"].all()


def test_image_file_quirks(q):
    folder = q["root"] / schema.RELEASE_IMAGE_DIR
    kinds = q["by_kind"]
    for rec in kinds["missing_image"]:
        assert not (folder / rec["image_id"]).exists()
        assert rec["image_id"] in _csv_images(q) and len(_labelled(q, rec["image_id"])) == 12
    for rec in kinds["corrupt_image"]:
        with pytest.raises(UnidentifiedImageError):
            Image.open(folder / rec["image_id"])
    for rec in kinds["truncated_image"]:
        with pytest.raises(OSError, match="truncated"), Image.open(folder / rec["image_id"]) as im:
            im.load()
    for kind, fmt, mode in (("grayscale", "JPEG", "L"), ("cmyk", "JPEG", "CMYK"), ("rgba", "PNG", "RGBA"),
                            ("png_bytes", "PNG", "RGB")):
        assert kinds[kind], kind
        for rec in kinds[kind]:
            assert rec["image_id"].endswith(".jpg")
            with Image.open(folder / rec["image_id"]) as im:
                assert (im.format, im.mode) == (fmt, mode), kind
                im.load()
    for kind in ("missing_image", "corrupt_image", "truncated_image"):
        for rec in kinds[kind]:
            t = q["truth"][q["truth"]["image_id"] == rec["image_id"]]
            allowed = [kind, "rejected_assignment", "duplicate_submission"]
            assert len(t) >= 5 and t["invalid_reason"].isin(allowed).all()
            assert t["answer_valid"].sum() >= 5 and not t["is_valid"].any()
            assert not q["images"].set_index("image_id").loc[rec["image_id"], "kept"]


def test_exif_orientation_restores_the_upright_photo(q, quirky_release):
    from aadb_toolkit.simulate._images import draw_photo, photo_size
    from aadb_toolkit.simulate._model import load_model, rng

    model = load_model()
    hue = {c.name: c.hue for c in model.content_types}
    images = q["images"].reset_index()
    recs = q["by_kind"]["exif_orientation"]
    assert {r["orientation"] for r in recs} <= {3, 6, 8} and recs
    for rec in recs:
        row = images[images["image_id"] == rec["image_id"]].iloc[0]
        with Image.open(q["root"] / schema.RELEASE_IMAGE_DIR / rec["image_id"]) as im:
            assert im.getexif().get(0x0112) == rec["orientation"]
            upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=float)
        assert upright.shape[:2] == (row["height"], row["width"])
        s = row[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy(dtype=float)
        i = int(row["index"])
        drawn = draw_photo(row["content_type"], s, hue[row["content_type"]], rng(7, "pixels", 0, i),
                           photo_size(row["content_type"], (128, 96))).astype(float)
        assert np.abs(upright - drawn).mean() < 6  # only JPEG loss, not a wrong rotation


def test_label_quirks(q):
    kinds = q["by_kind"]
    t = q["truth"]
    for rec in kinds["label_mismatch"]:
        name = rec["file"].split("/")[-1]
        image_id, value = q["labels"][name][rec["line"] - 1]
        assert image_id == rec["image_id"] and float(value) == pytest.approx(rec["label_value"])
        ok = t[(t["image_id"] == image_id) & t["answer_valid"]]
        assert abs(float(value) - (ok["score"].mean() - 1) / 4) > 0.2
    for rec in kinds["unlabeled_image"]:
        assert not _labelled(q, rec["image_id"])
        assert rec["image_id"] in _csv_images(q)
        assert (q["root"] / schema.RELEASE_IMAGE_DIR / rec["image_id"]).exists()
    for rec in kinds["label_without_image"]:
        assert _labelled(q, rec["image_id"]) == {f.split("/")[-1] for f in rec["files"]}
        assert len(rec["files"]) == 12
        assert not (q["root"] / schema.RELEASE_IMAGE_DIR / rec["image_id"]).exists()
        assert rec["image_id"] not in _csv_images(q)
    for rec in kinds["image_without_ratings"]:
        assert (q["root"] / rec["file"]).exists()
        assert rec["image_id"] not in _csv_images(q) and not _labelled(q, rec["image_id"])
