"""Benchmark: publishing a synthetic AADB as a Hugging Face dataset folder, against a plain copy
of the same image bytes (the floor any publisher pays: reading and writing every image once).

    python benchmarks/bench_publish.py                      # 10,000 images (full size)
    python benchmarks/bench_publish.py --n-images 1000      # smaller, faster

The data come from `aadb simulate` + `aadb curate` (a synthetic test instrument, not AADB),
written to a temporary folder (or --work). Reports seconds, MB/s and the ratio publish / copy,
(baselines: a copy to one file per image, as `cp -r` of the image folder does, and a copy
streamed into one file), plus the time to read the published folder back with `sources.load` and with `datasets.load_dataset`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _build(work: Path, n_images: int, image_size: tuple[int, int]) -> Path:
    from aadb_toolkit.curate import curate
    from aadb_toolkit.simulate import simulate

    release, curated = work / "release", work / "curated"
    if not (curated / "manifest.json").is_file():
        simulate(release, n_images=n_images, seed=0, image_size=image_size)
        curate(release, curated, key=b"benchmark-key-not-secret-000000", progress=False)
    return curated


def _plain_copy(data, dest: Path) -> int:
    """Baseline: write every image's bytes, as read through the loader, to one file each."""
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for image_id in data.images["image_id"]:
        payload = data.image_bytes(image_id)
        (dest / image_id).write_bytes(payload)
        total += len(payload)
    return total


def _concat_copy(data, dest: Path) -> int:
    """Second baseline: stream every image's bytes into one file (no per-file overhead)."""
    total = 0
    with open(dest, "wb") as fh:
        for image_id in data.images["image_id"]:
            payload = data.image_bytes(image_id)
            fh.write(payload)
            total += len(payload)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=10_000)
    parser.add_argument("--image-size", type=int, nargs=2, default=(128, 96), metavar=("W", "H"))
    parser.add_argument("--work", type=Path, default=None, help="keep the data here (reused when present)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each side (best is reported)")
    args = parser.parse_args(argv)

    from aadb_toolkit import hub, sources

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_publish."))
    try:
        t0 = time.perf_counter()
        curated = _build(work, args.n_images, tuple(args.image_size))
        print(f"data: {curated} (built/reused in {time.perf_counter() - t0:.1f} s)")
        data = sources.load(curated)
        n = len(data.images)
        copy_s, cat_s, pub_s, nbytes = [], [], [], 0
        for i in range(args.repeat):
            dest = work / f"copy{i}"
            shutil.rmtree(dest, ignore_errors=True)
            t = time.perf_counter()
            nbytes = _plain_copy(sources.load(curated), dest)
            copy_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            _concat_copy(sources.load(curated), work / f"concat{i}.bin")
            cat_s.append(time.perf_counter() - t)
            out = work / f"hub{i}"
            t = time.perf_counter()
            result = hub.publish(sources.load(curated), out)  # loading counts, as it did inside publish
            pub_s.append(time.perf_counter() - t)
        size = sum(result.files.values())
        t = time.perf_counter()
        back = sources.load(work / "hub0")
        for image_id in back.images["image_id"]:
            back.image_bytes(image_id)
        load_s = time.perf_counter() - t
        import datasets

        t = time.perf_counter()
        ds = datasets.load_dataset(str(work / "hub0"), cache_dir=str(work / "hf-cache"))
        hf_s = time.perf_counter() - t
        assert sum(ds[s].num_rows for s in ds) == n
        best_copy, best_cat, best_pub = min(copy_s), min(cat_s), min(pub_s)
        mb = nbytes / 1e6
        print(f"images: {n:,}  image bytes: {mb:.1f} MB  ratings: {len(data.ratings):,}  published: "
              f"{size / 1e6:.1f} MB in {len(result.files)} files")
        print(f"plain copy of image bytes: {best_copy:.2f} s ({mb / best_copy:.1f} MB/s)   runs: "
              + ", ".join(f"{s:.2f}" for s in copy_s))
        print(f"plain copy into one file:  {best_cat:.2f} s ({mb / best_cat:.1f} MB/s)   runs: "
              + ", ".join(f"{s:.2f}" for s in cat_s))
        print(f"publish (parquet + card):  {best_pub:.2f} s ({mb / best_pub:.1f} MB/s)   runs: "
              + ", ".join(f"{s:.2f}" for s in pub_s))
        print(f"ratio publish / copy: {best_pub / best_copy:.2f}x (per-file copy), "
              f"{best_pub / best_cat:.2f}x (one-file copy)")
        print(f"read back all images with sources.load: {load_s:.2f} s; datasets.load_dataset (cold cache): "
              f"{hf_s:.2f} s")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
