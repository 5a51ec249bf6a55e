"""``aadb simulate-ava``: write a synthetic AVA folder with images (a test instrument, never AVA itself)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._numbers import check_seed
from .simulate import _size
from ._options import add_no_progress, examples, progress


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb simulate-ava --out synthetic_ava --images 2000',
    'aadb simulate-ava --out ava_labels --no-images',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("--out", required=True, type=Path,
                        help="folder to write (AVA.txt, tags.txt, style lists, test list, images/<id>.jpg); "
                             "an existing folder is replaced only if it is a synthetic AVA the toolkit wrote")
    parser.add_argument("--images", type=int, default=5_000, help="number of images (default 5000; AVA has ~255,000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    parser.add_argument("--image-size", type=_size, default=(128, 96), metavar="WxH",
                        help="landscape photo size in pixels (portraits are HxW; default 128x96)")
    add_no_progress(parser)
    parser.add_argument("--no-images", action="store_true", help="write the label files only (for scoring tests)")


def run(args: argparse.Namespace) -> int:
    """Write the folder and print a short summary."""
    from ..simulate import write_synthetic_ava_report

    check_seed(args.seed, "--seed")  # before any work
    res = write_synthetic_ava_report(args.out, args.images, args.seed, image_size=args.image_size,
                                     images=not args.no_images, progress=progress(args))
    print(f"synthetic AVA (a test instrument, not AVA): {res.root}")
    print(f"  {res.n_images} images ({res.n_test} on the standard test list), {res.n_style_images} with style "
          f"labels, {res.n_image_files} image files; see docs/synthetic.md")
    return 0
