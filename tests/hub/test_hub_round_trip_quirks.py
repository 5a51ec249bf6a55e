"""Round trip of a messy release: `simulate --quirks` → `curate --on-bad-value exclude` → publish,
with blank votes, non-ASCII image ids and very long strings added; every field, every image's
bytes and the stock `datasets` decode of every image (PNG behind .jpg, grayscale, CMYK, alpha,
EXIF-rotated) must come back exactly, through `load_dataset` (both configs) and `sources.load`."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from aadb_toolkit import hub, schema, sources
from aadb_toolkit.errors import InputError

KEY = ["image_id", "batch_id", "rater_id"]
RENAMES = ("фото_ü_é.jpg", "写真 空白.jpg", "a\u0301b.jpg")


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    from aadb_toolkit.curate import curate
    from aadb_toolkit.simulate import simulate

    root = tmp_path_factory.mktemp("messy")
    simulate(root / "release", n_images=250, seed=1, quirks=True, image_size=(32, 24))
    curate(root / "release", root / "curated", key=b"k" * 32, on_bad_value="exclude", progress=False, workers=1)
    cur = root / "curated"
    images = pd.read_parquet(cur / "images.parquet")
    ratings = pd.read_parquet(cur / "ratings.parquet")
    plain = images.index[images["flags"].fillna("") == ""]
    renames = {}
    for row, new in zip(plain[:3], RENAMES):  # non-ASCII ids, renamed on disk too
        old = images.at[row, "image_id"]
        (root / "release" / images.at[row, "path"]).rename(root / "release" / schema.RELEASE_IMAGE_DIR / new)
        images.at[row, "image_id"], images.at[row, "path"] = new, f"{schema.RELEASE_IMAGE_DIR}/{new}"
        renames[old] = new
    ratings["image_id"] = ratings["image_id"].replace(renames)
    images.at[plain[3], "source_url"] = "https://example.org/" + "ü" * 70_000
    images.at[plain[4], "license"] = "CC BY-NC 2.0 — " * 2_000
    for a in schema.ATTRIBUTES:
        ratings[a] = ratings[a].astype("Int8")
    ratings.loc[[0, 7, 8], "light"] = pd.NA  # blank attribute answers
    ratings.loc[3, "vivid_color"] = pd.NA
    ratings.loc[5, "rater_id"] = "r" * 20_000
    images.to_parquet(cur / "images.parquet", index=False)
    ratings.to_parquet(cur / "ratings.parquet", index=False)
    return cur


@pytest.fixture(scope="module")
def messy_published(messy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("messy-pub") / "aadb"
    hub.publish(sources.load(messy), out, shard_size_mb=0.05)  # several image shards per split
    return out


def _same(a: list, b: list) -> bool:
    return [None if pd.isna(x) else x for x in a] == [None if pd.isna(x) else x for x in b]


def test_the_messy_input_has_what_it_should(messy):
    images = pd.read_parquet(messy / "images.parquet")
    flags = set(";".join(images["flags"].fillna("")).split(";"))
    assert {"png_bytes", "grayscale", "cmyk", "exif_rotated"} <= flags
    assert set(RENAMES) <= set(images["image_id"])


def test_load_dataset_returns_everything_exactly(messy, messy_published, tmp_path):
    want = sources.load(messy)
    assert len((list((messy_published / "data").glob("train-*")))) > 1
    per_image = datasets.load_dataset(str(messy_published), cache_dir=str(tmp_path / "cache"))
    rows, nested, modes = [], [], set()
    for split in per_image:
        raw = per_image[split].cast_column("image", datasets.Image(decode=False))
        for row, decoded in zip(raw, per_image[split]):
            image_id = row["image_id"]
            original = want.image_bytes(image_id)
            assert row["image"]["bytes"] == original, image_id
            assert decoded["image_id"] == image_id and row["split"] == split
            # the stock Image feature decodes to what PIL gives for the original (EXIF applied)
            with Image.open(io.BytesIO(original)) as im:
                ref = ImageOps.exif_transpose(im)
                assert decoded["image"].mode == ref.mode and decoded["image"].size == ref.size, image_id
                assert np.array_equal(np.asarray(decoded["image"]), np.asarray(ref)), image_id
            modes.add(decoded["image"].mode)
            rows.append({k: v for k, v in row.items() if k not in ("image", "ratings")})
            nested += [{"image_id": image_id, **r} for r in row["ratings"]]
    assert {"L", "CMYK", "RGB"} <= modes
    got = pd.DataFrame(rows).sort_values("image_id").reset_index(drop=True)
    images = want.images.sort_values("image_id").reset_index(drop=True)
    for col in schema.IMAGE_COLUMNS:
        assert _same(list(got[col]), list(images[col])), col
    ratings = want.ratings.sort_values(KEY).reset_index(drop=True)
    got_nested = pd.DataFrame(nested).sort_values(KEY).reset_index(drop=True)
    long = datasets.load_dataset(str(messy_published), "ratings", cache_dir=str(tmp_path / "cache"))
    got_long = pd.concat([long[s].to_pandas() for s in long]).sort_values(KEY).reset_index(drop=True)
    assert list(got_long.columns) == list(schema.RATING_COLUMNS)
    for col in schema.RATING_COLUMNS:
        assert _same(list(got_nested[col]), list(ratings[col])), col
        assert _same(list(got_long[col]), list(ratings[col])), col
    assert int(got_long["light"].isna().sum()) == 3 and int(got_long["vivid_color"].isna().sum()) == 1


def test_sources_load_returns_everything_exactly(messy, messy_published):
    want = sources.load(messy)
    back = sources.load(messy_published)
    assert back.images.dtypes.equals(want.images.dtypes) and back.ratings.dtypes.equals(want.ratings.dtypes)
    pd.testing.assert_frame_equal(back.images.sort_values("image_id").reset_index(drop=True),
                                  want.images.sort_values("image_id").reset_index(drop=True), check_exact=True)
    pd.testing.assert_frame_equal(back.ratings.sort_values(KEY).reset_index(drop=True),
                                  want.ratings.sort_values(KEY).reset_index(drop=True), check_exact=True)
    for image_id in want.images["image_id"]:
        assert back.image_bytes(image_id) == want.image_bytes(image_id)
        assert np.array_equal(np.asarray(back.open_image(image_id)), np.asarray(want.open_image(image_id)))


def test_republish_of_the_messy_folder_is_byte_identical(messy, messy_published, tmp_path):
    again = tmp_path / "again"
    hub.publish(sources.load(messy), again, shard_size_mb=0.05)
    hub.publish(sources.load(messy), again, shard_size_mb=0.05)  # twice into the same folder
    first = {p.relative_to(messy_published): p.read_bytes() for p in messy_published.rglob("*") if p.is_file()}
    assert first == {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}


def test_interrupt_mid_write_leaves_the_old_folder(messy, messy_published, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(messy_published, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = []
    real = pq.ParquetWriter.write_table

    def interrupted(self, table, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # after two row groups are on disk in the staging folder
            raise KeyboardInterrupt
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hub.publish(sources.load(messy), out, shard_size_mb=0.05)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_images_deleted_after_curation_name_the_file(messy, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(messy.parent, root, ignore=shutil.ignore_patterns("*.truth"))
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["release_root"] = str(root / "release")
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    victim = RENAMES[1]
    (root / "release" / schema.RELEASE_IMAGE_DIR / victim).unlink()
    with pytest.raises(InputError) as err:
        hub.publish(sources.load(root / "curated"), tmp_path / "out")
    assert victim in str(err.value) and str(root / "curated") in str(err.value)
    assert not (tmp_path / "out").exists()
