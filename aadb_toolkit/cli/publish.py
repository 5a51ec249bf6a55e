"""``aadb publish``: write a Hugging Face dataset repository from a curated AADB (or any source the
loader accepts), and optionally push it to the Hub."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._jsonfile import read_json_object
from ..errors import InputError
from ._options import add_no_progress, examples, progress


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb publish --data curated --out hub/aadb',
    'aadb publish --data curated --out hub/aadb --repo-id ORG/AADB --gated --dry-run',
)


def configure(parser: argparse.ArgumentParser) -> None:
    from ..hub import layout

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="data source: a curated folder, a published folder or a Hub repo id ORG/NAME")
    source.add_argument("--curated", help="deprecated spelling of --data")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the dataset repository to")
    parser.add_argument("--gated", action="store_true", help="publish with access requests enabled on the Hub")
    parser.add_argument("--shard-size-mb", type=float, default=layout.DEFAULT_SHARD_SIZE_MB,
                        help="target size of one parquet shard (default %(default)s)")
    parser.add_argument("--consistency-summary", type=Path, default=None,
                        help="consistency.json written by `aadb consistency`, summarised in the card")
    parser.add_argument("--repo-id", default=None, help="Hub dataset repository ORG/NAME to push to")
    parser.add_argument("--push", action="store_true", help="upload the folder to --repo-id after writing it")
    parser.add_argument("--dry-run", action="store_true", help="list what --push would upload; no network")
    parser.add_argument("--private", action="store_true", help="create the Hub repository as private")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from .. import hub, sources
    from ..piaa import episodes as ep

    if (args.push or args.dry_run) and not args.repo_id:
        raise InputError("--push and --dry-run need --repo-id ORG/NAME", field="--repo-id")
    summary = None
    if args.consistency_summary is not None:
        summary = read_json_object(args.consistency_summary, "the consistency summary")
    if args.curated is not None:
        print("aadb publish: note: --curated is deprecated; use --data (as every other command)", file=sys.stderr)
    data = sources.load(args.data if args.data is not None else args.curated)
    result = hub.publish(data, args.out, gated=args.gated, shard_size_mb=args.shard_size_mb,
                         consistency_summary=summary, repo_id=args.repo_id,
                         extra_configs=(hub.piaa_config(*ep.published_table(data)),), progress=progress(args))
    total = sum(result.files.values())
    print(f"published {sum(result.n_images.values()):,} images and {sum(result.n_ratings.values()):,} ratings "
          f"({result.n_raters:,} raters, {result.n_batches:,} batches) to {result.out}: "
          f"{len(result.files)} files, {total / 1e6:.1f} MB")
    for split, n in result.n_images.items():
        print(f"  {split}: {n:,} images, {result.n_ratings[split]:,} ratings")
    for note in result.notes:
        print(f"  note: {note}")
    if args.dry_run or args.push:
        outcome = hub.push(result.out, args.repo_id, private=args.private, dry_run=args.dry_run)
        verb = "would upload" if outcome.dry_run else "uploaded"
        private = args.private if outcome.dry_run else outcome.private  # as asked, or as the Hub reported it
        print(f"{verb} {len(outcome.plan.files)} files ({outcome.plan.total_bytes / 1e6:.1f} MB) to dataset "
              f"{args.repo_id}{' (gated)' if outcome.plan.gated else ''}{' (private)' if private else ''}:")
        for path, size in outcome.plan.files:
            print(f"  {size:>14,}  {path}")
        if not outcome.dry_run:
            print(f"commit: {outcome.commit_url or outcome.commit_oid}")
            for path in outcome.deleted:
                print(f"  deleted stale {path}")
    return 0
