"""``aadb simulate``: write a synthetic AADB release (a test instrument, never AADB itself)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from .._numbers import check_seed
from ._options import add_no_progress, examples, progress


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected WxH such as 128x96, got {text!r}")
    return int(m.group(1)), int(m.group(2))


#: Shown under ``--help``.
EXAMPLES = examples(
    'aadb simulate --out synthetic_release --images 1000 --quirks',
    'aadb simulate --out synth --images 200 --seed 3',
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("--out", required=True, type=Path, help="release folder to write "
                        "(its planted truth goes to the sibling folder OUT.truth)")
    parser.add_argument("--images", type=int, default=10_000, help="number of rated images, a multiple of 10 "
                        "(default 10000, the size of AADB)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives a byte-identical release")
    parser.add_argument("--quirks", action="store_true", help="inject the mess of real releases "
                        "(docs/synthetic.md, Quirks; each quirk recorded in OUT.truth/quirks.json)")
    parser.add_argument("--random-raters", type=float, default=0.0, metavar="FRACTION",
                        help="share of workers who answer uniformly at random (default 0)")
    add_no_progress(parser)
    parser.add_argument("--image-size", type=_size, default=(128, 96), metavar="WxH",
                        help="landscape photo size in pixels (portraits are HxW; default 128x96)")
    parser.add_argument("--model", default=None, metavar="NAME|FILE.toml",
                        help="setting of the generator: 'default' (model.toml, calibrated to the paper's Table 6), "
                        "a named setting such as planted_taste or null_taste, or a partial model file "
                        "(docs/synthetic.md, Settings); recorded in OUT.truth/setting.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter of the setting, e.g. raters.taste_sd=0.5 (repeatable)")


def run(args: argparse.Namespace) -> int:
    """Simulate the release and print a short summary."""
    from ..simulate import parse_setting_override, simulate

    check_seed(args.seed, "--seed")  # before any work
    overrides = dict(parse_setting_override(text) for text in args.overrides)
    res = simulate(args.out, n_images=args.images, seed=args.seed, quirks=args.quirks,
                   random_rater_share=args.random_raters, image_size=args.image_size,
                   progress=progress(args), model=args.model, overrides=overrides)
    print(f"synthetic AADB release (a test instrument, not AADB): {res.release_dir}")
    print(f"  {res.n_images} images in {res.n_hits} HITs, {res.n_csv_rows} assignment rows, "
          f"{res.n_valid_ratings} valid ratings by {res.n_workers} workers; {res.n_image_files} image files")
    print(f"  {res.n_quirks} quirks injected" if args.quirks else "  no quirks")
    print(f"  setting: {args.model or 'default'}" + (f" with {', '.join(args.overrides)}" if args.overrides else ""))
    print(f"  planted truth: {res.truth_dir}  ({res.seconds:.1f} s)")
    return 0
