"""Benchmark of the batch consistency analysis (issue: consistency).

Measures, in one run, :func:`aadb_toolkit.consistency.analyze_batches` (default method) against
two baselines. The **bound**: a tight single-core numba kernel that, for every batch and
permutation, Fisher–Yates-shuffles each rater's unit-norm rank vector (inside-out, one inline
xorshift64* number per shuffle, multiply-shift positions, the batch shape compiled in as constants,
no table, no memory traffic) and counts ‖Σ_j z_j‖² ≥ observed: the least work any permutation test
of this statistic can do on one core.
The analysis should take at most 1.5× the bound (docs/performance.md). numba is needed only here
(``pip install numba``), never by the toolkit; without it the bound is skipped with a message.
The **naive** baseline: a per-batch Python loop that, for every permutation, shuffles each rater's scores
and calls ``scipy.stats.spearmanr`` on the batch's score matrix (one call gives all pairs). The
naive loop is run on a few batches and extrapolated linearly to the full size (it is linear in
batches × permutations); the report says so. ``--memory-run`` instead runs the 100× size
(100,000 batches, 1,000 permutations) and reports wall time and peak RSS.

    python benchmarks/bench_consistency.py                      # full AADB size: 1,000 × 5 × 10, 10,000 perms
    python benchmarks/bench_consistency.py --batches 100 --n-perm 1000 --naive-batches 1   # quick
    python benchmarks/bench_consistency.py --memory-run         # 100,000 batches, 1,000 perms
    python benchmarks/bench_consistency.py --naive-batches 0 --null-check 3   # + null calibration
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats


def synthetic_ratings(n_batches: int, n_raters: int, n_images: int, seed: int = 0) -> pd.DataFrame:
    """Complete batches whose raters share a latent quality (scores 1–5, many ties)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n_batches, 1, n_images))
    bias = rng.normal(0, 0.3, size=(n_batches, n_raters, 1))
    scores = np.clip(np.rint(3 + q + bias + rng.normal(0, 0.8, (n_batches, n_raters, n_images))), 1, 5).astype(np.int8)
    b = np.repeat(np.arange(n_batches), n_raters * n_images)
    r = np.tile(np.repeat(np.arange(n_raters), n_images), n_batches)
    i = np.tile(np.arange(n_images), n_batches * n_raters)
    return pd.DataFrame({
        "batch_id": pd.Categorical.from_codes(b, [f"HIT{k:07d}" for k in range(n_batches)]),
        "rater_id": pd.Categorical.from_codes(b * n_raters + r, [f"w{k:08d}" for k in range(n_batches * n_raters)]),
        "image_id": pd.Categorical.from_codes(b * n_images + i, [f"img{k:08d}" for k in range(n_batches * n_images)]),
        "score": scores.ravel(),
    })


def naive_p_values(ratings: pd.DataFrame, batch_ids: list[str], n_perm: int, seed: int = 0) -> list[float]:
    """The baseline: a plain loop of spearmanr calls per batch and permutation."""
    rng = np.random.default_rng(seed)
    out = []
    for bid in batch_ids:
        part = ratings[ratings["batch_id"] == bid]
        M = part.pivot(index="rater_id", columns="image_id", values="score").to_numpy(float)
        iu = np.triu_indices(M.shape[0], 1)

        def stat(X: np.ndarray) -> float:
            return float(np.atleast_2d(stats.spearmanr(X.T).statistic)[iu].mean())

        obs = stat(M)
        hits = sum(stat(np.vstack([row[rng.permutation(len(row))] for row in M])) >= obs for _ in range(n_perm))
        out.append((1 + hits) / (1 + n_perm))
    return out


