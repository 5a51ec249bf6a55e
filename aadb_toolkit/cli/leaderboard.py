"""``aadb leaderboard``: render a leaderboard database as Markdown, HTML and CSV tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, type=Path, help="SQLite leaderboard database")
    parser.add_argument("--out", required=True, type=Path, help="folder for the rendered tables")
    parser.add_argument("--print", dest="print_protocol", metavar="PROTOCOL",
                        help="also print this protocol's Markdown table")


def run(args: argparse.Namespace) -> int:
    from ..leaderboard import format_markdown, render

    if not args.db.is_file():
        raise InputError("no such leaderboard database", file=str(args.db))
    board = format_markdown(args.db, args.print_protocol) if args.print_protocol else None  # a misspelling fails first
    written = render(args.db, args.out)
    print(f"wrote {len(written)} files to {args.out}")
    if board is not None:
        print(board)
    return 0
