"""Throughput (items/s) of the PyTorch entry point: ``AADBTorchDataset`` with the paper's transform
(warp 256, random 227 crop) through a ``DataLoader``, on a curated and on a published folder of the
same synthetic release. It decodes every image at every step, as a researcher's own loop would;
the reference models' cached pipeline is measured by bench_training.py.

    python benchmarks/bench_torch_data.py                          # 200 images, 256/227, 0 workers
    python benchmarks/bench_torch_data.py --images 1000 --workers 4
    python benchmarks/bench_torch_data.py --images 20 --warp 72 --crop 64 --batches 2   # tiny check
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from aadb_toolkit import hub
from aadb_toolkit.sources import load
from aadb_toolkit.torch_data import AADBTorchDataset, PaperTransform, collate

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import synthetic_curated  # noqa: E402 - the benchmarks' shared data maker


def rate(folder: Path, args: argparse.Namespace) -> float:
    """Items per second over ``--batches`` timed batches (after one untimed warm-up batch)."""
    ds = AADBTorchDataset(folder, "train", transform=PaperTransform(True, warp_size=args.warp, crop_size=args.crop))
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         collate_fn=collate, drop_last=True)
    batches = iter(loader)
    next(batches)
    start, n = time.perf_counter(), 0
    for _ in range(args.batches):
        try:
            n += len(next(batches)["image_id"])
        except StopIteration:
            batches = iter(loader)
            n += len(next(batches)["image_id"])
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200, help="synthetic images (a multiple of 10)")
    ap.add_argument("--warp", type=int, default=256)
    ap.add_argument("--crop", type=int, default=227)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        curated = synthetic_curated(args.images, work, (320, 240))
        hub.publish(load(curated), work / "published")
        result = {"images": args.images, "warp": args.warp, "crop": args.crop, "batch": args.batch,
                  "workers": args.workers, "curated_items_per_s": round(rate(curated, args), 1),
                  "published_items_per_s": round(rate(work / "published", args), 1)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
