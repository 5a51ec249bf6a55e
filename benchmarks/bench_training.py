"""Training throughput (images/s) of the reference models: the uint8 cache pipeline (decode and
warp once, crop from the cached tensor) against a plain loader that decodes every image with PIL at
every step (decode → warp → random crop → tensor), with the same model, optimiser and batches, in
the same process. Reports both rates and their ratio.

    python benchmarks/bench_training.py                       # synthetic 500-image release, 64-px crops
    python benchmarks/bench_training.py --data CURATED --crop 227 --width 1 --steps 20
    python benchmarks/bench_training.py --device cuda --crop 227 --width 1   # GPU (see gpu_throughput.sh)
    python benchmarks/bench_training.py --compare-models      # the trainer: full model vs Reg, same run

With ``--compare-models`` it instead runs the real trainer (``aadb_toolkit.models.train``) on the
same data for Reg and for the full model (Reg+Rank+Att+Cont, its joint stage timed) and reports
the images/s of each from the runs' metrics logs, and their ratio.

The cache is built before timing starts (its one-off cost is printed separately); each loader
then runs ``--warmup`` untimed and ``--steps`` timed Reg+Rank steps of ``--batch`` pairs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aadb_toolkit.models import build_model
from aadb_toolkit.models.config import IMAGENET_MEAN, IMAGENET_STD, paper_warp_for_crop
from aadb_toolkit.models.losses import Batch, total_loss
from aadb_toolkit.models.pipeline import CropSampler, decode_all
from aadb_toolkit.models.samplers import sample_pairs
from aadb_toolkit.sources import load


def synthetic_curated(n_images: int, work: Path, photo_size: tuple[int, int]) -> Path:
    """A synthetic release of ``n_images`` images, curated (the toolkit's own simulate + curate)."""
    from aadb_toolkit.curate import curate
    from aadb_toolkit.simulate import simulate

    simulate(work / "release", n_images=n_images, seed=1, image_size=photo_size)
    curate(work / "release", work / "curated", key=b"benchmark-rater-key-not-secret", on_bad_value="exclude", progress=False)
    return work / "curated"


class PILLoader:
    """The baseline: decode, warp and crop every image of the batch with PIL at every step."""

    def __init__(self, data, ids, warp: int, crop: int) -> None:
        self.data, self.ids, self.warp, self.crop = data, ids, warp, crop
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def batch(self, idx: np.ndarray, oy: np.ndarray, ox: np.ndarray) -> torch.Tensor:
        out = []
        for i, y, x in zip(idx, oy, ox):
            im = self.data.open_image(self.ids[i]).resize((self.warp, self.warp), Image.BILINEAR)
            a = np.asarray(im.crop((int(x), int(y), int(x) + self.crop, int(y) + self.crop)), dtype=np.float32) / 255
            out.append((torch.from_numpy(a).permute(2, 0, 1) - self.mean) / self.std)
        return torch.stack(out)


def run(args: argparse.Namespace) -> dict:
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    photo_size = tuple(int(v) for v in args.photo_size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        curated = Path(args.data) if args.data else synthetic_curated(args.images, Path(tmp), photo_size)
        data = load(curated)
        train_df = data.split("train")
        ids = list(train_df["image_id"])
        warp = paper_warp_for_crop(args.crop)
        pairs = sample_pairs(train_df, data.ratings, strategy="within_cross", n_pairs=args.batch * (args.steps + args.warmup),
                             seed=0)
        targets = torch.tensor(train_df["score"].to_numpy(np.float32), device=device)
        t0 = time.perf_counter()
        pixels = torch.from_numpy(decode_all(data, ids, warp, workers=args.workers, progress=False)).to(device)
        cache_s = time.perf_counter() - t0
        sampler = CropSampler(pixels, args.crop, IMAGENET_MEAN, IMAGENET_STD)
        baseline = PILLoader(data, ids, warp, args.crop)
        amp = device.startswith("cuda")

        def measure(loader: str) -> float:
            torch.manual_seed(0)
            net = build_model("regression", width=args.width).to(device)
            opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-5)
            rng = np.random.default_rng(0)
            n = args.batch
            ar = torch.arange(n, device=device)
            t_start, images = None, 0
            for step in range(args.warmup + args.steps):
                if step == args.warmup:
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t_start, images = time.perf_counter(), 0
                sl = slice(step * n, (step + 1) * n)
                idx = np.concatenate([pairs.first[sl], pairs.second[sl]])
                oy, ox, fl = sampler.random_offsets(rng, 2 * n, False)
                if loader == "cache":
                    x = sampler.crops(idx, oy, ox, fl)
                else:
                    x = baseline.batch(idx, oy, ox).to(device, non_blocking=True)
                batch = Batch(targets=targets[torch.as_tensor(idx, device=device)], pair_first=ar, pair_second=ar + n,
                              pair_delta=torch.ones(n, device=device))
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    out = net(x)
                loss, _ = total_loss(out, batch, {"regression": 1.0, "rank": 1.0}, 0.02)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                images += 2 * n
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return images / (time.perf_counter() - t_start)

        cache_rate = measure("cache")
        pil_rate = measure("pil")
    return {
        "device": device, "torch_threads": torch.get_num_threads(), "crop": args.crop, "warp": warp,
        "width": args.width, "photo_size": args.photo_size if not args.data else None, "pairs_per_step": args.batch, "timed_steps": args.steps, "n_train_images": len(ids),
        "cache_build_s": round(cache_s, 2), "cache_images_per_s": round(cache_rate, 1),
        "pil_images_per_s": round(pil_rate, 1), "ratio": round(cache_rate / pil_rate, 2),
        "python": platform.python_version(), "torch": torch.__version__,
    }


def _median_rate(run: Path, stage: str) -> float | None:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    rates = sorted(r["images_per_s"] for r in recs if r.get("kind") == "train" and r.get("stage") == stage
                   and r.get("images_per_s"))[1:]  # drop the first window (warm-up)
    return rates[len(rates) // 2] if rates else None


def compare_models(args: argparse.Namespace) -> dict:
    """Images/s of the trainer for Reg and for the full model's joint stage, same data, same process."""
    import warnings

    from aadb_toolkit.models import baseline_config, train

    warnings.filterwarnings("ignore", message="no --init-weights")
    photo_size = tuple(int(v) for v in args.photo_size.lower().split("x"))
    common = {"model.width": args.width, "data.crop_size": args.crop, "data.warp_size": paper_warp_for_crop(args.crop),
              "optim.batch_size": args.batch, "optim.lr": 1e-3, "train.log_every_steps": max(1, args.steps // 5),
              "train.validate_every_steps": 10**6, "train.checkpoint_every_steps": 10**6,
              "train.cpu_threads": args.threads or None, "data.decode_workers": args.workers}
    n_steps = args.warmup + args.steps
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        curated = Path(args.data) if args.data else synthetic_curated(args.images, Path(tmp), photo_size)
        data = load(curated)
        # the same images per step for both: Reg batches 2×batch images, the full model batch pairs
        reg = baseline_config("reg", {**common, "optim.steps": n_steps, "optim.batch_size": 2 * args.batch})
        # the full model: a token first two stages, then the timed joint stage
        full = baseline_config("reg_rank_att_cont", {**common, "optim.steps": n_steps + 2, "pairs.n_pairs": 64 * n_steps,
                                                     "content.clusters": 10})
        full = full.replace({"stages": [{**s, "share": sh} for s, sh in
                                        zip(full.to_dict()["stages"], (1 / (n_steps + 2), 1 / (n_steps + 2),
                                                                       n_steps / (n_steps + 2)))]})
        for name, cfg, stage in (("reg", reg, "train"), ("full", full, "joint")):
            t0 = time.perf_counter()
            train(cfg, data, Path(tmp) / name, device=args.device, progress=False, cache_dir=Path(tmp) / "cache")
            out[name] = {"images_per_s": _median_rate(Path(tmp) / name, stage), "wall_s": round(time.perf_counter() - t0, 1)}
    ratio = (out["full"]["images_per_s"] / out["reg"]["images_per_s"]
             if out["full"]["images_per_s"] and out["reg"]["images_per_s"] else None)
    return {"device": args.device, "crop": args.crop, "width": args.width, "batch": args.batch, "timed_steps": args.steps,
            "reg": out["reg"], "full_model_joint_stage": out["full"],
            "full_over_reg": None if ratio is None else round(ratio, 3),
            "note": "images/s counts every image through the network (a pair = 2 images)",
            "python": platform.python_version(), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="curated folder (default: simulate + curate a synthetic release)")
    p.add_argument("--images", type=int, default=500, help="size of the synthetic release (default 500)")
    p.add_argument("--photo-size", default="128x96",
                   help="synthetic photo size WxH (real AADB photos are ~500–1000 px: try 800x600)")
    p.add_argument("--crop", type=int, default=64, help="crop size (paper: 227); warp = round(crop·256/227)")
    p.add_argument("--width", type=float, default=0.25, help="AlexNet width multiplier (paper: 1)")
    p.add_argument("--batch", type=int, default=32, help="pairs per step (2× images)")
    p.add_argument("--steps", type=int, default=15, help="timed steps per loader")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per loader")
    p.add_argument("--workers", type=int, default=4, help="decode threads for the cache")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU (0: torch default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the result as JSON to this file")
    p.add_argument("--compare-models", action="store_true", help="time the trainer: full model vs Reg")
    args = p.parse_args(argv)
    res = compare_models(args) if args.compare_models else run(args)
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
