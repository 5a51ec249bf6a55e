"""Splits: the official one from the label files, otherwise a deterministic split by whole batches
(HITs) in the paper's proportions (8,500 / 500 / 1,000 of 10,000), so that all five raters of a
batch and its ten images stay on one side, and the same release always splits the same way."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .. import schema


def batch_order(batch_ids: list[str]) -> list[str]:
    """Batches sorted by the SHA-256 of their id: a fixed pseudo-random order that depends on the
    ids only (not on row order, run or machine)."""
    return sorted(set(batch_ids), key=lambda b: (hashlib.sha256(b.encode("utf-8")).hexdigest(), b))


def split_sizes(n_batches: int) -> dict[str, int]:
    """Batches per split in the paper's proportions (largest remainder); with 3 or more batches
    every split gets at least one."""
    total = sum(schema.PAPER_SPLIT_SIZES.values())
    exact = {s: n_batches * schema.PAPER_SPLIT_SIZES[s] / total for s in schema.SPLITS}
    sizes = {s: int(np.floor(v)) for s, v in exact.items()}
    rest = n_batches - sum(sizes.values())
    # Remainders go to the largest fractional parts; ties to the smaller (later) splits.
    order = sorted(schema.SPLITS, key=lambda s: (-(exact[s] - sizes[s]), -schema.SPLITS.index(s)))
    for s in order[:rest]:
        sizes[s] += 1
    if n_batches >= len(schema.SPLITS):
        for s in schema.SPLITS[1:]:
            if sizes[s] == 0:
                sizes[s] = 1
                sizes["train"] -= 1
    return sizes


def batch_split(image_batches: pd.DataFrame) -> tuple[pd.Series, int]:
    """image_id → split from (image_id, batch_id) pairs; test batches come first in hash order,
    then validation, then train. An image seen in several batches follows its first batch in that
    order. Returns the mapping and the number of such multi-batch images."""
    order = batch_order(image_batches["batch_id"].astype(str).tolist())
    sizes = split_sizes(len(order))
    split_of_batch = {}
    pos = 0
    for s in ("test", "validation", "train"):
        for b in order[pos:pos + sizes[s]]:
            split_of_batch[b] = s
        pos += sizes[s]
    rank = {b: i for i, b in enumerate(order)}
    pairs = image_batches[["image_id", "batch_id"]].drop_duplicates().copy()
    pairs["rank"] = pairs["batch_id"].map(rank)
    n_multi = int(pairs["image_id"].value_counts().gt(1).sum())
    first = pairs.sort_values(["rank"], kind="stable").drop_duplicates("image_id")
    return pd.Series(first["batch_id"].map(split_of_batch).to_numpy(), index=first["image_id"].to_numpy(),
                     dtype=object), n_multi
