"""``aadb evaluate``: predict with a trained run and score the predictions under a protocol, in
memory (no prediction file is written and read back); writes the same result document as
``aadb score``, with the run's identity."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._atomic import check_output_file
from .._numbers import check_seed
from .._paths import input_folders
from ..protocols import PROTOCOLS, get_protocol
from ..protocols.results import is_result_file, write_result
from ._options import add_no_progress, alias, examples, progress
from .score import check_leaderboard_flags, report

#: Shown under ``--help``.
EXAMPLES = examples(
    "aadb evaluate --run runs/reg --data curated --protocol aadb --out result.json",
    "aadb evaluate --run runs/reg_att --data curated --protocol attributes --out attributes.json --db lb.sqlite --name 'reg+att'",
)


def configure(parser: argparse.ArgumentParser) -> None:
    usable = [n for n, p in PROTOCOLS.items() if p.predicts]
    parser.add_argument("--run", required=True, type=Path, help="trained run folder (aadb train) or ensemble folder")
    parser.add_argument("--data", required=True,
                        help="data source (curated folder, published folder, Hub repo id; for 'ava' the AVA folder)")
    parser.add_argument("--protocol", required=True, help=f"one of: {', '.join(usable)}")
    parser.add_argument("--out", required=True, type=Path, help="where to write the result JSON")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--db", dest="leaderboard", type=Path, help="SQLite leaderboard database to record the result in")
    alias(parser, "--leaderboard", "leaderboard", type=Path)
    parser.add_argument("--name", help="display name on the leaderboard (required with --db)")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from .. import sources
    from ..protocols import evaluate_model

    get_protocol(args.protocol)  # an unknown name fails before any work
    check_seed(args.seed, "--seed")  # before any work
    read = (args.run, args.data, *input_folders(args.data))
    check_leaderboard_flags(args, read)
    check_output_file(args.out, "result document", is_result_file, inputs=(*read, args.leaderboard))
    data = sources.load(args.data)
    result = evaluate_model(args.protocol, args.run, data, n_boot=args.n_boot, seed=args.seed, progress=progress(args) is not False, device=args.device)
    write_result(args.out, result)
    report(result, args)
    return 0
