"""Benchmark: scoring an AVA-size submission (255,000 rows) with a 1,000-resample bootstrap CI of
Spearman's ρ, against the baseline of a naive loop calling ``scipy.stats.spearmanr`` on each
resampled pair of arrays (the naive loop is timed on a subset of resamples and extrapolated).

    python benchmarks/bench_scoring.py                      # full size
    python benchmarks/bench_scoring.py --n 20000 --n-boot 200 --naive-boot 10   # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from aadb_toolkit.protocols._ranking import spearman_ci
from aadb_toolkit.protocols.aadb_protocol import rank_metrics
from aadb_toolkit.submissions import read_submission, write_predictions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=255_000, help="rows in the submission (default: AVA size)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--naive-boot", type=int, default=30, help="resamples timed for the naive baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="repeat the fast path; report the best and median")
    ap.add_argument("--threads", type=int, default=None, help="bootstrap threads (default: CPUs available, ≤ 4)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    n = args.n
    # AVA-like ground truth: mean votes with ties (3 decimals); predictions: noisy, continuous
    truth = pd.Series(np.round(rng.normal(5.4, 0.75, n), 3), index=[str(1_000_000 + i) for i in range(n)])
    pred = truth + rng.normal(0, 0.9, n)

    reads, scores, boots = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_predictions(pred, Path(tmp) / "submission.csv")
        size_mb = path.stat().st_size / 2**20
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            sub = read_submission(path, truth.index)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            metrics, _ = rank_metrics(truth, sub.scores, n_boot=args.n_boot, seed=args.seed)
            scores.append(time.perf_counter() - t0)
    y, x = truth.to_numpy(), sub.scores.reindex(truth.index).to_numpy()
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        rho, lo, hi, _ = spearman_ci(y, x, n_boot=args.n_boot, seed=args.seed, threads=args.threads)
        boots.append(time.perf_counter() - t0)
    totals = [a + b for a, b in zip(reads, scores)]
    t_read, t_score, t_boot = min(reads), min(scores), min(boots)

    k = min(args.naive_boot, args.n_boot)
    rng2 = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    naive = []
    for _ in range(k):
        idx = rng2.integers(0, n, n)
        naive.append(stats.spearmanr(x[idx], y[idx]).statistic)
    t_naive_k = time.perf_counter() - t0
    t_naive = t_naive_k / k * args.n_boot

    print(f"submission: {n:,} rows ({size_mb:.1f} MiB), {args.n_boot} bootstrap resamples")
    print(f"  validate + read CSV             {t_read:7.2f} s")
    print(f"  rank metrics (ρ+CI, r, τ)       {t_score:7.2f} s   ρ = {metrics['spearman'].value:.4f} "
          f"[{metrics['spearman'].ci_low:.4f}, {metrics['spearman'].ci_high:.4f}]")
    print(f"  total (read + score)            {min(totals):7.2f} s   (best of {args.repeat}; median "
          f"{float(np.median(totals)):.2f} s)")
    print(f"  fast bootstrap ρ CI alone       {t_boot:7.2f} s   ({t_boot / max(args.n_boot, 1) * 1e3:.2f} ms/resample, "
          f"best of {args.repeat}; median {float(np.median(boots)):.2f} s)")
    print(f"  naive scipy loop                {t_naive:7.2f} s   (measured {k} resamples in {t_naive_k:.2f} s, "
          f"extrapolated to {args.n_boot})")
    print(f"  speed-up of the bootstrap       {t_naive / t_boot:7.1f} x")
    print(f"  naive-loop CI from {k} resamples (sanity): [{np.quantile(naive, 0.025):.4f}, {np.quantile(naive, 0.975):.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