def numba_bound(ratings: pd.DataFrame, n_batches: int, n_raters: int, n_images: int, n_perm: int):
    """The tight numba Fisher–Yates kernel on the same batches, compiled, as a no-argument callable
    returning the counts; or the reason it is skipped (a string)."""
    try:
        import numba
    except ImportError:
        return ("numba is not installed (pip install numba; a benchmark-only tool, never a toolkit "
                "dependency): no bound, no ratio")
    from aadb_toolkit._ranks import centered_ranks

    kernel = numba.njit(fisher_yates_kernel(n_images, n_raters))
    scores = ratings["score"].to_numpy(float).reshape(n_batches, n_raters, n_images)
    c = centered_ranks(scores).astype(np.float64)
    norm = np.sqrt((c * c).sum(-1, keepdims=True))
    z = np.where(norm > 0, c / np.where(norm > 0, norm, 1), 0).astype(np.float32)
    obs = (z.sum(1) ** 2).sum(-1).astype(np.float32)
    kernel(z[:2], obs[:2], 10, 1)  # compile now, not in the timed runs
    return lambda: kernel(z, obs, n_perm, 1)


def fisher_yates_kernel(n: int, n_raters: int):
    """The bound's kernel for batches of ``n_raters`` × ``n`` (both compile-time constants, so the
    compiler unrolls the loops over images), to be compiled by ``numba.njit``.

    For every batch and permutation, each rater 1…R−1 gets one 64-bit xorshift64* number whose two
    32-bit halves drive an inside-out Fisher–Yates shuffle of the rater's unit-norm rank vector
    (position t takes a value from a uniform position k ≤ t by multiply-shift: no division, no
    table, no memory traffic beyond the batch's 200 bytes); the shuffled vectors are summed onto
    rater 0's and ‖Σ_j z_j‖² ≥ observed is counted. The draws are slightly biased (a 32-bit word
    spread over several multiplies), which is immaterial for a speed bound."""
    half = n // 2
    mask = np.uint64(0xFFFFFFFF)

    def kernel(z, obs, n_perm, seed):
        n_batches = z.shape[0]
        counts = np.zeros(n_batches, np.int64)
        w = np.empty(n, np.float32)
        acc = np.empty(n, np.float32)
        s = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
        for g in range(n_batches):
            zg = z[g]
            og = obs[g]
            hits = 0
            for _ in range(n_perm):
                for t in range(n):
                    acc[t] = zg[0, t]
                for j in range(1, n_raters):
                    s ^= s >> np.uint64(12)
                    s ^= s << np.uint64(25)
                    s ^= s >> np.uint64(27)
                    r = s * np.uint64(0x2545F4914F6CDD1D)
                    hi = r >> np.uint64(32)
                    lo = r & mask
                    w[0] = zg[j, 0]
                    for t in range(1, n):
                        if t < half:
                            lo *= np.uint64(t + 1)
                            k = np.int64(lo >> np.uint64(32))
                            lo &= mask
                        else:
                            hi *= np.uint64(t + 1)
                            k = np.int64(hi >> np.uint64(32))
                            hi &= mask
                        w[t] = w[k]
                        w[k] = zg[j, t]
                    for t in range(n):
                        acc[t] += w[t]
                ss = np.float32(0)
                for t in range(n):
                    ss += acc[t] * acc[t]
                if ss >= og:
                    hits += 1
            counts[g] = hits
        return counts

    return kernel


