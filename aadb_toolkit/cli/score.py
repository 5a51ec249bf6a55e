"""``aadb score``: validate and score a submission under a benchmark protocol, write the result
document, and optionally record it in a leaderboard database."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

from .._atomic import check_output_file
from .._format import format_metric, format_p
from .._keyguard import recorded_fingerprints, refuse_key_file
from .._numbers import MAX_RESAMPLES, check_count, check_seed
from ..errors import InputError
from ..protocols import PROTOCOLS, all_inputs, score_submission
from ..protocols.results import is_result_file, write_result
from .._paths import input_folders
from ..submissions import DEFAULT_MAX_BYTES
from ._options import add_no_progress, alias, examples, progress


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb score --submission predictions.csv --protocol aadb --data curated --out result.json',
    "aadb score --submission predictions.csv --protocol aadb --data curated --out result.json --db leaderboard.sqlite --name 'my model'",
)


def configure(parser: argparse.ArgumentParser) -> None:
    layouts = "; ".join(f"{name}: {','.join(p.header)}" for name, p in PROTOCOLS.items() if name != "cross-dataset")
    parser.add_argument("--submission", required=True, type=Path,
                        help=f"predictions CSV, header by protocol ({layouts}); for cross-dataset a TOML/JSON "
                             "manifest of four image_id,score files")
    parser.add_argument("--protocol", required=True, help=f"one of: {', '.join(PROTOCOLS)}")
    parser.add_argument("--data", required=True,
                        help="AADB source (curated folder, published folder or Hub repo id); for 'ava' the AVA folder")
    parser.add_argument("--out", required=True, type=Path, help="where to write the result JSON")
    add_input_flags(parser)
    parser.add_argument("--n-boot", type=int, default=1000,
                        help=f"bootstrap resamples for CIs (default 1000, at most {MAX_RESAMPLES:,})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0; 0 to 2**63 - 1)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="submission size limit in bytes")
    parser.add_argument("--db", dest="leaderboard", type=Path, help="SQLite leaderboard database to record the result in")
    alias(parser, "--leaderboard", "leaderboard", type=Path)
    parser.add_argument("--name", help="display name on the leaderboard (required with --db)")
    parser.add_argument("--compare", type=Path,
                        help="another submission CSV for the same split, or the result JSON of a submission recorded "
                             "in --db: report Δρ with Steiger's Z and a paired bootstrap")
    add_no_progress(parser)


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per input the protocols declare (``--validation``, ``--ava``, …; older spellings
    as hidden aliases)."""
    for i in all_inputs():
        parser.add_argument(i.flag, dest=i.name, type=Path, metavar=i.metavar, help=i.help)
        for old in i.aliases:
            alias(parser, old, i.name, type=Path)


def given_inputs(args: argparse.Namespace) -> dict[str, Path]:
    """The declared inputs given on the command line."""
    return {i.name: getattr(args, i.name) for i in all_inputs() if getattr(args, i.name, None) is not None}


def check_leaderboard_flags(args: argparse.Namespace, inputs: tuple = ()) -> None:
    """Refuse a bad ``--db``/``--name`` before any work (no result may be left behind): the
    database grows in place, so it is never a link, an input (``inputs``) or a file inside one, or
    inside another command's output."""
    if args.name is not None and args.leaderboard is None:
        raise InputError("--name is the display name on a leaderboard: it needs --db DB", field="--name")
    if args.leaderboard is not None:
        from ..leaderboard import check_database, check_name

        if not args.name:
            raise InputError("--db needs --name (the display name of this submission)")
        check_name(args.name)  # before scoring: a bad name or database must not leave a result JSON behind
        check_output_file(args.leaderboard, "leaderboard database", lambda _: True, inputs=inputs)
        check_database(args.leaderboard)


