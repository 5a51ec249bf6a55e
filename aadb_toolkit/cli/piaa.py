"""``aadb piaa episodes``: write the personalized (PIAA) k-shot episodes of a data source."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._numbers import check_seed
from ..piaa import episodes as ep
from ._options import examples

#: Shown under ``--help``.
EXAMPLES = examples("aadb piaa episodes --data curated --out episodes.csv",
                    "aadb piaa episodes --data curated --out episodes.csv --k 10 100 --repeats 5")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the ``episodes`` action and its options."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, help="one of: episodes")
    sub = actions.add_parser("episodes", help="write the k-shot episodes (docs/protocols.md, piaa)",
                             description="Draw the seeded per-rater k-shot episodes of the piaa protocol "
                                         "(docs/protocols.md).",
                             epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_argument("--data", required=True, help="curated folder, published folder or Hub repo id")
    sub.add_argument("--out", required=True, type=Path, help="episodes CSV to write")
    sub.add_argument("--k", type=int, nargs="+", default=list(ep.DEFAULT_K),
                     help="support images per episode (default: %(default)s)")
    sub.add_argument("--repeats", type=int, default=ep.DEFAULT_REPEATS,
                     help="episodes per rater and k (default: %(default)s)")
    sub.add_argument("--seed", type=int, default=ep.DEFAULT_SEED, help="episode seed (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Draw the episodes, write them, and print how many raters qualify at each k."""
    from .. import sources
    from .._atomic import check_output_file, starts_with_header
    from .._paths import input_folders
    from . import work_completed

    check_seed(args.seed, "--seed")  # before any work
    ep.check_params(args.k, args.repeats, args.seed)
    check_output_file(args.out, "piaa episodes CSV", starts_with_header(",".join(ep.COLUMNS)),
                      inputs=(args.data, *input_folders(args.data)))
    data = sources.load(args.data)
    table = ep.make_episodes(data, ks=args.k, repeats=args.repeats, seed=args.seed)
    ep.write_episodes(table, args.out)
    work_completed()
    counts = ep.summarize(table).set_index("k")
    for k in sorted(args.k):
        row = counts.loc[k] if k in counts.index else None
        n_raters = int(row["n_raters"]) if row is not None else 0
        n_queries = int(row["n_query_rows"]) if row is not None else 0
        print(f"k = {k}: {n_raters} rater(s) with >= {k + ep.MIN_QUERIES} validation/test ratings, "
              f"{args.repeats} episodes each, {n_queries} query rows")
    print(f"wrote {len(table)} rows to {args.out} (episodes {ep.fingerprint(table)[:23]}…)")
    return 0
