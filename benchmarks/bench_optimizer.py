"""CPU cost of the AdamW step: the toolkit's optimiser (``build_optimizer``: torch's fused kernel
where the device has one) against torch's default for CPU tensors (the per-tensor loop,
``foreach=False``), on the same network's parameters and gradients, in the same process. Also times
a whole fine-tuning step (forward, backward, step on a batch of crops) with each, so the ratio says
what the trainer gains, not only the optimiser.

    python benchmarks/bench_optimizer.py                    # AlexNet width 1/4 (the recovery suite's), 1 thread
    python benchmarks/bench_optimizer.py --width 1 --batch 16 --crop 227 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from aadb_toolkit.models import build_model, config_from_dict
from aadb_toolkit.models.optim import build_optimizer


def _optimizers(net: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
    """The toolkit's AdamW and the same parameter groups with torch's CPU default (the loop)."""
    o = config_from_dict({"name": "bench", "optim": {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 1e-4}}).optim
    loop = build_optimizer(net, o)
    for g in loop.param_groups:  # the same groups, stepped by torch's per-tensor loop
        g.update(fused=None, foreach=False)
    return {"loop (torch's CPU default)": loop, "build_optimizer": build_optimizer(net, o)}


def seconds_per_call(fn, repeats: int) -> float:
    """Mean seconds per call of ``fn`` over ``repeats`` calls, after one untimed call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measure(width: float, batch: int, crop: int, repeats: int) -> list[dict]:
    """ms per optimiser step and per whole training step, for each optimiser."""
    torch.manual_seed(0)
    net = build_model("regression", width=width, dropout=0.0)
    x = torch.randn(batch, 3, crop, crop)
    for p in net.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    rows = []
    for name, opt in _optimizers(net).items():
        def whole(opt=opt):
            opt.zero_grad()
            net(x)["score"].pow(2).mean().backward()
            opt.step()
        rows.append({"optimizer": name, "step_ms": 1000 * seconds_per_call(opt.step, repeats),
                     "train_step_ms": 1000 * seconds_per_call(whole, repeats)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=0.25, help="AlexNet width multiplier (default 0.25)")
    ap.add_argument("--batch", type=int, default=64, help="images per training step (default 64: 32 pairs)")
    ap.add_argument("--crop", type=int, default=64, help="crop size in pixels (default 64)")
    ap.add_argument("--repeats", type=int, default=30, help="timed repeats of each (default 30)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = measure(args.width, args.batch, args.crop, args.repeats)
    params = sum(p.numel() for p in build_model("regression", width=args.width).parameters())
    base, ours = rows
    print(json.dumps({"parameters": params, "threads": args.threads, "load_average": os.getloadavg()[0],
                      "rows": rows, "step_ratio": base["step_ms"] / ours["step_ms"],
                      "train_step_ratio": base["train_step_ms"] / ours["train_step_ms"]}, indent=2))


if __name__ == "__main__":
    main()
