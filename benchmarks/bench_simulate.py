"""Benchmark: time to write a synthetic AADB release, as a ratio against the I/O floor.

Baseline ("jpeg-floor"): encode and write the same number of same-size JPEG files of plain noise,
the least any generator of this release must do. The ratio says what drawing the photos, the
raters and the CSV cost on top. Also prints the full-size workload check of docs/synthetic.md.

    python benchmarks/bench_simulate.py                 # 10,000 images (full size)
    python benchmarks/bench_simulate.py --images 1000   # quicker
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from aadb_toolkit.simulate import simulate


def jpeg_floor(folder: Path, n: int, size: tuple[int, int]) -> float:
    """Seconds to encode and write ``n`` noise JPEGs of ``size`` (the baseline)."""
    folder.mkdir(parents=True)
    gen = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(gen.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        (folder / f"{i}.jpg").write_bytes(buf.getvalue())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quirks", action="store_true")
    args = parser.parse_args()
    size = (128, 96)
    with tempfile.TemporaryDirectory() as tmp:
        base = jpeg_floor(Path(tmp) / "floor", args.images, size)
        start = time.perf_counter()
        cpu0 = time.process_time()
        res = simulate(Path(tmp) / "release", n_images=args.images, seed=args.seed, quirks=args.quirks,
                       image_size=size)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        workers = pd.read_parquet(res.truth_dir / "workers.parquet")
    print(f"simulate {args.images} images (seed {args.seed}{', quirks' if args.quirks else ''}): "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU; {res.n_csv_rows} CSV rows, {res.n_valid_ratings} valid ratings")
    print(f"baseline jpeg-floor ({args.images} noise JPEGs): {base:.1f} s; ratio simulate/floor = {wall / base:.2f}")
    n = workers["n_images"]
    print(f"workers with >0 / >100 / >200 images: {(n > 0).sum()} / {(n > 100).sum()} / {(n > 200).sum()} "
          f"(paper Table 6: 190 / 65 / 42); most images by one worker: {n.max()}")


if __name__ == "__main__":
    main()