def run(args: argparse.Namespace) -> int:
    check_count(args.n_boot, "--n-boot", high=MAX_RESAMPLES)  # before any file is read
    check_seed(args.seed, "--seed")
    inputs = given_inputs(args)
    read = (args.submission, args.data, *input_folders(args.data), *inputs.values(), args.compare)
    check_leaderboard_flags(args, read)
    fingerprints = recorded_fingerprints(args.data)
    files = {"submission": args.submission, **{i.name: inputs.get(i.name) for i in all_inputs() if i.kind != "source"},
             "compare": args.compare}
    for option, value in files.items():  # never read, let alone quoted
        refuse_key_file(value, field=f"--{option}", fingerprints=fingerprints)
    check_output_file(args.out, "result document", is_result_file, inputs=(*read, args.leaderboard))
    result = score_submission(args.protocol, args.submission, args.data, n_boot=args.n_boot, seed=args.seed,
                              max_bytes=args.max_bytes, progress=progress(args) is not False, **inputs)
    if args.compare is not None:
        comparison = _compare(result, args)
        result = replace(result, details={**result.details, "comparison": comparison})
    write_result(args.out, result)
    report(result, args)
    return 0


def report(result, args: argparse.Namespace) -> None:
    """Print the result's summary, and record it in ``--db`` when given."""
    main = result.metrics[result.main_metric]
    ci = f" (95% CI {main.ci_low:.4f} to {main.ci_high:.4f})" if _defined(main.value) and main.ci_low is not None else ""
    value = f"{main.value:.4f}" if _defined(main.value) else "undefined"
    synthetic = " — SYNTHETIC data (a test instrument, not AADB)" if result.synthetic else ""
    print(f"{result.protocol} v{result.protocol_version}: {result.main_metric} = {value}{ci} "
          f"on {result.n_images} images{synthetic}")
    print(f"  {result.main_metric}, full precision: {main.value!r}")
    for k, m in result.metrics.items():
        if k != result.main_metric and m.value is not None:
            print(f"  {k} = {format_metric(k, m.value)}")
    if "comparison" in result.details and getattr(args, "compare", None) is not None:
        print(f"  vs {args.compare.name}: {_comparison_text(result.details['comparison'])}")
    print(f"  data fingerprint {result.data_fingerprint[:23]}…, submission {result.submission_sha256[:23]}…")
    print(f"wrote {args.out}")
    if args.leaderboard is not None:
        from ..leaderboard import record

        outcome = record(args.leaderboard, result, args.name)
        state = "recorded" if outcome.inserted else "already recorded (unchanged)"
        print(f"leaderboard {args.leaderboard}: {state} as {args.name!r} (id {outcome.result_id})")


def _comparison_text(c: dict) -> str:
    """Δρ with Steiger's Z and the paired bootstrap's p; each reads ``undefined`` where the test is
    (ρ undefined on a constant ground truth or prediction, or too few images), never ``nan``."""
    delta = f"{c['delta']:+.4f}" if _defined(c["delta"]) else "undefined"
    steiger = (f"Steiger Z = {c['steiger_z']:.3f} (p {_p(c['steiger_p'])})" if _defined(c["steiger_p"])
               else "Steiger Z undefined (ρ undefined or too few images)")
    boot = c.get("bootstrap_p", None)
    if boot is not None:
        steiger += f", paired bootstrap p {_p(boot)}" if _defined(boot) else ", paired bootstrap undefined"
    return f"Δρ = {delta}, {steiger}"


def _defined(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _p(p: float) -> str:
    """``= 0.0123`` or ``< 0.001``."""
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def _compare(result, args: argparse.Namespace) -> dict:
    """Δρ against another submission (a CSV) or a recorded result (its JSON, predictions from the DB)."""
    from ..protocols.significance import compare_predictions, compare_submission

    if args.compare.suffix.lower() != ".json":
        return compare_submission(result, args.compare, n_boot=args.n_boot, seed=args.seed, max_bytes=args.max_bytes)
    from ..leaderboard import recorded_predictions
    from ..protocols.results import comparable, read_result

    other = read_result(args.compare)
    if not comparable(result, other):
        raise InputError(f"{args.compare}: not comparable (protocol {other.protocol!r} version "
                         f"{other.protocol_version}, data fingerprint {other.data_fingerprint[:23]}…; this result: "
                         f"{result.protocol!r} version {result.protocol_version}, {result.data_fingerprint[:23]}…)")
    if args.leaderboard is None:
        raise InputError("--compare RESULT.json needs --db DB (where that result's predictions are stored)")
    other_pred = recorded_predictions(args.leaderboard, other)
    if other_pred is None:
        raise InputError(f"{args.compare}: no predictions of that submission in {args.leaderboard}")
    return compare_predictions(result, other_pred, other.submission_sha256, n_boot=args.n_boot, seed=args.seed)
