"""The long-tail workload, calibrated to paper Table 6 at full size, and the HIT structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import paper, schema
from aadb_toolkit.simulate import sample_assignment_plan


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_size_workload_matches_table6(seed):
    plan = sample_assignment_plan(10_000, seed)  # no images drawn
    n_images = plan.workers["n_images"]
    for threshold, (n_workers, _rho) in paper.TABLE6_HUMAN.items():
        assert abs(int((n_images > threshold).sum()) - n_workers) <= 2, threshold
    assert (plan.workers["n_hits"] <= 2).mean() >= 0.45  # most do one or two batches
    assert n_images.max() <= 5_000 and n_images.sum() == 50_000


def test_mid_size_workload_keeps_the_shape():
    plan = sample_assignment_plan(4_000, 3)
    w = plan.workers
    assert len(w) == 76  # 19 per 1,000 images
    share_100, share_200 = (w["n_images"] > 100).mean(), (w["n_images"] > 200).mean()
    assert abs(share_100 - 65 / 190) < 0.05 and abs(share_200 - 42 / 190) < 0.05
    assert (w["n_hits"] == 1).mean() > 0.25
    top = np.sort(w["n_images"].to_numpy())[::-1]
    assert top[:8].sum() > 0.4 * top.sum()  # a few workers do most of the work


@pytest.mark.parametrize("n_images", [10, 20, 50, 300, 2_000])
def test_every_hit_has_five_distinct_workers_and_counts_add_up(n_images):
    plan = sample_assignment_plan(n_images, 4)
    hw = plan.hit_workers
    assert hw.shape == (n_images // 10, schema.RATERS_PER_BATCH)
    assert all(len(set(row)) == schema.RATERS_PER_BATCH for row in hw)
    counts = np.bincount(hw.ravel(), minlength=len(plan.workers))
    assert (counts == plan.workers["n_hits"].to_numpy()).all()
    assert (counts >= 1).all() and plan.workers["worker_id"].is_unique


def test_the_release_follows_the_plan(clean_release):
    plan = sample_assignment_plan(200, 5)
    workers = pd.read_parquet(clean_release.truth_dir / "workers.parquet")
    merged = workers.merge(plan.workers, on="worker_id", suffixes=("", "_plan"))
    assert len(merged) == len(plan.workers) == len(workers)
    assert (merged["n_hits"] == merged["n_hits_plan"]).all()
    ratings = pd.read_parquet(clean_release.truth_dir / "ratings.parquet")
    per_worker = ratings.groupby("worker_id").size()
    assert (per_worker.reindex(workers["worker_id"]).to_numpy() == workers["n_images"].to_numpy()).all()
    assert workers["is_random"].sum() == round(0.2 * len(workers))
