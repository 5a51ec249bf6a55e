"""Cost of curating a recovery-suite release inside one of the suite's worker processes: in the
worker's own process (``curate(..., workers=1)``, what a unit does) against the named baseline,
curate's default process pool (what a unit did before 2026-12-03 19:20). The suite's workers are
spawned, and a pool started inside a spawned process spawns too: its fresh interpreters import the
suite's main module, and with it torch, before they check an image. Both give the same tables
(checked here before timing).

    python benchmarks/bench_unit_curation.py                               # a reliability unit's 800-image release
    python benchmarks/bench_unit_curation.py --setting planted_interaction --images 6400

Each round curates the release once each way in the same spawned worker, alternating which goes
first; reports the median seconds and their ratio. The release is synthetic (aadb simulate): a
test instrument, not AADB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import recovery  # as in the suite: the worker's pool children import this main module again

from aadb_toolkit.curate import curate
from aadb_toolkit.simulate import simulate

BASELINE, OURS = "curate's process pool (baseline)", "one process (the suite's units)"
WORKERS = {BASELINE: None, OURS: 1}
KEY = b"bench_unit_curation key, not a secret"


def curate_seconds(release: str, out: str, workers: int | None) -> float:
    """Seconds to curate ``release`` into a fresh ``out`` (run in the suite's worker)."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    curate(Path(release), Path(out), key=KEY, progress=False, workers=workers)
    return time.perf_counter() - start


def same_tables(a: Path, b: Path) -> bool:
    """Whether two curated folders hold equal images and ratings tables."""
    return all(pd.read_parquet(a / t).equals(pd.read_parquet(b / t)) for t in ("images.parquet", "ratings.parquet"))


def measure(setting: str, images: int, rounds: int, work: Path) -> dict:
    """Median seconds per curation each way, in one spawned worker of the suite's pool."""
    release = work / "release"
    simulate(release, n_images=images, seed=1, image_size=recovery.QUICK.image_size, model=setting)
    times: dict[str, list[float]] = {name: [] for name in WORKERS}
    with recovery.unit_pool(1) as pool:
        pool.submit(time.sleep, 0).result()  # the worker is up: its own start is not timed
        for r in range(rounds):
            for name in (list(WORKERS) if r % 2 == 0 else list(reversed(WORKERS))):
                out = work / f"curated_{WORKERS[name]}"
                times[name].append(pool.submit(curate_seconds, str(release), str(out), WORKERS[name]).result())
    seconds = {name: statistics.median(t) for name, t in times.items()}
    return {"seconds": seconds, "ratio": seconds[BASELINE] / seconds[OURS],
            "same_tables": same_tables(work / "curated_None", work / "curated_1")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", default="planted_reliability", help="simulator setting (default planted_reliability)")
    ap.add_argument("--images", type=int, default=800, help="images of the release (default 800, a reliability unit's)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds, each one curation each way (default 3)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aadb_bench_unit_curation_") as tmp:
        out = measure(args.setting, args.images, args.rounds, Path(tmp))
    print(f"{args.images}-image {args.setting} release, {args.rounds} rounds, os.cpu_count() {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    for name, sec in out["seconds"].items():
        print(f"  {name}: median {sec:.2f} s")
    print(f"  ratio baseline / ours: {out['ratio']:.2f}x; same tables: {out['same_tables']}")
    return 0 if out["same_tables"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
