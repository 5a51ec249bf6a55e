"""Publish → load round trips (stock `datasets` client and the toolkit's loader), byte-identical
republishing, atomic failure, input errors and the dataset card checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq
import pytest

from aadb_toolkit import hub, schema, sources
from aadb_toolkit.errors import InputError, SourceError


@pytest.fixture(scope="module")
def published(tiny_curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pub") / "aadb"
    hub.publish(sources.load(tiny_curated), out, consistency_summary={
        "n_batches": 20, "n_significant": 19, "percent_significant": 95.0, "q": 0.05, "n_perm": 10000,
        "method": "mean pairwise spearman, permutation"})
    return out


def _sorted_ratings(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["image_id", "batch_id", "rater_id"]).reset_index(drop=True)


def _sorted_images(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("image_id").reset_index(drop=True)


def test_load_dataset_default_config_round_trip(published, tiny_curated, tmp_path):
    curated = sources.load(tiny_curated)
    ds = datasets.load_dataset(str(published), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == set(schema.SPLITS)
    seen = []
    nested_rows = []
    for split in ds:
        d = ds[split].cast_column("image", datasets.Image(decode=False))
        assert d.features["image"] == datasets.Image(decode=False)
        for row in d:
            assert row["split"] == split
            assert row["image"]["bytes"] == curated.image_bytes(row["image_id"])
            assert row["image"]["path"] == row["image_id"]
            assert len(row["ratings"]) == row["n_ratings"]
            for r in row["ratings"]:
                nested_rows.append({"image_id": row["image_id"], **r})
            seen.append(row)
    table = pd.DataFrame(seen).drop(columns=["image", "ratings"])
    want = _sorted_images(curated.images)
    got = _sorted_images(table)[list(schema.IMAGE_COLUMNS)]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=True)
    # every nested rating, with rater id, batch id, score, votes and time, equals the curated one
    nested = _sorted_ratings(pd.DataFrame(nested_rows)[list(schema.RATING_COLUMNS)])
    want_r = _sorted_ratings(curated.ratings)
    assert len(nested) == len(want_r) == 1000
    for col in schema.RATING_COLUMNS:
        assert list(nested[col].astype(str)) == list(want_r[col].astype(str)), col


def test_load_dataset_ratings_config_round_trip(published, tiny_curated, tmp_path):
    curated = sources.load(tiny_curated)
    ds = datasets.load_dataset(str(published), "ratings", cache_dir=str(tmp_path / "cache"))
    parts = []
    split_of = dict(zip(curated.images["image_id"], curated.images["split"]))
    for split in ds:
        df = ds[split].to_pandas()
        assert list(df.columns) == list(schema.RATING_COLUMNS)
        assert set(df["image_id"].map(split_of)) == {split}
        parts.append(df)
    got = _sorted_ratings(pd.concat(parts, ignore_index=True))
    want = _sorted_ratings(curated.ratings)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got["rater_id"].nunique() == want["rater_id"].nunique()
    assert got["batch_id"].nunique() == 20


def test_sources_load_of_published_folder_equals_curated(published, tiny_curated):
    curated = sources.load(tiny_curated)
    back = sources.load(published)
    assert list(back.images.columns) == list(schema.IMAGE_COLUMNS)
    assert list(back.ratings.columns) == list(schema.RATING_COLUMNS)
    assert back.images.dtypes.equals(curated.images.dtypes)
    assert back.ratings.dtypes.equals(curated.ratings.dtypes)
    pd.testing.assert_frame_equal(_sorted_images(back.images), _sorted_images(curated.images), check_exact=True)
    pd.testing.assert_frame_equal(_sorted_ratings(back.ratings), _sorted_ratings(curated.ratings), check_exact=True)
    for image_id in curated.images["image_id"]:
        assert back.image_bytes(image_id) == curated.image_bytes(image_id)
    first = curated.images["image_id"].iloc[0]
    assert back.open_image(first).size == curated.open_image(first).size
    assert back.fingerprint("test") == curated.fingerprint("test")
    with pytest.raises(KeyError, match="unknown image_id"):
        back.image_bytes("nope.jpg")


def test_image_reader_survives_pickling(published, tiny_curated):
    import pickle

    back = sources.load(published)
    reader = pickle.loads(pickle.dumps(back.read_image_bytes))
    image_id = back.images["image_id"].iloc[-1]
    assert reader(image_id) == sources.load(tiny_curated).image_bytes(image_id)


def test_folder_named_aadb_loads_by_name(published, tmp_path, monkeypatch):
    shutil.copytree(published, tmp_path / "aadb")
    monkeypatch.chdir(tmp_path)
    ds = datasets.load_dataset("aadb", cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows + ds["validation"].num_rows + ds["test"].num_rows == 200
    ratings = datasets.load_dataset("aadb", "ratings", cache_dir=str(tmp_path / "cache"))
    assert sum(ratings[s].num_rows for s in ratings) == 1000


def test_layout_and_card(published):
    files = sorted(p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file())
    assert files == [
        ".aadb_output.json", "LICENSE.md", "README.md",
        "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
        "ratings/test-00000-of-00001.parquet", "ratings/train-00000-of-00001.parquet",
        "ratings/validation-00000-of-00001.parquet",
    ]
    meta = hub.card.read_metadata(published / "README.md")
    assert meta["license"] == "other" and meta["license_name"] == "aadb-research-only"
    assert meta["size_categories"] == ["n<1K"]
    assert "extra_gated_prompt" not in meta
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["ratings"]["data_files"][0] == {"split": "train", "path": "ratings/train-*"}
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert {s["name"]: s["num_examples"] for s in infos["default"]["splits"]} == {
        "train": 170, "validation": 10, "test": 20}
    text = (published / "README.md").read_text()
    for needle in ("HMAC", "research use only", "Creative Commons", "@inproceedings{kong2016aesthetics",
                   "| significant tests | 19 |", "| percentage significant | 95 |",
                   "| permutations per test | 10000 |", "98.45%", "## Known limitations", "## Collection protocol"):
        assert needle in text, needle
    # row groups of ~100 images keep random access cheap; images stored uncompressed, no statistics
    md = pq.ParquetFile(published / "data/train-00000-of-00001.parquet").metadata
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [100, 70]
    col = md.row_group(0).column(0)
    assert col.path_in_schema == "image.bytes" and col.compression == "UNCOMPRESSED" and not col.is_stats_set


def test_card_passes_hub_card_parsing_and_validation(published):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(published / "README.md")
    assert card.data.pretty_name.startswith("AADB")
    hub.validate_card(published)
    builder = datasets.load_dataset_builder(str(published), "ratings")
    assert builder.info.features["rater_id"] == datasets.Value("string")


@pytest.mark.parametrize("edit, field", [
    (lambda m: m.update(license="mit-ish"), "license"),
    (lambda m: m.update(size_categories=["lots"]), "size_categories"),
    (lambda m: m.update(task_categories=["aesthetics-magic"]), "task_categories"),
    (lambda m: m.update(extra_gated_fields={"Name": "essay"}, extra_gated_prompt="x"), "extra_gated_fields"),
    (lambda m: m["dataset_info"][0]["splits"][0].update(num_examples=171), "dataset_info"),
    (lambda m: m["configs"][0]["data_files"][0].update(path="data/nothing-*"), "configs"),
])
def test_validate_card_rejects_what_the_hub_rejects(published, tmp_path, edit, field):
    import yaml

    folder = tmp_path / "copy"
    shutil.copytree(published, folder)
    meta = hub.card.read_metadata(folder / "README.md")
    edit(meta)
    body = (folder / "README.md").read_text().split("\n---\n", 1)[1]
    (folder / "README.md").write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body)
    with pytest.raises(InputError) as err:
        hub.validate_card(folder)
    assert err.value.field == field


def test_gated_card(tiny_curated, tmp_path):
    out = tmp_path / "gated"
    result = hub.publish(sources.load(tiny_curated), out, gated=True)
    assert result.gated
    meta = hub.card.read_metadata(out / "README.md")
    assert "research" in meta["extra_gated_prompt"]
    assert set(meta["extra_gated_fields"].values()) <= hub.card.HUB_GATED_FIELD_TYPES
    assert hub.plan_push(out, "org/aadb").gated


def test_republish_is_byte_identical(tiny_curated, published, tmp_path):
    again = tmp_path / "again"
    hub.publish(sources.load(tiny_curated), again, consistency_summary={
        "n_batches": 20, "n_significant": 19, "percent_significant": 95.0, "q": 0.05, "n_perm": 10000,
        "method": "mean pairwise spearman, permutation"})
    files = sorted(p.relative_to(published) for p in published.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (published / rel).read_bytes() == (again / rel).read_bytes(), rel
    # publishing the published folder itself (rows come back in another order) gives the same shards
    third = tmp_path / "third"
    hub.publish(sources.load(published), third)
    for rel in files:
        if rel.suffix == ".parquet":
            assert (published / rel).read_bytes() == (third / rel).read_bytes(), rel


def test_small_shards(tiny_curated, tmp_path):
    out = tmp_path / "sharded"
    result = hub.publish(sources.load(tiny_curated), out, shard_size_mb=0.1)  # ~100 KB: a new shard after each row group
    assert sorted(p.name for p in (out / "data").glob("train-*")) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert "ratings/train-00000-of-00001.parquet" in result.files
    back = sources.load(out)
    assert len(back.images) == 200 and len(back.ratings) == 1000
    assert back.image_bytes(back.images["image_id"].iloc[150]) == sources.load(tiny_curated).image_bytes(
        back.images["image_id"].iloc[150])
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == 170
    with pytest.raises(InputError, match="positive"):
        hub.publish(sources.load(tiny_curated), tmp_path / "never", shard_size_mb=0)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_failed_publish_leaves_the_old_folder(tiny_curated, published, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(published, out)
    before = _tree(out)
    # a fresh copy of the curated data whose 150th image file is missing
    root = tmp_path / "broken"
    shutil.copytree(tiny_curated.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["release_root"] = str(root / "release")
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    images = pd.read_parquet(root / "curated/images.parquet")
    victim = sorted(images.loc[images["split"] == "train", "image_id"])[149]
    (root / "release" / schema.RELEASE_IMAGE_DIR / victim).unlink()
    with pytest.raises(InputError, match=victim):
        hub.publish(sources.load(root / "curated"), out)
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_input_errors_name_the_problem(tiny_curated, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(tiny_curated.parent, root)
    images = pd.read_parquet(root / "curated/images.parquet")
    bad = images.copy()
    bad.loc[3, "split"] = "holdout"
    bad.to_parquet(root / "curated/images.parquet", index=False)
    with pytest.raises(InputError, match="holdout") as err:
        hub.publish(sources.load(root / "curated"), tmp_path / "o1")
    assert err.value.row == 3 and err.value.field == "split"
    bad = images.copy()
    bad.loc[7, "image_id"] = bad.loc[2, "image_id"]
    bad.to_parquet(root / "curated/images.parquet", index=False)
    with pytest.raises(InputError, match="more than once"):
        hub.publish(sources.load(root / "curated"), tmp_path / "o2")
    images.drop(columns="score").to_parquet(root / "curated/images.parquet", index=False)
    with pytest.raises(InputError) as err:
        hub.publish(sources.load(root / "curated"), tmp_path / "o3")
    assert err.value.field == "score"
    images.iloc[1:].to_parquet(root / "curated/images.parquet", index=False)
    with pytest.raises(InputError, match="refer to images not in the images table"):
        hub.publish(sources.load(root / "curated"), tmp_path / "o4")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_not_a_published_folder(tmp_path):
    (tmp_path / "README.md").write_text("# just a readme\n")
    assert not hub.is_published_folder(tmp_path)
    with pytest.raises(SourceError, match="not a curated folder"):
        sources.load(tmp_path)
    with pytest.raises(SourceError, match="not a published AADB dataset folder"):
        hub.load_published(tmp_path)


def test_synthetic_source_is_labelled(tiny_curated, tmp_path):
    root = tmp_path / "syn"
    shutil.copytree(tiny_curated.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["synthetic"] = True
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    hub.publish(sources.load(root / "curated"), tmp_path / "out")
    meta = hub.card.read_metadata(tmp_path / "out/README.md")
    assert "synthetic" in meta["tags"] and "not AADB" in meta["pretty_name"]
    assert "**This is not AADB.**" in (tmp_path / "out/README.md").read_text()


def test_cli_publish_and_dry_run(tiny_curated, tmp_path, capsys):
    from aadb_toolkit.cli import main

    summary = tmp_path / "consistency.json"
    summary.write_text(json.dumps({"n_batches": 20, "n_significant": 20, "percent_significant": 100.0,
                                   "q": 0.05, "n_perm": 1000, "method": "spearman"}))
    rc = main(["publish", "--curated", str(tiny_curated), "--out", str(tmp_path / "hubdir"),
               "--consistency-summary", str(summary), "--repo-id", "org/aadb", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "published 200 images and 1,000 ratings" in out
    assert "would upload 9 files" in out and "data/train-00000-of-00001.parquet" in out
    assert "| percentage significant | 100 |" in (tmp_path / "hubdir/README.md").read_text()
    assert 'load_dataset("org/aadb")' in (tmp_path / "hubdir/README.md").read_text()
    rc = main(["publish", "--curated", str(tiny_curated), "--out", str(tmp_path / "x"), "--push"])
    assert rc == 1 and "--repo-id" in capsys.readouterr().err


def test_nullable_votes_and_missing_licenses_round_trip(tiny_curated, tmp_path):
    root = tmp_path / "nullable"
    shutil.copytree(tiny_curated.parent, root)
    ratings = pd.read_parquet(root / "curated/ratings.parquet")
    for a in schema.ATTRIBUTES:
        ratings[a] = ratings[a].astype("Int8")
    ratings.loc[[0, 5, 17], "light"] = pd.NA  # blank attribute answers kept as missing
    ratings.to_parquet(root / "curated/ratings.parquet", index=False)
    images = pd.read_parquet(root / "curated/images.parquet")
    images["license"] = pd.Series([None] * len(images), dtype=object)  # no license known at all
    images.to_parquet(root / "curated/images.parquet", index=False)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["release_root"] = str(root / "release")
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    curated = sources.load(root / "curated")
    hub.publish(sources.load(root / "curated"), tmp_path / "out")
    back = sources.load(tmp_path / "out")
    assert back.ratings.dtypes.equals(curated.ratings.dtypes)
    assert back.images.dtypes.equals(curated.images.dtypes)
    pd.testing.assert_frame_equal(_sorted_ratings(back.ratings), _sorted_ratings(curated.ratings))
    pd.testing.assert_frame_equal(_sorted_images(back.images).drop(columns="license"),
                                  _sorted_images(curated.images).drop(columns="license"))
    assert back.images["license"].isna().all()  # missing stays missing (NaN where pandas read None)
    assert int(back.ratings["light"].isna().sum()) == 3
    ds = datasets.load_dataset(str(tmp_path / "out"), "ratings", cache_dir=str(tmp_path / "cache"))
    assert sum(int(ds[s].to_pandas()["light"].isna().sum()) for s in ds) == 3
    assert "0 a known license" in (tmp_path / "out/README.md").read_text()


def _copy_curated(src: Path, root: Path) -> Path:
    """A private copy of a curated folder and its release (manifest pointed at the copy)."""
    shutil.copytree(src.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["release_root"] = str(root / "release")
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    return root / "curated"


def test_tiny_shard_size_never_writes_an_empty_ratings_shard(tiny_curated, tmp_path):
    # 850 train ratings (~71 KB) at 0.001 MB per shard: 68 shards of 13 rows held them all, so the
    # last planned shard was empty and `datasets` failed on it ("BatchSize must be greater than 0").
    out = tmp_path / "tiny-shards"
    hub.publish(sources.load(tiny_curated), out, shard_size_mb=0.001)
    shards = sorted((out / "ratings").glob("*.parquet"))
    assert len(shards) > 3 * 3
    assert all(pq.ParquetFile(f).metadata.num_rows > 0 for f in shards)
    ratings = datasets.load_dataset(str(out), "ratings", cache_dir=str(tmp_path / "cache"))
    assert {s: ratings[s].num_rows for s in ratings} == {"train": 850, "validation": 50, "test": 100}
    back = sources.load(out)
    pd.testing.assert_frame_equal(_sorted_ratings(back.ratings), _sorted_ratings(sources.load(tiny_curated).ratings),
                                  check_exact=True)


def test_split_whose_images_have_no_ratings(tiny_curated, tmp_path):
    # Test images kept without any rating: the empty `ratings` shard written for them made
    # load_dataset(folder, "ratings") fail; the split is now left out of that config only.
    curated = _copy_curated(tiny_curated, tmp_path / "unrated")
    images = pd.read_parquet(curated / "images.parquet")
    ratings = pd.read_parquet(curated / "ratings.parquet")
    test_ids = set(images.loc[images["split"] == "test", "image_id"])
    images.loc[images["split"] == "test", "n_ratings"] = 0
    images.to_parquet(curated / "images.parquet", index=False)
    ratings[~ratings["image_id"].isin(test_ids)].to_parquet(curated / "ratings.parquet", index=False)
    out = tmp_path / "out"
    result = hub.publish(sources.load(curated), out)
    assert result.n_images == {"train": 170, "validation": 10, "test": 20}
    assert result.n_ratings == {"train": 850, "validation": 50}
    assert any("'test' has images but no ratings" in n for n in result.notes)
    per_image = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert per_image["test"].num_rows == 20 and all(r == [] for r in per_image["test"]["ratings"])
    long = datasets.load_dataset(str(out), "ratings", cache_dir=str(tmp_path / "cache"))
    assert set(long) == {"train", "validation"} and sum(long[s].num_rows for s in long) == 900
    want = sources.load(curated)
    back = sources.load(out)
    pd.testing.assert_frame_equal(_sorted_images(back.images), _sorted_images(want.images), check_exact=True)
    pd.testing.assert_frame_equal(_sorted_ratings(back.ratings), _sorted_ratings(want.ratings), check_exact=True)
    assert "| test | 20 | 0 |" in (out / "README.md").read_text()


def test_empty_tables_are_a_clear_error(tiny_curated, tmp_path):
    curated = _copy_curated(tiny_curated, tmp_path / "empty")
    ratings = pd.read_parquet(curated / "ratings.parquet")
    ratings.iloc[:0].to_parquet(curated / "ratings.parquet", index=False)
    with pytest.raises(InputError, match="ratings table is empty"):
        hub.publish(sources.load(curated), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_publish_refuses_an_out_folder_it_would_destroy(tiny_curated, published, tmp_path):
    # `aadb publish --curated DIR/curated --out DIR` swapped a published folder in place of DIR:
    # the curated tables, the release images and everything else in DIR were deleted.
    root = tmp_path / "work"
    curated = _copy_curated(tiny_curated, root)
    before = _tree(root)
    for out, match in ((root, "contains the data source"), (curated, "not a published AADB dataset"),
                       (root / "release", "not a published AADB dataset")):
        with pytest.raises(InputError, match=match) as err:
            hub.publish(sources.load(curated), out)
        assert err.value.field == "--out"
    assert _tree(root) == before
    # a clone of a published repository: its .git would be lost
    clone = tmp_path / "clone"
    shutil.copytree(published, clone)
    (clone / ".git").mkdir()
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    with pytest.raises(InputError, match=r"would delete \['.git'\]"):
        hub.publish(sources.load(curated), clone)
    assert (clone / ".git" / "HEAD").is_file()
    # republishing over a published folder, or a published folder onto itself, is fine
    again = tmp_path / "again"
    shutil.copytree(published, again)
    hub.publish(sources.load(curated), again)
    hub.publish(sources.load(again), again)
    assert sources.load(again).images.shape == (200, len(schema.IMAGE_COLUMNS))
    (tmp_path / "empty").mkdir()
    hub.publish(sources.load(curated), tmp_path / "empty")
    assert hub.is_published_folder(tmp_path / "empty")


def test_card_parses_with_the_readers_of_datasets_and_huggingface_hub(published, tmp_path):
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.load(published / "README.md")
    assert isinstance(card.data, DatasetCardData)
    assert card.data.to_dict() == hub.card.read_metadata(published / "README.md")
    assert card.data.license == "other" and card.data.task_categories == ["image-classification", "tabular-regression"]
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert set(infos) == set(configs) == {"default", "ratings"}
    assert {s: infos["ratings"].splits[s].num_examples for s in infos["ratings"].splits} == {
        "train": 850, "validation": 50, "test": 100}
    for config in ("default", "ratings"):
        builder = datasets.load_dataset_builder(str(published), config, cache_dir=str(tmp_path / "cache"))
        assert builder.info.features == infos[config].features
    body = card.text
    for heading in ("## Collection protocol", "## Attributes", "## Rater anonymization", "## Splits",
                    "## Rater consistency", "## Licensing", "## Known limitations", "## Citation"):
        assert heading in body, heading
    assert all(a in body for a in schema.ATTRIBUTES)


def test_a_missing_shard_is_an_error_not_a_smaller_dataset(tiny_curated, tmp_path):
    # Deleting one of two train shards (or every test shard) used to load silently with fewer images.
    out = tmp_path / "pub"
    hub.publish(sources.load(tiny_curated), out, shard_size_mb=0.1)
    (out / "data/train-00001-of-00002.parquet").unlink()
    with pytest.raises(SourceError, match="'train' declares '170' rows but its 1 shard"):
        sources.load(out)
    hub.publish(sources.load(tiny_curated), out, shard_size_mb=0.1)
    for f in (out / "ratings").glob("test-*"):
        f.unlink()
    with pytest.raises(SourceError, match="'ratings' split 'test' declares shards that are missing"):
        sources.load(out)


def test_republishing_a_synthetic_hub_repo_keeps_the_synthetic_label(tiny_curated, tmp_path, monkeypatch):
    # The source was checked for "synthetic" by its name ("org/syn", no such folder), not by the
    # downloaded snapshot: the republished card called the synthetic data AADB.
    import huggingface_hub

    curated = _copy_curated(tiny_curated, tmp_path / "syn")
    manifest = json.loads((curated / "manifest.json").read_text())
    manifest["synthetic"] = True
    (curated / "manifest.json").write_text(json.dumps(manifest))
    snapshot = tmp_path / "snapshot"
    hub.publish(sources.load(curated), snapshot)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(snapshot))
    monkeypatch.chdir(tmp_path)
    hub.publish(sources.load("org/syn"), tmp_path / "again")
    meta = hub.card.read_metadata(tmp_path / "again/README.md")
    assert "synthetic" in meta["tags"] and "not AADB" in meta["pretty_name"]


def test_card_escapes_text_from_the_consistency_summary_and_checks_the_repo_id(tiny_curated, tmp_path):
    result = hub.publish(sources.load(tiny_curated), tmp_path / "pub", consistency_summary={"method": "<script>x</script>"})
    card = (result.out / "README.md").read_text()
    assert "\\<script>" in card and "<script>" not in card.replace("\\<script>", "")
    with pytest.raises(InputError, match="ORG/NAME"):
        hub.publish(sources.load(tiny_curated), tmp_path / "pub2", repo_id='a/b")\nimport os')


def test_publish_refuses_an_out_folder_inside_its_data_source(tiny_curated, published, tmp_path):
    """A folder inside the data (a curated folder without the toolkit's marker, as older versions
    wrote them, or a published folder) would change the input; refused before anything is written."""
    curated = _copy_curated(tiny_curated, tmp_path / "work")
    again = tmp_path / "again"
    shutil.copytree(published, again)
    for source in (curated, again):
        before = _tree(source)
        with pytest.raises(InputError, match="inside the data source") as err:
            hub.publish(sources.load(source), source / "pub")
        assert err.value.field == "--out" and _tree(source) == before


def test_a_published_folder_whose_splits_do_not_add_up_is_refused(published, tmp_path):
    """Review 2026-12-04: a card declaring a split outside train/validation/test had that split's
    shards ignored without a word, and a shard's rows were taken with whatever split they named,
    whatever split the card filed the shard under."""
    other = tmp_path / "other"
    shutil.copytree(published, other)
    readme = other / "README.md"
    readme.write_text(readme.read_text().replace("- split: validation", "- split: holdout"))
    with pytest.raises(SourceError, match="holdout"):
        sources.load(other)
    swapped = tmp_path / "swapped"
    shutil.copytree(published, swapped)
    data = swapped / "data"
    test, val = next(data.glob("test-*.parquet")), next(data.glob("validation-*.parquet"))
    tmp = data / "x.parquet"
    test.rename(tmp)
    val.rename(test)
    tmp.rename(val)
    with pytest.raises(SourceError, match="split"):
        sources.load(swapped)


@pytest.mark.parametrize("content, why", [(b"\xff\xfe{}", "not UTF-8"), (b"[" * 100_000, "nested too deeply"),
                                          (b"[]", "expected a JSON object"), (b"{not json", "not JSON")],
                         ids=["not_utf8", "deep", "array", "not_json"])
def test_cli_publish_refuses_a_consistency_summary_it_cannot_read(tiny_curated, tmp_path, capsys, content, why):
    """A --consistency-summary that is not UTF-8, nested deeper than the JSON reader follows, or
    no JSON object is a one-line error naming the file, before anything is written."""
    from aadb_toolkit.cli import main

    summary = tmp_path / "consistency.json"
    summary.write_bytes(content)
    rc = main(["publish", "--data", str(tiny_curated), "--out", str(tmp_path / "pub"),
               "--consistency-summary", str(summary), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith(f"aadb publish: error: {summary}: ") and why in err, err
    assert not (tmp_path / "pub").exists()


def test_dtypes_metadata_nested_too_deeply_is_a_clear_error(published, tmp_path):
    """Review: a shard whose recorded pandas dtypes are nested deeper than the JSON reader follows
    was a RecursionError (an internal error in every command that loads the folder)."""
    from aadb_toolkit.hub import layout

    bad = tmp_path / "bad"
    shutil.copytree(published, bad)
    shard = next((bad / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata,
                                                  layout.DTYPES_METADATA_KEY: b"[" * 100_000}), shard)
    with pytest.raises(SourceError, match="nested too deeply") as exc:
        sources.load(bad)
    assert str(shard) in str(exc.value) and layout.DTYPES_METADATA_KEY.decode() in str(exc.value)


@pytest.mark.parametrize("value", ['"<script>card text quoted in full, far beyond 32 characters</script>"', "-5", "1.5",
                                   "true", "[1, 2]"], ids=["long_text", "negative", "fraction", "bool", "list"])
def test_a_card_whose_num_examples_is_no_count_is_refused_without_quoting_it(published, tmp_path, value):
    """Review (safety 4): a card's num_examples was compared as whatever it held and quoted in full
    in the error; it must be a non-negative integer, checked with the card's other shapes."""
    import re

    bad = tmp_path / "bad"
    shutil.copytree(published, bad)
    readme = bad / "README.md"
    readme.write_text(re.sub(r"num_examples: \d+\n", f"num_examples: {value}\n", readme.read_text(), count=1))
    with pytest.raises(SourceError, match="num_examples") as exc:
        sources.load(bad)
    message = str(exc.value)
    assert str(readme) in message and "non-negative integer" in message
    assert "far beyond" not in message and "<script>" not in message
