"""``aadb consistency``: batch-level rater-consistency analysis (Spearman + Benjamini–Hochberg)."""

from __future__ import annotations

import argparse

from .._numbers import MAX_RESAMPLES, check_count, check_seed
from ._options import add_no_progress, examples, progress


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb consistency --data curated --out consistency',
    'aadb consistency --data curated --out cons --n-perm 2000 --method pairwise',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    from .. import consistency, paper

    parser.add_argument("--data", required=True, help="curated folder, published folder or Hub repo id")
    parser.add_argument("--out", required=True, help="folder for consistency.json, tables and figures")
    parser.add_argument("--n-perm", type=int, default=consistency.DEFAULT_N_PERM,
                        help=f"permutations per test (default %(default)s, at most {MAX_RESAMPLES:,})")
    parser.add_argument("--q", type=float, default=paper.CONSISTENCY_FDR_Q,
                        help="Benjamini–Hochberg false discovery rate (default %(default)s)")
    parser.add_argument("--method", choices=list(consistency.METHODS), default=consistency.DEFAULT_METHOD,
                        help="what is tested (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the permutations (default %(default)s; 0 to 2**63 - 1)")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    """Run the analysis and print the headline, which says when the data is synthetic."""
    from .. import consistency, sources

    check_count(args.n_perm, "--n-perm", low=1, high=MAX_RESAMPLES)  # before the data is loaded
    check_seed(args.seed, "--seed")
    result = consistency.run_consistency(sources.load(args.data), args.out, n_perm=args.n_perm, q=args.q,
                                         method=args.method, seed=args.seed,
                                         show_progress=progress(args))
    s = result.summary
    unit = "pairs" if s["unit"] == "pair" else "batches"
    pct = "n/a" if s["percent_significant"] is None else f"{s['percent_significant']:.2f}%"
    synthetic = " — SYNTHETIC data (a test instrument, not AADB)" if s["synthetic"] else ""
    print(f"{s['n_significant']} of {s['n_pairs'] if s['unit'] == 'pair' else s['n_batches']} {unit} "
          f"significant at FDR q={s['q']} ({pct}; {s['n_not_tested']} batches not tested: "
          + ", ".join(f"{k}={v}" for k, v in s["degenerate"].items()) + f"){synthetic} -> {args.out}")
    return 0
