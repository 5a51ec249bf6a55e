"""Options that several commands share, spelled the same everywhere (see docs/index.md, "Command
line"): ``--data`` for the AADB source, ``--ava`` for the AVA source, ``--submission`` for a
predictions file, ``--db`` for a leaderboard database, ``--no-progress`` on every long command.
Older spellings keep working as aliases hidden from ``--help``."""

from __future__ import annotations

import argparse

def docs_folder() -> str:
    """Where the documentation is: the ``docs/`` folder shipped inside the installed package (a
    checkout's own ``docs/`` when run from one). Help texts name files in it (``docs/protocols.md``)."""
    from importlib import resources
    from pathlib import Path

    shipped = Path(str(resources.files("aadb_toolkit"))) / "docs"
    checkout = Path(__file__).resolve().parents[2] / "docs"
    return str(shipped if shipped.is_dir() else checkout)


def alias(parser: argparse.ArgumentParser, old: str, dest: str, **kwargs) -> None:
    """Accept ``old`` as a hidden alias of the option that stores into ``dest``."""
    parser.add_argument(old, dest=dest, help=argparse.SUPPRESS, **kwargs)


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: hide progress bars and per-step progress lines."""
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars and progress lines")


def progress(args: argparse.Namespace) -> bool | None:
    """What ``--no-progress`` means for a stage's ``progress`` argument: False, else None (a bar on a
    terminal only)."""
    return False if getattr(args, "no_progress", False) else None


def examples(*lines: str) -> str:
    """An epilog of examples for ``--help``."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)
