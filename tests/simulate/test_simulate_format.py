"""The release is in exactly the real AADB format (SPEC §2)."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd
from PIL import Image

from aadb_toolkit import schema

URL = re.compile(r"^https://farm(\d)\.staticflickr\.com/(\d+)/(\d+)_([0-9a-f]{10})_b\.jpg$")
NAME = re.compile(r"^farm(\d)_(\d+)_(\d+)_([0-9a-f]{10})_b\.jpg$")
AMT_TIME = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d PDT 2015$")


def test_layout_and_csv_columns(clean_release, amt_csv):
    root = clean_release.release_dir
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [schema.RELEASE_IMAGE_DIR, schema.RELEASE_LABEL_DIR, schema.RELEASE_RAW_RESULTS,
         ".aadb_output.json"])  # the release format, plus the toolkit's output marker
    header, rows, raw = amt_csv(root / schema.RELEASE_RAW_RESULTS)
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw  # quirks only with --quirks
    for col in ("HITId", "HITTypeId", "Title", "Reward", "CreationTime", "MaxAssignments", "AssignmentId",
                "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime", "AutoApprovalTime",
                "WorkTimeInSeconds"):
        assert col in header, col
    expected_answers = [f"Answer.overallScore{i}" for i in range(1, 11)] + [
        f"Answer.{stem}{i}" for stem in schema.AMT_ATTRIBUTE_ANSWER_STEMS.values() for i in range(1, 11)]
    assert set(expected_answers) <= set(header)
    assert [c for c in header if c.startswith("Input.")] == [f"Input.image_url{i}" for i in range(1, 11)]
    assert len(header) == len(set(header))
    assert len(rows) == 100  # 20 HITs x 5 workers
    for row in rows:
        assert re.fullmatch(r"A[A-Z0-9]{13}", row["WorkerId"])
        assert re.fullmatch(r"[A-Z0-9]{30}", row["HITId"]) and re.fullmatch(r"[A-Z0-9]{30}", row["AssignmentId"])
        assert row["AssignmentStatus"] in ("Approved", "Submitted")
        for t in ("CreationTime", "AcceptTime", "SubmitTime", "AutoApprovalTime"):
            assert AMT_TIME.match(row[t]), row[t]
        assert int(row["WorkTimeInSeconds"]) > 0
        for i in range(1, 11):
            assert row[f"Answer.overallScore{i}"] in {"1", "2", "3", "4", "5"}
            for stem in schema.AMT_ATTRIBUTE_ANSWER_STEMS.values():
                assert row[f"Answer.{stem}{i}"] in {"-1", "0", "1"}
    keys = [(r["HITId"], r["AssignmentId"]) for r in rows]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)


def test_batches_are_10_images_by_5_distinct_workers(clean_release, amt_csv):
    _, rows, _ = amt_csv(clean_release.release_dir / schema.RELEASE_RAW_RESULTS)
    workers, urls = defaultdict(list), defaultdict(set)
    for r in rows:
        workers[r["HITId"]].append(r["WorkerId"])
        urls[r["HITId"]].add(tuple(r[f"Input.image_url{i}"] for i in range(1, 11)))
    assert len(workers) == 20
    for hit, ws in workers.items():
        assert len(ws) == 5 and len(set(ws)) == 5, hit
        assert len(urls[hit]) == 1  # every assignment of a HIT shows the same 10 images
    all_urls = [u for s in urls.values() for u in next(iter(s))]
    assert len(all_urls) == len(set(all_urls)) == 200  # each image in exactly one HIT


def test_urls_map_to_image_files(clean_release, amt_csv):
    root = clean_release.release_dir
    _, rows, _ = amt_csv(root / schema.RELEASE_RAW_RESULTS)
    files = {p.name for p in (root / schema.RELEASE_IMAGE_DIR).iterdir()}
    names = set()
    for r in rows:
        for i in range(1, 11):
            m = URL.match(r[f"Input.image_url{i}"])
            assert m, r[f"Input.image_url{i}"]
            names.add(f"farm{m[1]}_{m[2]}_{m[3]}_{m[4]}_b.jpg")
    assert names == files
    for name in sorted(files)[:20]:
        assert NAME.match(name)
        with Image.open(root / schema.RELEASE_IMAGE_DIR / name) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size in ((128, 96), (96, 128))


def test_label_files_agree_with_the_ratings(clean_release, amt_csv):
    root = clean_release.release_dir
    _, rows, _ = amt_csv(root / schema.RELEASE_RAW_RESULTS)
    per_image = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for i in range(1, 11):
            name = r[f"Input.image_url{i}"].rsplit("/", 1)[1]
            m = URL.match(r[f"Input.image_url{i}"])
            image_id = f"farm{m[1]}_{m[2]}_{name}"
            per_image[image_id]["score"].append(int(r[f"Answer.overallScore{i}"]))
            for a, stem in schema.AMT_ATTRIBUTE_ANSWER_STEMS.items():
                per_image[image_id][a].append(int(r[f"Answer.{stem}{i}"]))
    label_dir = root / schema.RELEASE_LABEL_DIR
    expected_names = {schema.label_file_name(s, f) for s in schema.SPLITS
                      for f in (schema.SCORE_LABEL_FIELD, *schema.ATTRIBUTES)}
    assert {p.name for p in label_dir.iterdir()} == expected_names
    assert "imgListTrainRegression_BalacingElements.txt" in expected_names  # the release's spelling
    seen_split = {}
    for split in schema.SPLITS:
        for fld in (schema.SCORE_LABEL_FIELD, *schema.ATTRIBUTES):
            lines = (label_dir / schema.label_file_name(split, fld)).read_text().splitlines()
            for line in lines:
                image_id, value = line.split(" ")
                votes = per_image[image_id]["score" if fld == "score" else fld]
                want = (np.mean(votes) - 1) / 4 if fld == "score" else np.mean(votes)
                assert abs(float(value) - want) < 1e-6, (split, fld, line)
                assert -1 <= float(value) <= 1
                assert seen_split.setdefault(image_id, split) == split
    assert set(seen_split) == set(per_image)


def test_splits_are_whole_batches_in_paper_proportions(tmp_path):
    from aadb_toolkit.simulate import simulate

    res = simulate(tmp_path / "r", n_images=1000, seed=1, image_size=(32, 24))
    images = pd.read_parquet(res.truth_dir / "images.parquet")
    assert images["split"].value_counts().to_dict() == {"train": 850, "test": 100, "validation": 50}
    assert images.groupby("hit_id")["split"].nunique().max() == 1
    assert res.n_hits == 100 and res.n_valid_ratings == 5000 and res.n_csv_rows == 500
    label_dir = res.release_dir / schema.RELEASE_LABEL_DIR
    for split, n in (("train", 850), ("validation", 50), ("test", 100)):
        assert len((label_dir / schema.label_file_name(split, "score")).read_text().splitlines()) == n
