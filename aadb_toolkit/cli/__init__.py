"""The ``aadb`` command line: a thin layer over the library's stage functions.

Each subcommand lives in its own module under ``aadb_toolkit.cli`` with two functions,
``configure(parser)`` and ``run(args) -> int``; modules are imported only when their command runs,
so ``aadb curate`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from .. import __version__
from .._registry import did_you_mean
from ..errors import AADBError, excerpt

#: command name → (module, one-line help). The registry is data; add a command by adding a row.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("aadb_toolkit.cli.simulate", "write a synthetic AADB release (a test instrument, not AADB)"),
    "simulate-ava": ("aadb_toolkit.cli.simulate_ava", "write a synthetic AVA with images (a test instrument, not AVA)"),
    "curate": ("aadb_toolkit.cli.curate", "curate a raw AADB release into validated tables"),
    "publish": ("aadb_toolkit.cli.publish", "write (and optionally push) a Hugging Face dataset repository"),
    "consistency": ("aadb_toolkit.cli.consistency", "batch-level rater-consistency analysis (Spearman + BH)"),
    "report": ("aadb_toolkit.cli.report", "write reports (human-consistency)"),
    "baselines": ("aadb_toolkit.cli.baselines", "list the shipped model configs and their paper rows"),
    "train": ("aadb_toolkit.cli.train", "train a reference model from a baseline config"),
    "predict": ("aadb_toolkit.cli.predict", "write a submission CSV from a trained run"),
    "reproduce": ("aadb_toolkit.cli.reproduce", "train, score and tabulate one of the paper's tables"),
    "piaa": ("aadb_toolkit.cli.piaa", "write the personalized (per-rater k-shot) episodes"),
    "personalize": ("aadb_toolkit.cli.personalize", "personalize a trained run per rater on piaa episodes"),
    "score": ("aadb_toolkit.cli.score", "score a submission against a benchmark protocol"),
    "evaluate": ("aadb_toolkit.cli.evaluate", "predict with a trained run and score it under a protocol, in memory"),
    "leaderboard": ("aadb_toolkit.cli.leaderboard", "render the leaderboard (Markdown, HTML, CSV)"),
    "demo": ("aadb_toolkit.cli.demo", "run the whole pipeline on a small synthetic AADB"),
}


def _top_parser() -> argparse.ArgumentParser:
    from ._options import docs_folder, examples

    parser = argparse.ArgumentParser(
        prog="aadb",
        description="aadb_toolkit: curate, publish, analyse and benchmark AADB.",
        epilog="commands:\n" + "\n".join(f"  {n:<12} {h}" for n, (_, h) in COMMANDS.items())
        + "\n\n" + examples("aadb demo --out demo_out", "aadb score --help")
        + f"\n\ndocumentation (the docs/*.md the help texts name): {docs_folder()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aadb_toolkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("command", nargs="?", help="one of: " + ", ".join(COMMANDS))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``aadb``; returns the process exit code (2 for usage errors, 1 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    split = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    top_args = top.parse_args(argv[: split + 1])
    if top_args.command is None:
        top.print_help()
        return 2
    name = top_args.command
    if name not in COMMANDS:
        hint = did_you_mean(name, COMMANDS)
        hint = f"; {hint}" if hint else ""
        print(f"aadb: unknown command {name!r}{hint}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if top_args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"aadb {name}", description=COMMANDS[name][1],
                                     epilog=getattr(module, "EXAMPLES", None),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.configure(parser)
    args = parser.parse_args(argv[split + 1 :])
    undecodable = next((a for a in argv if not _is_utf8(a)), None)
    if undecodable is not None:
        print(f"aadb {name}: error: the argument {excerpt(undecodable)!r} is not valid UTF-8 (a file name in "
              "another encoding?); the toolkit records paths in UTF-8 files — rename it", file=sys.stderr)
        return 1
    previous = _install_signal_handlers()
    _STATE["completed"] = False
    shown = _show_warnings_as_notes(name)
    try:
        code = int(module.run(args) or 0)
        sys.stdout.flush()  # here, so that a reader who went away (`| head`) is noticed below
        return code
    except BrokenPipeError:  # stdout's reader is gone: nothing more to say, and nobody to say it to
        _discard_stdout()
        return 0 if _STATE["completed"] else 128 + 13  # 141, as a shell reports SIGPIPE
    except AADBError as exc:
        print(f"aadb {name}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a write failure: read-only folder, full disk, file-size limit, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"aadb {name}: error: {where}{exc.strerror or exc}; nothing half-written was left behind",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if _STATE["completed"]:
            print(f"aadb {name}: interrupted after every output was written; they are complete", file=sys.stderr)
            return 0
        print(f"aadb {name}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        if _STATE["completed"]:
            print(f"aadb {name}: terminated after every output was written; they are complete", file=sys.stderr)
            return 0
        print(f"aadb {name}: terminated", file=sys.stderr)
        return 143
    except MemoryError:
        print(f"aadb {name}: error: out of memory; use smaller sizes (see docs/models.md)", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, or an input no check foresaw: one line, and how to see more
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"aadb {name}: internal error: {type(exc).__name__}: {excerpt(exc)} — this is a bug in "
              f"aadb_toolkit or an input it does not check yet; run again with {TRACEBACK_ENV}=1 for the "
              "traceback and report it", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        _restore_signal_handlers(previous)
        warnings.showwarning = shown


def _show_warnings_as_notes(command: str):
    """Show each distinct warning once, as one line (``aadb train: note: …``), without the source
    line Python prints under a raw ``UserWarning``; returns the previous ``showwarning``."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"aadb {command}: note: {text}", file=sys.stderr)

    previous, warnings.showwarning = warnings.showwarning, show
    return previous


#: Whether the running command has written all of its outputs (see :func:`work_completed`).
_STATE = {"completed": False}


def work_completed() -> None:
    """Called by a command once every output is written: an interrupt, a SIGTERM or a closed stdout
    after this point no longer fails it (exit 0), since its work is done and complete."""
    _STATE["completed"] = True


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file behind stdout (a test's capture): nothing to redirect
        pass


#: Set (to anything) to let an unexpected exception end the command with its full traceback.
TRACEBACK_ENV = "AADB_TRACEBACK"
#: Exit code of a command ended by an unexpected exception (EX_SOFTWARE), apart from bad input (1).
INTERNAL_ERROR = 70


def _is_utf8(arg: str) -> bool:
    """Whether a command-line argument is valid UTF-8 (undecodable bytes arrive as surrogates)."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that every ``finally`` (staging folders, worker
    pools) cleans up as it does on Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _install_signal_handlers() -> dict:
    """SIGTERM unwinds like Ctrl-C; a file-size limit (SIGXFSZ) becomes an OSError instead of
    killing the process mid-write. Returns the previous handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    wanted = {signal.SIGTERM: _on_sigterm}
    if hasattr(signal, "SIGXFSZ"):
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    return {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}


def _restore_signal_handlers(previous: dict) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)
