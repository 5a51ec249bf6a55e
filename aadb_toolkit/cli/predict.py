"""``aadb predict``: write a submission CSV from a trained run: its scores (``image_id,score``), or
with ``--attributes`` its attribute branch's predictions (``image_id,attribute,score``)."""

from __future__ import annotations

import argparse
from ._options import add_no_progress, examples, progress


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb predict --run run --data curated --out predictions.csv',
    'aadb predict --run run --data curated --split validation --out val.csv',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb predict``."""
    parser.add_argument("--run", required=True, help="run folder written by aadb train")
    parser.add_argument("--data", required=True, help="curated folder, published folder, or Hub repo id")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"],
                        help="split whose images are predicted (default test, the split `aadb score` scores)")
    parser.add_argument("--out", required=True, help="predictions CSV to write")
    parser.add_argument("--device", help="cpu, cuda, … (default: cuda when available, else cpu)")
    add_no_progress(parser)
    parser.add_argument("--weights", choices=["best", "last"], default="best",
                        help="best validation checkpoint (default) or the last one")
    parser.add_argument("--attributes", action="store_true",
                        help="write the attribute branch's predictions (the attributes protocol's layout)")


def run(args: argparse.Namespace) -> int:
    """Predict and write the CSV atomically."""
    from .._atomic import check_output_file
    from . import work_completed
    from ..models.predict import model_identity, predict, predict_attributes
    from .._paths import input_folders
    from ..sources import load
    from ..submissions import is_submission_file, write_predictions

    from ..protocols.results import is_model_sidecar
    from ..submissions import MODEL_SIDECAR_SUFFIX

    inputs = (args.run, args.data, *input_folders(args.data))
    check_output_file(args.out, "predictions CSV", is_submission_file, inputs=inputs)
    check_output_file(str(args.out) + MODEL_SIDECAR_SUFFIX, "model sidecar", is_model_sidecar, inputs=inputs)
    fn = predict_attributes if args.attributes else predict
    preds = fn(args.run, load(args.data), args.split, device=args.device, which=args.weights, progress=progress(args))
    path = write_predictions(preds, args.out, model=model_identity(args.run, which=args.weights, split=args.split))
    work_completed()
    print(f"wrote {len(preds)} predictions for split {args.split!r} to {path}")
    return 0
