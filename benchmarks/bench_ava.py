"""Benchmark: AVA at full size (255,000 ids) — reading the label files into the data model and
building the decode cache — on a synthetic AVA with small images (a test instrument, not AVA).

Stages, each timed with its peak Python-allocated memory (tracemalloc, which sees numpy arrays),
and the process's peak RSS at the end:
  1. ``read_ava_txt``: the vectorised pandas reader against the line-by-line checked reader
     (the baseline; both give the same table);
  2. ``load_ava_source``: AVA.txt, lists, style lists, the images table and the one-scan check
     that every listed image has a non-empty file;
  3. the decode cache: decode + warp every training image (``--warp`` px) with the trainer's
     ``pipeline.load_or_build_cache`` and save it; then load it again (what a second epoch or a
     second run costs: no decoding).

    python benchmarks/bench_ava.py                       # 255,000 ids (writes ~255k tiny JPEGs once)
    python benchmarks/bench_ava.py --smoke               # 2,000 ids in a temporary folder, seconds
    python benchmarks/bench_ava.py --ids 50000 --root /tmp/ava50k
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from aadb_toolkit import ava
from aadb_toolkit.models import pipeline
from aadb_toolkit.simulate import write_synthetic_ava


def _measure(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, dt, peak / 2**20


def _ensure_ava(root: Path, n_ids: int, size: tuple[int, int]) -> float:
    marker = root / ava.SYNTHETIC_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("n_images") == n_ids:
        return 0.0
    t = time.perf_counter()
    write_synthetic_ava(root, n_ids, seed=0, image_size=size)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=255_000)
    ap.add_argument("--root", type=Path, help="synthetic AVA folder (written once, reused)")
    ap.add_argument("--image-size", default="32x24")
    ap.add_argument("--warp", type=int, default=32, help="cache warp size (the trainer's data.warp_size)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="2,000 ids in a temporary folder")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.image_size.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ava."))
    n_ids = 2_000 if args.smoke else args.ids
    root = tmp / "ava" if args.smoke or args.root is None else args.root
    try:
        t_write = _ensure_ava(root, n_ids, size)
        rows = []
        fast, t_fast, m_fast = _measure(lambda: ava.read_ava_txt(root / ava.AVA_TXT))
        slow, t_slow, m_slow = _measure(lambda: ava._read_ava_checked(root / ava.AVA_TXT))
        assert np.array_equal(slow[0], fast["image_id"].to_numpy(dtype=str))
        rows += [("read_ava_txt (vectorised)", t_fast, m_fast), ("read_ava_txt baseline (line by line)", t_slow, m_slow)]
        data, t_load, m_load = _measure(lambda: ava.load_ava_source(root))
        rows.append(("load_ava_source (tables + image-file check)", t_load, m_load))
        ids = list(data.split("train")["image_id"])
        cache = tmp / "cache"
        _, t_cache, m_cache = _measure(lambda: pipeline.load_or_build_cache(
            data, ids, args.warp, cache_dir=cache, workers=args.workers, progress=False))
        rows.append((f"decode cache build ({len(ids)} train images, warp {args.warp}, {args.workers} workers)",
                     t_cache, m_cache))
        _, t_again, m_again = _measure(lambda: pipeline.load_or_build_cache(
            data, ids, args.warp, cache_dir=cache, workers=args.workers, progress=False))
        rows.append(("decode cache reload (second epoch / second run)", t_again, m_again))
        print(f"synthetic AVA (test instrument, not AVA): {n_ids} ids, {size[0]}x{size[1]} JPEGs at {root}"
              + (f" (written in {t_write:.0f} s)" if t_write else " (reused)"))
        print(f"{'stage':<72} {'time s':>9} {'peak MiB':>9}")
        for name, t, m in rows:
            print(f"{name:<72} {t:9.2f} {m:9.1f}")
        print(f"reader speed-up over the line-by-line baseline: {t_slow / t_fast:.1f}x")
        print(f"cache reload / build: {t_again / t_cache:.3f}")
        print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
