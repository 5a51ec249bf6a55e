"""``aadb leaderboard``: render a leaderboard database as Markdown, HTML and CSV tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ._options import examples


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb leaderboard --db leaderboard.sqlite --out leaderboard',
    'aadb leaderboard --db leaderboard.sqlite --print aadb',
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, type=Path, help="SQLite leaderboard database")
    parser.add_argument("--out", type=Path, help="folder for the rendered tables (Markdown, HTML, CSV)")
    parser.add_argument("--print", dest="print_protocol", metavar="PROTOCOL",
                        help="print this protocol's Markdown table (with --out: as well as writing the pages)")


def run(args: argparse.Namespace) -> int:
    from .._atomic import atomic_dir
    from ..leaderboard import format_markdown, render

    if args.out is None and args.print_protocol is None:
        raise InputError("give --out DIR (write the pages), --print PROTOCOL (print one board), or both")
    if not args.db.is_file():
        raise InputError("no such leaderboard database", file=str(args.db))
    board = format_markdown(args.db, args.print_protocol) if args.print_protocol else None  # a misspelling fails first
    if args.out is None:
        print(board, end="")
        return 0
    with atomic_dir(args.out, kind="leaderboard", inputs=(args.db,)) as stage:  # all pages or none
        written = render(args.db, stage)
    print(f"wrote {len(written)} files to {args.out}")
    if board is not None:
        print(board)
    return 0
