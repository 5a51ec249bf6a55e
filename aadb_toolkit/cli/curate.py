"""``aadb curate``: curate a raw AADB release into the canonical curated folder."""

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
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb curate``."""
    parser.add_argument("--release", required=True, type=Path,
                        help="release folder (AADB_AllinAll.csv, datasetImages_originalSize/, imgListFiles_label/)")
    parser.add_argument("--out", required=True, type=Path, help="curated folder to write (replaced atomically)")
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
    """Curate and print a short summary (the key's path is printed, never its content)."""
    from ..curate import curate

    result = curate(args.release, args.out, key_file=args.key_file,
                    answer_columns=parse_answer_columns(args.answer_column), workers=args.workers,
                    strict_labels=args.strict_labels, on_bad_value=args.on_bad_value,
                    progress=False if args.no_progress else None, test_list=args.test_list,
                    allow_insecure_key=args.allow_insecure_key)
    print(result.summary())
    return 0
