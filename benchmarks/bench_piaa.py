"""Benchmark: the reference personalizer's fit of every piaa episode (k = 10 and 100, 10 episodes
per qualifying rater) on a full-size workload (10,000 images in 1,000 HITs of 10 images × 5 raters,
85/5/10 % train/validation/test by HIT, heavy-tailed rater workloads), with random fc7-like features,
against the named baseline: a Python loop over episodes calling ``numpy.linalg.lstsq`` on the
augmented ridge system (timed on a subset of episodes and extrapolated). Both give the same
predictions (checked on the subset).

    python benchmarks/bench_piaa.py                          # full size, fc7 of a width-0.25 AlexNet
    python benchmarks/bench_piaa.py --dim 4096               # fc7 of the full-width AlexNet
    python benchmarks/bench_piaa.py --images 500 --dim 64 --loop-episodes 5 --repeat 1   # quick
    python benchmarks/bench_piaa.py --data CURATED           # the episodes of a real source
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa.personalize import fit_residual_ridge, loop_lstsq_baseline
from aadb_toolkit.sources import AADBData

#: The ridge penalty both sides of the comparison use (a fixed multiple of the features' spread:
#: the timed work is the solve, not the choice of α on the train split).
ALPHA = 1.0


def workload(n_images: int, n_raters: int, seed: int) -> AADBData:
    """A ratings table with AADB's design (no image bytes): HITs of 10 images rated by 5 raters."""
    rng = np.random.default_rng(seed)
    n_hits = n_images // 10
    weight = rng.pareto(1.2, n_raters) + 0.05
    weight /= weight.sum()
    ids = np.array([f"img{i:06d}" for i in range(n_hits * 10)], dtype=object)
    u = rng.random(n_hits)
    split = np.where(u < 0.85, "train", np.where(u < 0.90, "validation", "test"))
    raters = np.stack([rng.choice(n_raters, 5, replace=False, p=weight) for _ in range(n_hits)])
    image = np.repeat(np.arange(n_hits * 10), 5)
    rater = np.tile(raters, (1, 10)).reshape(-1)  # each HIT's 5 raters on each of its 10 images
    ratings = pd.DataFrame({"batch_id": [f"HIT{h:05d}" for h in image // 10],
                            "rater_id": [f"R{r:04d}" for r in rater], "image_id": ids[image],
                            "score": rng.integers(1, 6, image.size).astype(float)})
    images = pd.DataFrame({"image_id": ids, "split": np.repeat(split, 10)})
    return AADBData(images=images, ratings=ratings, origin="benchmark workload",
                    read_image_bytes=lambda image_id: b"")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000, help="images in the workload (default: AADB size)")
    ap.add_argument("--raters", type=int, default=190, help="raters in the workload (default: AADB's 190)")
    ap.add_argument("--data", help="use the episodes of this source instead of the generated workload")
    ap.add_argument("--dim", type=int, default=1024, help="feature width (fc7 of width-0.25 AlexNet: 1024)")
    ap.add_argument("--loop-episodes", type=int, default=40, help="episodes timed for the loop baseline")
    ap.add_argument("--repeat", type=int, default=3, help="repeat the vectorised fit; report best and median")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    if args.data:
        from aadb_toolkit import sources

        data = sources.load(args.data)
    else:
        data = workload(args.images, args.raters, args.seed)
    t0 = time.perf_counter()
    table = ep.make_episodes(data)
    t_episodes = time.perf_counter() - t0
    ids = sorted(table["image_id"].unique())
    index = pd.Index(ids)
    rng = np.random.default_rng(args.seed + 1)
    feats = np.maximum(rng.normal(size=(len(ids), args.dim)), 0).astype(np.float32)  # ReLU-like
    generic = rng.random(len(ids))
    summary = ep.summarize(table)
    first = table[table.groupby(["k", "rater_id", "episode"], sort=False).ngroup().to_numpy() == 0]
    fit_residual_ridge(feats, generic, first.reset_index(drop=True), index, alpha=ALPHA)  # warm-up: torch's first call is slow
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fast = fit_residual_ridge(feats, generic, table, index, alpha=ALPHA)
        times.append(time.perf_counter() - t0)
    keys = table[["k", "rater_id", "episode"]].drop_duplicates()
    n_eps = len(keys)
    # the loop baseline on a subset of episodes, spread over both k
    pick = keys.iloc[np.linspace(0, n_eps - 1, min(args.loop_episodes, n_eps)).astype(int)]
    sub = table.merge(pick, on=["k", "rater_id", "episode"]).reset_index(drop=True)
    t0 = time.perf_counter()
    slow = loop_lstsq_baseline(feats, generic, sub, index, alpha=ALPHA)
    t_loop = (time.perf_counter() - t0) * n_eps / len(pick)
    check = fit_residual_ridge(feats, generic, sub, index, alpha=ALPHA)
    err = float(np.max(np.abs(check - slow))) if slow.size else 0.0
    print(f"workload: {len(data.images):,} images, {len(data.ratings):,} ratings; episodes drawn in {t_episodes:.2f} s")
    print(summary.to_string(index=False))
    print(f"features: {len(ids):,} episode images x {args.dim}; {n_eps} episodes, {len(fast):,} query predictions")
    print(f"vectorised fit of all episodes: best {min(times):.3f} s, median {float(np.median(times)):.3f} s")
    print(f"baseline loop of numpy.linalg.lstsq: {t_loop:.1f} s (extrapolated from {len(pick)} episodes)")
    print(f"speed-up: {t_loop / min(times):.1f}x; max |difference| on the subset {err:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
