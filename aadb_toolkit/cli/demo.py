"""``aadb demo``: the whole pipeline on a small synthetic AADB (a test instrument, not AADB)."""

from __future__ import annotations

import argparse
from .._numbers import check_seed
from ._options import add_no_progress, examples, progress


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb demo --out demo_out',
    'aadb demo --out demo_out --images 300 --no-train --seed 5',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("--out", default="demo_out", help="output folder (default %(default)s)")
    parser.add_argument("--images", type=int, default=1000, help="images in the synthetic release (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic release (default %(default)s)")
    parser.add_argument("--no-quirks", action="store_true", help="a clean release, without the raw release's mess")
    parser.add_argument("--n-perm", type=int, default=2000, help="permutations per consistency test (default %(default)s)")
    parser.add_argument("--no-train", action="store_true", help="skip training, prediction, scoring and leaderboard "
                        "(their outputs from an earlier run in --out are removed)")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where everything went."""
    from ..demo import run_demo

    check_seed(args.seed, "--seed")  # before any work
    result = run_demo(args.out, n_images=args.images, seed=args.seed, quirks=not args.no_quirks,
                      n_perm=args.n_perm, train_model=not args.no_train, progress=progress(args))
    total = sum(result.seconds.values())
    print(f"\ndemo finished in {total:.0f} s; outputs in {result.out}")
    for name, path in result.paths.items():
        print(f"  {name:<16} {path}")
    return 0
