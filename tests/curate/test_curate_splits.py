"""Splits: official from the label files, otherwise deterministic by whole batches in the paper's
proportions, independent of row order."""

from __future__ import annotations

import pandas as pd
import pytest
from curate_release_writer import build_release

from aadb_toolkit import schema
from aadb_toolkit.curate import curate
from aadb_toolkit.curate._splits import batch_order, batch_split, split_sizes


@pytest.mark.parametrize("n, expected", [(100, (85, 5, 10)), (1000, (850, 50, 100)), (20, (17, 1, 2)),
                                         (10, (8, 1, 1)), (3, (1, 1, 1)), (1, (1, 0, 0)), (0, (0, 0, 0))])
def test_split_sizes_follow_the_paper(n, expected):
    sizes = split_sizes(n)
    assert (sizes["train"], sizes["validation"], sizes["test"]) == expected
    assert sum(sizes.values()) == n


def test_batch_order_depends_on_ids_only():
    ids = [f"3HIT{i:05d}" for i in range(50)]
    assert batch_order(ids) == batch_order(list(reversed(ids))) == batch_order(ids + ids[:5])
    assert batch_order(ids) != sorted(ids)


def test_batch_split_keeps_batches_whole():
    pairs = pd.DataFrame({"batch_id": [f"H{b}" for b in range(20) for _ in range(10)],
                          "image_id": [f"img{b}_{i}" for b in range(20) for i in range(10)]})
    split, n_multi = batch_split(pairs)
    assert n_multi == 0
    per_batch = pairs.assign(split=pairs["image_id"].map(split)).groupby("batch_id")["split"].nunique()
    assert (per_batch == 1).all()
    assert split.value_counts().to_dict() == {"train": 170, "test": 20, "validation": 10}
    shuffled, _ = batch_split(pairs.sample(frac=1, random_state=3))
    assert shuffled.sort_index().equals(split.sort_index())


def test_curated_split_without_labels_is_deterministic(tmp_path, key):
    rel = build_release(20, labels=False)
    root = rel.write(tmp_path / "r")
    curate(root, tmp_path / "a", key=key, workers=1)
    rel.rows.reverse()  # the same release with its rows in another order
    rel.write(tmp_path / "r2")
    curate(tmp_path / "r2", tmp_path / "b", key=key, workers=1)
    a = pd.read_parquet(tmp_path / "a" / schema.CURATED_IMAGES).set_index("image_id")["split"]
    b = pd.read_parquet(tmp_path / "b" / schema.CURATED_IMAGES).set_index("image_id")["split"]
    assert a.equals(b)
    assert a.value_counts().to_dict() == {"train": 170, "test": 20, "validation": 10}


def test_official_split_from_label_files(tmp_path, key):
    splits = ["test", "test", "train", "validation"]
    root = build_release(4, label_splits=splits).write(tmp_path / "r")
    result = curate(root, tmp_path / "c", key=key, workers=1)
    images = pd.read_parquet(tmp_path / "c" / schema.CURATED_IMAGES)
    assert result.split_method == "official"
    assert images["split"].value_counts().to_dict() == {"test": 20, "train": 10, "validation": 10}
    hits = pd.read_parquet(tmp_path / "c" / schema.CURATED_RATINGS)[["image_id", "batch_id"]].drop_duplicates()
    got = hits.merge(images[["image_id", "split"]]).groupby("batch_id")["split"].first().tolist()
    assert got == splits
