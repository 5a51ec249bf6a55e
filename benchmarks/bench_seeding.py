"""Cost of seeding torch at every training step on the CPU: the trainer as it is (``seed_torch``,
the CPU generator alone) against the named baseline ``torch.manual_seed`` at every step (which also
queues a lazy CUDA, MPS and XPU seed, each with a formatted stack trace), in the same process, on
the recovery suite's kind of run: a Reg+Rank head on frozen quarter-width AlexNet features, one
thread. Both give the same weights (checked: the CPU generator is seeded to the same state).

    python benchmarks/bench_seeding.py                 # 400-image synthetic release, 600 steps, 3 rounds
    python benchmarks/bench_seeding.py --steps 300 --rounds 5

The feature cache is built by an untimed first run; then each round trains once with each seeding,
alternating which goes first. Reports the median seconds per run, ms per step and their ratio. The
release is synthetic (aadb simulate): a test instrument, not AADB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import recovery  # the suite's release and Reg+Rank recipe

from aadb_toolkit.models import config_from_dict, train, trainer


def _old_seeding(seed: int, device: str) -> None:
    """The baseline: ``torch.manual_seed`` at every step, whatever the device."""
    torch.manual_seed(seed)


def _timed_run(cfg, data, out: Path, cache: Path) -> tuple[float, str]:
    start = time.perf_counter()
    with warnings.catch_warnings():  # a random frozen backbone is enough to time the head's steps
        warnings.filterwarnings("ignore", message="no --init-weights")
        res = train(cfg, data, out, progress=False, resume=False, cache_dir=cache)
    return time.perf_counter() - start, res.weights_sha256


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400, help="images of the synthetic release (default 400)")
    ap.add_argument("--steps", type=int, default=600, help="training steps per run (default 600, the quick suite's)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds, each one run per seeding (default 3)")
    args = ap.parse_args(argv)
    size = replace(recovery.QUICK, images=args.images, steps=args.steps)
    with tempfile.TemporaryDirectory(prefix="aadb_bench_seeding_") as tmp:
        work = Path(tmp)
        rel = recovery.make_release("planted_reliability", 1, size, work)
        cfg = config_from_dict(recovery.base_config(size, 1), source="bench_seeding")
        current = trainer.seed_torch
        seedings = {"torch.manual_seed per step (baseline)": _old_seeding, "seed_torch per step (trainer)": current}
        _timed_run(cfg, rel.data, work / "warm", work / "cache")  # builds the feature cache, untimed
        times: dict[str, list[float]] = {name: [] for name in seedings}
        digests: set[str] = set()
        for r in range(args.rounds):
            for name in (list(seedings) if r % 2 == 0 else list(reversed(seedings))):
                trainer.seed_torch = seedings[name]
                try:
                    sec, digest = _timed_run(cfg, rel.data, work / f"run_{r}_{len(digests)}_{name[:4]}", work / "cache")
                finally:
                    trainer.seed_torch = current
                times[name].append(sec)
                digests.add(digest)
    base, ours = (statistics.median(t) for t in times.values())
    print(f"{args.images}-image synthetic release, {args.steps} steps, {args.rounds} rounds, load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"  {name}: median {med:.2f} s per run, {1000 * med / args.steps:.2f} ms per step")
    print(f"  ratio baseline / trainer: {base / ours:.2f}x; same weights: {len(digests) == 1}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
