"""benchmarks/bench_crops.py: its baseline is the replaced code, which gives the same crops as
``CropSampler.crops``, and a tiny measurement runs end to end."""

from __future__ import annotations

import torch
from benchmark_modules import benchmark_module

from aadb_toolkit.models.pipeline import CropSampler

B = benchmark_module("bench_crops")


def test_the_baseline_and_the_sampler_give_the_same_crops():
    g = torch.Generator().manual_seed(3)
    sampler = CropSampler(torch.randint(0, 256, (6, 20, 20, 3), dtype=torch.uint8, generator=g), 16,
                          (0.4, 0.5, 0.6), (0.2, 0.3, 0.25))
    idx = torch.tensor([5, 0, 5, 2])
    oy, ox, fl = torch.tensor([0, 4, 2, 1]), torch.tensor([4, 0, 1, 3]), torch.tensor([False, True, True, False])
    assert torch.equal(B.baseline_crops(sampler, idx, oy, ox, fl), sampler.crops(idx, oy, ox, fl))


def test_a_tiny_measurement_reports_both_rows_and_their_ratios():
    out = B.measure(images=4, warp=72, crop=64, batch=2, width=0.25, repeats=1)
    assert [r["crops"] for r in out["rows"]] == ["baseline (per-pixel indexing)", "CropSampler.crops"]
    assert out["crops_ratio"] > 0 and out["train_step_ratio"] > 0