def null_check(ratings: pd.DataFrame, n_batches: int, n_raters: int, n_images: int, seeds: int,
               n_perm: int = 2000) -> dict:
    """The analysis on the same batches with each rater's scores shuffled within the batch (no
    agreement, same ties), drawn afresh for each of ``seeds`` runs: the share of p-values at or
    below 0.01, 0.05 and 0.10, each with its binomial standard error. A valid permutation p-value
    has P(p ≤ a) ≤ a; ties in 1–5 scores make it discrete, so shares below a are expected."""
    from aadb_toolkit import consistency

    p = []
    for s in range(seeds):
        rng = np.random.default_rng(12345 + s)
        scores = rng.permuted(ratings["score"].to_numpy().reshape(n_batches, n_raters, n_images), axis=-1)
        null = ratings.assign(score=scores.ravel())
        p.append(consistency.analyze_batches(null, n_perm=n_perm, seed=s, show_progress=False).batches["p_value"])
    p = np.concatenate(p)
    out = {"batches": int(len(p)), "n_perm": n_perm}
    for a in (0.01, 0.05, 0.10):
        out[f"share_p_le_{a}"] = float((p <= a).mean())
        out[f"se_at_{a}"] = float(math.sqrt(a * (1 - a) / len(p)))
    return out


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages (the machine is shared: figures say how busy it was)."""
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--raters", type=int, default=5)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--n-perm", type=int, default=10_000)
    parser.add_argument("--naive-batches", type=int, default=2, help="batches the naive loop runs (extrapolated)")
    parser.add_argument("--memory-run", action="store_true", help="run the 100x size: 100,000 batches, 1,000 perms")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the fast analysis (best is kept)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--no-bound", action="store_true", help="skip the numba bound")
    parser.add_argument("--null-check", type=int, default=0, metavar="SEEDS",
                        help="also run the analysis this many times (seeds 0, 1, ...) on the batches with every "
                             "rater's scores shuffled (no agreement) and report the null p-values' calibration")
    args = parser.parse_args(argv)
    from aadb_toolkit import consistency

    if args.memory_run:
        args.batches, args.n_perm = 100_000, 1000
    t0 = time.perf_counter()
    ratings = synthetic_ratings(args.batches, args.raters, args.images)
    t_data = time.perf_counter() - t0
    rss_data = peak_rss_mib()
    load_before = load_average()
    bound = None if args.memory_run or args.no_bound else numba_bound(ratings, args.batches, args.raters,
                                                                       args.images, args.n_perm)
    times, bound_times = [], []
    for _ in range(1 if args.memory_run else args.repeats):  # analysis and bound alternate: same load
        t0 = time.perf_counter()
        res = consistency.analyze_batches(ratings, n_perm=args.n_perm, seed=0, show_progress=False)
        times.append(time.perf_counter() - t0)
        if callable(bound):
            t0 = time.perf_counter()
            bound()
            bound_times.append(time.perf_counter() - t0)
    fig = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {platform.python_version()}",
        "batches": args.batches, "raters": args.raters, "images": args.images, "n_perm": args.n_perm,
        "fast_seconds_best": min(times), "fast_seconds_all": times, "data_build_seconds": t_data,
        "percent_significant": res.summary["percent_significant"],
        "peak_rss_mib_after_data": rss_data, "peak_rss_mib": peak_rss_mib(), "load_average_before": load_before,
    }
    if bound_times:
        fig.update({"bound_seconds_best": min(bound_times), "bound_seconds_all": bound_times,
                    "ratio_to_bound": min(times) / min(bound_times),
                    "ratio_to_bound_per_repeat": [a / b for a, b in zip(times, bound_times)]})
    elif isinstance(bound, str):
        fig["bound_skipped"] = bound
        print(bound, file=sys.stderr)
    if not args.memory_run and args.naive_batches > 0:
        ids = list(res.batches["batch_id"][: args.naive_batches])
        t0 = time.perf_counter()
        p_naive = naive_p_values(ratings, ids, args.n_perm)
        t_naive = time.perf_counter() - t0
        naive_full = t_naive / len(ids) * args.batches
        fig.update({
            "naive_batches_run": len(ids), "naive_seconds_measured": t_naive,
            "naive_seconds_extrapolated": naive_full, "speedup": naive_full / min(times),
            "p_fast_vs_naive": list(zip(res.batches["p_value"][: len(ids)].tolist(), p_naive)),
        })
    if args.null_check > 0:
        fig["null_check"] = null_check(ratings, args.batches, args.raters, args.images, args.null_check)
    fig["load_average_after"] = load_average()
    print(json.dumps(fig, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(fig, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
