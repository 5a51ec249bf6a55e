"""``aadb personalize``: per-rater predictions on piaa episodes from a trained generic run (ridge
on its frozen fc7 features, the generic score as offset; docs/protocols.md, piaa)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb personalize``."""
    from ..piaa.personalize import DEFAULT_ALPHA

    parser.add_argument("--run", required=True, help="run folder written by aadb train (trained on the train split)")
    parser.add_argument("--data", required=True, help="curated folder, published folder or Hub repo id")
    parser.add_argument("--episodes", required=True, type=Path, help="episodes CSV written by aadb piaa episodes")
    parser.add_argument("--out", required=True, type=Path, help="personalized predictions CSV to write "
                        "(rater_id,k,episode,image_id,score: the piaa submission)")
    parser.add_argument("--generic-out", type=Path, help="also write the run's generic predictions of the episode "
                        "images (image_id,score), for aadb score --generic")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="ridge penalty, a multiple of the support images' mean squared centred fc7 norm "
                        "(default %(default)s)")
    parser.add_argument("--device", help="cpu, cuda, … (default: cuda when available, else cpu)")


def run(args: argparse.Namespace) -> int:
    """Fit every episode and write the predictions atomically."""
    from .. import sources
    from ..piaa import episodes as ep
    from ..piaa.personalize import personalize, write_predictions

    data = sources.load(args.data)
    episodes = ep.read_episodes(args.episodes, data)
    preds, generic = personalize(args.run, data, episodes, alpha=args.alpha, device=args.device)
    write_predictions(preds, args.out)
    print(f"wrote {len(preds)} personalized predictions ({preds[['k', 'rater_id', 'episode']].drop_duplicates().shape[0]}"
          f" episodes) to {args.out}")
    if args.generic_out is not None:
        write_predictions(generic, args.generic_out)
        print(f"wrote the generic predictions of {len(generic)} episode images to {args.generic_out}")
    return 0
