"""``aadb train``: train a reference model from a ``baselines/`` config (single process, or one
process per GPU under ``torchrun``)."""

from __future__ import annotations

import argparse
import os
from ._options import examples


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb train --config reg_rank_within --data curated --out run',
    'aadb train --config demo_cpu --data curated --out run --epochs 2 --set optim.batch_size=32 --no-progress',
    'aadb train --config dinov2_small_frozen_reg_rank --data curated --out run --init-weights weights/dinov2-small',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``aadb train``."""
    parser.add_argument("--config", required=True,
                        help="baseline name, e.g. reg_rank_within (`aadb baselines` lists them), or a TOML config file")
    parser.add_argument("--data", required=True, help="curated folder, published folder, or Hub repo id")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, metrics, best weights)")
    parser.add_argument("--init-weights",
                        help="pretrained backbone weights: for AlexNet a local standard-keyed state dict (ImageNet); "
                             "for dinov2/clip_vision/vit/resnet a save_pretrained folder (its config.json gives the "
                             "architecture; a Hub id is fetched only when online). See `aadb baselines`")
    parser.add_argument("--init-sha256", help="expected sha256 of the --init-weights file (a folder: of its weights file)")
    parser.add_argument("--epochs", type=int, help="override optim.epochs")
    parser.add_argument("--steps", type=int, help="override optim.steps (a fixed number of training steps)")
    parser.add_argument("--image-size", type=int,
                        help="crop size S (warp size scales as round(S*256/227)); e.g. 64 for a fast CPU run")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu); "
                                         "see docs/models.md")
    parser.add_argument("--max-minutes", type=float, help="stop (checkpointed, resumable) after this much training time")
    parser.add_argument("--no-resume", action="store_true", help="start over even if OUT holds a checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set pairs.n_pairs=20000 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The dotted-key config overrides implied by the command-line options."""
    from ..models import paper_warp_for_crop, parse_override

    overrides = dict(parse_override(s) for s in args.set)
    if args.epochs is not None:
        overrides["optim.epochs"] = args.epochs
    if args.steps is not None:
        overrides["optim.steps"] = args.steps
    if args.image_size is not None:
        overrides["data.crop_size"] = args.image_size
        overrides["data.warp_size"] = paper_warp_for_crop(args.image_size)
    return overrides


def _is_unmarked_run(folder) -> bool:
    """A run folder written before run folders were marked: the trainer's config and a checkpoint."""
    from ..models.runs import CONFIG_FILE

    return (folder / CONFIG_FILE).is_file() and any(folder.glob("*.pt"))


def run(args: argparse.Namespace) -> int:
    """Train and print where the run went and its best validation ρ."""
    from .._atomic import claimed_output_folder
    from ..models import train
    from .._paths import input_folders
    from ..sources import load

    inputs = (args.config, args.data, *input_folders(args.data), args.init_weights)
    with claimed_output_folder(args.out, "run", inputs=inputs,
                               written_before_markers=_is_unmarked_run):
        result = train(args.config, load(args.data), args.out, device=args.device, init_weights=args.init_weights,
                       init_sha256=args.init_sha256, resume=not args.no_resume, max_minutes=args.max_minutes,
                       overrides=overrides_from_args(args), progress=False if args.no_progress else None)
    if int(os.environ.get("RANK", "0")) == 0:
        best = "n/a" if result.best_val_rho is None else f"{result.best_val_rho:.4f}"
        unit = "stage(s)" if result.config.stages else "epoch(s)"
        print(f"{result.config.name}: {result.stopped} after {result.epochs_completed} {unit}, "
              f"{result.global_step}/{result.total_steps} steps on {result.device} ×{result.world_size}; "
              f"best validation rho {best} (step {result.best_step}); run folder {result.run_dir}")
    return 0
