"""CPU cost of AlexNet's fc6 on a small pool5 map: the top layers as they are (``AlexNet.top``: on
a map smaller than 6×6, the 6×6 average pooling folded into fc6's weights) against the named
baseline, pooling first and multiplying all 36 pooled positions per channel (torchvision's AlexNet,
and this toolkit's before 2026-12-03), on the same network and inputs in the same process.

At the recovery suite's sizes (64-px crops) pool5 is 1×1, so the baseline's fc6 multiplies 36 copies
of each value. Times a whole fine-tuning step (forward, backward, the trainer's AdamW) and an
eval-mode feature pass with each, and checks that both give the same fc7 features to float
rounding. Inputs are random (the step's cost does not depend on the pixels).

    python benchmarks/bench_fc6.py                          # the recovery suite's: 64-px crops, 64 per batch, 1 thread
    python benchmarks/bench_fc6.py --threads 2
    python benchmarks/bench_fc6.py --crop 227 --width 1 --batch 16 --repeats 5   # the paper's sizes: 6×6, nothing folded
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from aadb_toolkit.models import build_model, config_from_dict
from aadb_toolkit.models.archs.alexnet_arch import POOL_SIZE, top_layers
from aadb_toolkit.models.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).parent))  # the sibling benchmark's timer
from bench_optimizer import seconds_per_call

BASELINE, OURS = "pool, then fc6 on 36 positions (baseline)", "AlexNet.top (pooling folded into fc6)"


def baseline_top(backbone: torch.nn.Module):
    """The baseline's top layers: pool5 pooled to 6×6 and flattened, then fc6 and fc7."""
    def top(m: torch.Tensor) -> torch.Tensor:
        return top_layers(backbone.classifier, torch.flatten(torch.nn.functional.adaptive_avg_pool2d(m, POOL_SIZE), 1))
    return top


def measure(crop: int, batch: int, width: float, repeats: int) -> dict:
    """ms per fine-tuning step and per eval-mode feature pass, baseline and ours, and the largest
    difference of their fc7 features relative to the features' scale."""
    torch.manual_seed(0)
    net = build_model("regression", width=width, dropout=0.0)
    opt = build_optimizer(net, config_from_dict({"name": "bench", "optim": {"optimizer": "adamw", "lr": 1e-5}}).optim)
    x, xs = torch.randn(batch, 3, crop, crop), torch.randn(4 * batch, 3, crop, crop)
    tops = {BASELINE: baseline_top(net.backbone), OURS: net.backbone.top}
    with torch.no_grad():
        feats = {name: top(net.backbone.trunk(xs)) for name, top in tops.items()}
    rel_diff = float((feats[BASELINE] - feats[OURS]).abs().max() / feats[BASELINE].abs().max())
    rows = []
    for name, top in tops.items():
        net.backbone.top = top  # an instance attribute: Network.top calls it

        def step() -> None:
            opt.zero_grad()
            net(x)["score"].pow(2).mean().backward()
            opt.step()

        def features() -> None:
            with torch.no_grad():
                net.backbone.fc7(xs)

        net.train()
        step_ms = 1000 * seconds_per_call(step, repeats)
        net.eval()
        rows.append({"top": name, "train_step_ms": step_ms, "features_ms": 1000 * seconds_per_call(features, repeats)})
        del net.backbone.top
    pool5 = tuple(net.backbone.trunk(x[:1]).shape[-2:])
    return {"pool5": pool5, "rows": rows, "fc7_max_rel_diff": rel_diff,
            "train_step_ratio": rows[0]["train_step_ms"] / rows[1]["train_step_ms"],
            "features_ratio": rows[0]["features_ms"] / rows[1]["features_ms"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crop", type=int, default=64, help="input size in pixels (default 64, the recovery suite's)")
    ap.add_argument("--batch", type=int, default=64, help="images per training step (default 64: 32 pairs); "
                    "the feature pass takes 4 times as many")
    ap.add_argument("--width", type=float, default=0.25, help="AlexNet width multiplier (default 0.25)")
    ap.add_argument("--repeats", type=int, default=30, help="timed calls of each (default 30)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = measure(args.crop, args.batch, args.width, args.repeats)
    print(json.dumps({"load_average": os.getloadavg()[0], **vars(args), **out}, indent=2))
    return 0 if out["fc7_max_rel_diff"] < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
