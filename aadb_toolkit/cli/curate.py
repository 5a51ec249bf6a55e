"""``aadb curate``: curate a raw AADB release into the canonical curated folder; ``aadb curate
relocate``: point a curated folder at its moved release, with every image's sha256 checked."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import schema
from ..errors import InputError, quote
from ._options import examples


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb curate --release AADB_release --out curated',
    'aadb curate --release AADB_release --out curated --key-file ~/keys/rater.key --on-bad-value exclude',
    'aadb curate relocate --data curated --release /new/place/AADB_release   # after moving the release',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb curate`` and its ``relocate`` action."""
    parser.set_defaults(parser=parser, action=None)
    actions = parser.add_subparsers(dest="action", metavar="[relocate]",
                                    help="relocate: point a curated folder at its moved release "
                                         "(aadb curate relocate --help)")
    move = actions.add_parser("relocate", help="point a curated folder at its moved release (hashes checked)",
                              description="Point a curated folder at its release after the release was moved or "
                                          "copied: every image under --release must have the sha256 recorded at "
                                          "curation; then the manifest is rewritten atomically "
                                          "(docs/curation.md, \"Moving the release\").",
                              epilog=examples("aadb curate relocate --data curated --release /new/place/AADB_release"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    move.add_argument("--data", required=True, type=Path, help="the curated folder")
    move.add_argument("--release", required=True, type=Path, help="the release's new place")
    move.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--release", type=Path,
                        help="release folder (AADB_AllinAll.csv, datasetImages_originalSize/, imgListFiles_label/); "
                             "required")
    parser.add_argument("--out", type=Path, help="curated folder to write (replaced atomically); required")
    parser.add_argument("--key-file", type=Path, default=None,
                        help="secret rater-anonymization key (created with a random key if missing); default "
                             "$AADB_RATER_KEY_FILE, else ~/.config/aadb_toolkit/rater.key")
    parser.add_argument("--allow-insecure-key", action="store_true",
                        help="accept a key file other users can read or write (a warning instead of an error)")
    parser.add_argument("--answer-column", action="append", default=[], metavar="ATTR=STEM",
                        help="answer column stem for an attribute or 'score', e.g. depth_of_field=DoF "
                             "(reads Answer.DoF1..10); repeatable")
    parser.add_argument("--workers", type=int, default=None, help="processes for image checks (default min(4, CPUs))")
    parser.add_argument("--on-bad-value", choices=("error", "exclude"), default="error",
                        help="a non-numeric or out-of-range answer stops curation (error, default) or is "
                             "excluded and reported (exclude; use this for messy releases)")
    parser.add_argument("--strict-labels", action="store_true",
                        help="malformed label lines and labels that disagree with the ratings are errors")
    parser.add_argument("--test-list", choices=schema.TEST_LISTS, default=schema.DEFAULT_TEST_LIST,
                        help="label list that defines the test split: TestNew (the paper's 1,000 test images, "
                             "default) or the older Test list (docs/curation.md, \"Test lists\")")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_answer_columns(items: list[str]) -> dict[str, str]:
    """``["attr=Stem", ...]`` → ``{"attr": "Stem"}``."""
    mapping = {}
    for item in items:
        name, sep, stem = item.partition("=")
        if not sep or not name.strip() or not stem.strip():
            raise InputError(f"--answer-column expects ATTR=STEM, got {quote(item)}", field="--answer-column")
        mapping[name.strip()] = stem.strip()
    return mapping


def run(args: argparse.Namespace) -> int:
    """Curate and print a short summary (the key's path is printed, never its content), or relocate."""
    if args.action == "relocate":
        from ..curate import relocate

        print(relocate(args.data, args.release, progress=False if args.no_progress else None).summary())
        return 0
    missing = [flag for flag, value in (("--release", args.release), ("--out", args.out)) if value is None]
    if missing:
        args.parser.error(f"the following arguments are required: {', '.join(missing)}")
    from ..curate import curate

    result = curate(args.release, args.out, key_file=args.key_file,
                    answer_columns=parse_answer_columns(args.answer_column), workers=args.workers,
                    strict_labels=args.strict_labels, on_bad_value=args.on_bad_value,
                    progress=False if args.no_progress else None, test_list=args.test_list,
                    allow_insecure_key=args.allow_insecure_key)
    print(result.summary())
    return 0
