"""simulate → curate: every planted valid rating is recovered exactly, every planted quirk is
handled as its record says, and the CLI gives the paper's split on a 1,000-image release."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from aadb_toolkit import schema
from aadb_toolkit.cli import main
from aadb_toolkit.curate import anonymize, curate

simulate_mod = pytest.importorskip("aadb_toolkit.simulate")
KEY = b"simulated-release-test-key"


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    res = simulate_mod.simulate(tmp / "r", n_images=200, seed=3, quirks=True)
    curate(res.release_dir, tmp / "c", key=KEY, workers=2, on_bad_value="exclude", progress=False)
    truth = res.truth_dir
    return {
        "ratings": pd.read_parquet(tmp / "c" / schema.CURATED_RATINGS),
        "images": pd.read_parquet(tmp / "c" / schema.CURATED_IMAGES).set_index("image_id"),
        "report": json.loads((tmp / "c" / "curation_report.json").read_text()),
        "truth": pd.read_parquet(truth / "ratings.parquet"),
        "truth_images": pd.read_parquet(truth / "images.parquet").set_index("image_id"),
        "quirks": json.loads((truth / "quirks.json").read_text())["quirks"],
    }


def test_every_planted_valid_rating_recovered_exactly(curated):
    truth = curated["truth"]
    valid = truth[truth["is_valid"]].copy()
    valid["rater_id"] = [anonymize(w, KEY) for w in valid["worker_id"]]
    valid = valid.rename(columns={"hit_id": "batch_id"})
    key_cols = ["image_id", "rater_id", "batch_id"]
    got = curated["ratings"]
    assert len(got) == len(valid)
    merged = got.merge(valid, on=key_cols, how="outer", suffixes=("", "_truth"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    for col in ["score", *schema.ATTRIBUTES]:
        assert (merged[col].astype(int) == merged[f"{col}_truth"].astype(int)).all(), col
    planted = pd.to_datetime(merged["submit_time_truth"], utc=True).dt.tz_localize(None).dt.floor("s")
    assert (merged["submit_time"] == planted).all()


def test_each_planted_quirk_is_handled(curated):
    images, report = curated["images"], curated["report"]
    entries = report["entries"]

    def reported(reason, image_id):
        return any(e["reason"] == reason and e["image_id"] == image_id for e in entries)

    flag_of = {"grayscale": "grayscale", "cmyk": "cmyk", "rgba": "alpha", "png_bytes": "png_bytes",
               "exif_orientation": "exif_rotated", "unlabeled_image": "no_label", "label_mismatch": "label_mismatch"}
    for q in curated["quirks"]:
        kind, image_id = q["kind"], q.get("image_id")
        if kind in ("missing_image",):
            assert image_id not in images.index and reported("missing_file", image_id)
        elif kind in ("corrupt_image", "truncated_image"):
            assert image_id not in images.index and reported("corrupt_file", image_id)
        elif kind in flag_of:
            assert flag_of[kind] in images.loc[image_id, "flags"].split(";"), q
        elif kind == "label_without_image":
            assert reported("label_without_image", image_id)
        elif kind == "image_without_ratings":
            assert reported("no_ratings", image_id)
        elif kind in ("rejected_assignment", "duplicate_submission", "blank_score", "out_of_range_score",
                      "invalid_attribute"):
            reason = {"rejected_assignment": "rejected", "out_of_range_score": {"score_out_of_range",
                                                                                  "non_numeric_score"},
                      "invalid_attribute": "invalid_vote"}.get(kind, kind)
            reasons = reason if isinstance(reason, set) else {reason}
            assert any(e["reason"] in reasons for e in entries), kind
        if kind == "exif_orientation":
            t = curated["truth_images"].loc[image_id]
            got = images.loc[image_id]
            assert (got["width"], got["height"], got["exif_orientation"]) == (t["width"], t["height"],
                                                                               q["orientation"])
        if kind == "unlabeled_image":
            assert images.loc[image_id, "split"] == q["split"]
        if kind == "label_mismatch":
            assert reported("label_disagrees", image_id)
    for acc in report["accounting"].values():
        assert acc["balanced"]


@pytest.mark.slow
def test_cli_full_flow_gives_paper_proportions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--out", "r", "--images", "1000", "--seed", "1"]) == 0
    assert main(["curate", "--release", "r", "--out", "c", "--key-file", "k", "--no-progress"]) == 0
    images = pd.read_parquet(tmp_path / "c" / schema.CURATED_IMAGES)
    ratings = pd.read_parquet(tmp_path / "c" / schema.CURATED_RATINGS)
    assert len(images) == 1000 and len(ratings) == 5000 and ratings["batch_id"].nunique() == 100
    assert images["split"].value_counts().to_dict() == {"train": 850, "test": 100, "validation": 50}
    assert (images["n_ratings"] == 5).all()
    assert "curated 1000 images, 5000 ratings, 100 batches" in capsys.readouterr().out
