"""CPU cost of a training batch's crops: ``CropSampler.crops`` (the crop windows of a uint8 cache,
mirrored where flipped, normalised into one float buffer) against the named baseline, the code
it replaced on 2026-12-03 (one index per pixel, then ``(x - mean) / std`` on a permuted copy), on
the same cache and offsets in the same process. Both give the same crops bit for bit (checked
here before timing). Also times a whole fine-tuning step (crops, forward, backward, the trainer's AdamW) with
each, so the ratio says what a training step gains.

    python benchmarks/bench_crops.py                     # the recovery suite's: 72-px cache, 64-px crops, 64 per batch
    python benchmarks/bench_crops.py --warp 256 --crop 227 --batch 16 --threads 2   # the paper's sizes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from aadb_toolkit.models import build_model, config_from_dict
from aadb_toolkit.models.archs import IMAGENET_MEAN, IMAGENET_STD
from aadb_toolkit.models.optim import build_optimizer
from aadb_toolkit.models.pipeline import CropSampler

sys.path.insert(0, str(Path(__file__).parent))  # the sibling benchmark's timer
from bench_optimizer import seconds_per_call


def baseline_crops(s: CropSampler, idx: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor,
                   fl: torch.Tensor) -> torch.Tensor:
    """The baseline: ``CropSampler.crops`` before 2026-12-03 (per-pixel indexing, then normalise)."""
    rows = oy[:, None] + s.arange
    cols = torch.where(fl[:, None], ox[:, None] + s.crop - 1 - s.arange, ox[:, None] + s.arange)
    x = s.pixels[idx[:, None, None], rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).float()
    mean, std = s._stats(x.device)
    return ((x - mean) / std).contiguous()


def measure(images: int, warp: int, crop: int, batch: int, width: float, repeats: int) -> dict:
    """ms per batch of crops and per whole fine-tuning step, baseline and ours."""
    g = torch.Generator().manual_seed(0)
    sampler = CropSampler(torch.randint(0, 256, (images, warp, warp, 3), dtype=torch.uint8, generator=g),
                          crop, IMAGENET_MEAN, IMAGENET_STD)
    idx = torch.randint(0, images, (batch,), generator=g)
    oy, ox = (torch.randint(0, warp - crop + 1, (batch,), generator=g) for _ in range(2))
    fl = torch.rand(batch, generator=g) < 0.5
    if not torch.equal(baseline_crops(sampler, idx, oy, ox, fl), sampler.crops(idx, oy, ox, fl)):
        raise SystemExit("the crops differ from the baseline's")
    net = build_model("regression", width=width, dropout=0.0)
    opt = build_optimizer(net, config_from_dict({"name": "bench", "optim": {"optimizer": "adamw", "lr": 1e-5}}).optim)
    makers = {"baseline (per-pixel indexing)": lambda: baseline_crops(sampler, idx, oy, ox, fl),
              "CropSampler.crops": lambda: sampler.crops(idx, oy, ox, fl)}
    rows = []
    for name, make in makers.items():
        def step(make=make):
            opt.zero_grad()
            net(make())["score"].pow(2).mean().backward()
            opt.step()
        rows.append({"crops": name, "crops_ms": 1000 * seconds_per_call(make, repeats * 5),
                     "train_step_ms": 1000 * seconds_per_call(step, repeats)})
    return {"rows": rows, "crops_ratio": rows[0]["crops_ms"] / rows[1]["crops_ms"],
            "train_step_ratio": rows[0]["train_step_ms"] / rows[1]["train_step_ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=800, help="images in the cache (default 800)")
    ap.add_argument("--warp", type=int, default=72, help="cached image size in pixels (default 72)")
    ap.add_argument("--crop", type=int, default=64, help="crop size in pixels (default 64)")
    ap.add_argument("--batch", type=int, default=64, help="crops per batch (default 64: 32 pairs)")
    ap.add_argument("--width", type=float, default=0.25, help="AlexNet width multiplier of the step (default 0.25)")
    ap.add_argument("--repeats", type=int, default=30, help="timed training steps of each (crops: 5 times as many)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = measure(args.images, args.warp, args.crop, args.batch, args.width, args.repeats)
    print(json.dumps({"threads": args.threads, "load_average": os.getloadavg()[0], **vars(args), **out}, indent=2))


if __name__ == "__main__":
    main()
