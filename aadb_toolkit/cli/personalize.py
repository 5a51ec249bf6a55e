"""``aadb personalize``: per-rater predictions on piaa episodes from a trained generic run (ridge
on its frozen fc7 features, or its last layer fine-tuned with the rank loss, the generic score as
offset; docs/protocols.md, piaa)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ._options import add_no_progress, examples, progress

#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb personalize --run run --data curated --episodes episodes.csv --out personal.csv --generic-out generic.csv',
    'aadb personalize --run run --data curated --episodes episodes.csv --out personal.csv --method rank-finetune',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb personalize``."""
    from ..piaa.personalize import DEFAULT_ALPHA, DEFAULT_METHOD, METHODS

    parser.add_argument("--run", required=True, help="run folder written by aadb train (trained on the train split)")
    parser.add_argument("--data", required=True, help="curated folder, published folder or Hub repo id")
    parser.add_argument("--episodes", required=True, type=Path, help="episodes CSV written by aadb piaa episodes")
    parser.add_argument("--out", required=True, type=Path, help="personalized predictions CSV to write "
                        "(rater_id,k,episode,image_id,score: the piaa submission)")
    parser.add_argument("--generic-out", type=Path, help="also write the run's generic predictions of the episodes' "
                        "query images (image_id,score), for aadb score --generic")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                        help=f"reference personalizer (default {DEFAULT_METHOD}): ridge on the run's fc7 features, "
                        "or rank-finetune, the last layer fine-tuned with the rank loss on the support pairs "
                        "(docs/models.md, \"Recovery suite\", compares them)")
    parser.add_argument("--alpha", type=_alpha, default=DEFAULT_ALPHA, metavar="auto|NUMBER",
                        help="ridge only: penalty, a multiple of the support images' mean squared centred feature norm; "
                        "'auto' (the default): chosen by leave-one-out on support sets of the train split's raters, "
                        "from no correction up (docs/protocols.md, \"piaa\")")
    parser.add_argument("--device", help="cpu, cuda, … (default: cuda when available, else cpu)")
    add_no_progress(parser)


def _alpha(text: str) -> float | None:
    """``--alpha``: ``auto`` (None, chosen on the train split) or a finite positive number: the
    sidecar records it as a JSON number, which ∞ is not (``auto`` may still choose no correction,
    and the generic predictions rank each episode as no correction does)."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r} (for no correction, use the "
                                         "generic predictions of --generic-out: they rank each episode the same)")
    return value


def _check_outputs(args: argparse.Namespace) -> None:
    """Both outputs through the one output check, before any work: never an input (the run, the
    data, the episodes), never a file the toolkit did not write, never a link, never the same file."""
    from .._atomic import check_distinct_outputs, check_output_file, starts_with_header
    from .._paths import input_folders
    from ..piaa import episodes as ep
    from ..submissions import HEADER, MODEL_SIDECAR_SUFFIX, is_model_sidecar

    inputs = (args.run, args.data, *input_folders(args.data), args.episodes)
    check_distinct_outputs(**{"--out": args.out, "--generic-out": args.generic_out})
    check_output_file(args.out, "personalized predictions CSV",
                      starts_with_header(",".join((*ep.KEY_COLUMNS, "score"))), inputs=inputs)
    if args.generic_out is not None:
        check_output_file(args.generic_out, "predictions CSV", starts_with_header(",".join(HEADER)), inputs=inputs)
    for out in (args.out, args.generic_out):
        if out is not None:
            check_output_file(str(out) + MODEL_SIDECAR_SUFFIX, "model sidecar", is_model_sidecar, inputs=inputs)


def _identities(args: argparse.Namespace) -> tuple[dict, dict]:
    """The model sidecars of both outputs (what ``aadb score`` records): the generic run's identity
    for the queries' splits, and for the personalized predictions the personalizer too (its
    penalties chosen on the train split are added by :func:`_with_choices` once known)."""
    from ..models.predict import model_identity
    from ..piaa.episodes import EPISODE_SPLIT_NAME
    from ..piaa.personalize import personalizer_record

    generic = model_identity(args.run, split=EPISODE_SPLIT_NAME)
    return {**generic, "personalizer": personalizer_record(args.method, args.alpha, {})}, generic


def _with_choices(identity: dict | None, args: argparse.Namespace, chosen: dict[int, float]) -> dict | None:
    """The personalized predictions' sidecar with each penalty chosen on the train split (k →
    value), so that a reader sees, and can reproduce, which one was used (None: no sidecar)."""
    from ..piaa.personalize import personalizer_record

    if identity is None:
        return None
    return {**identity, "personalizer": personalizer_record(args.method, args.alpha, chosen)}


def run(args: argparse.Namespace) -> int:
    """Fit every episode and write the predictions atomically."""
    from .. import sources
    from .._keyguard import recorded_fingerprints, refuse_key_file
    from ..piaa import episodes as ep
    from ..piaa.personalize import personalize
    from ..submissions import write_predictions
    from . import work_completed

    # the key is never read as episodes, let alone quoted
    refuse_key_file(args.episodes, field="--episodes", fingerprints=recorded_fingerprints(args.data))
    _check_outputs(args)
    data = sources.load(args.data)
    episodes = ep.read_episodes(args.episodes, data)
    personal_id, generic_id = _identities(args)
    chosen: dict[int, float] = {}  # the penalties chosen on the train split, for the sidecar
    preds, generic = personalize(args.run, data, episodes, alpha=args.alpha, method=args.method,
                                  device=args.device, progress=progress(args), chosen=chosen)
    write_predictions(preds, args.out, model=_with_choices(personal_id, args, chosen))
    if args.generic_out is not None:
        write_predictions(generic, args.generic_out, model=generic_id)
    work_completed()  # every output is written: an interrupt from here on does not fail the command
    n_episodes = preds[["k", "rater_id", "episode"]].drop_duplicates().shape[0]
    print(f"wrote {len(preds)} personalized predictions ({n_episodes} episodes) to {args.out}")
    if args.generic_out is not None:
        print(f"wrote the generic predictions of {len(generic)} query images to {args.generic_out}")
    return 0
