"""GPU training throughput of the reference models, measured on the toolkit's own training step
(``trainer.train_step``: device-side sampling, gather, crop, flip, bf16 forward, losses, backward,
SGD), and the Table 2 paper-budget time extrapolated from the measured step times.

Run through ``benchmarks/gpu_throughput.sh`` (GPU) or ``--cpu-smoke`` (every path on the CPU at
toy sizes, numbers meaningless). Every measurement is guarded: a failure is recorded in the JSON
with its error and the script goes on; the JSON is rewritten after every measurement, so a run
cut short by its time limit still leaves what it measured.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aadb_toolkit._atomic import write_json  # noqa: E402
from aadb_toolkit.models import load_config  # noqa: E402
from aadb_toolkit.models import trainer  # noqa: E402
from aadb_toolkit.sources import load  # noqa: E402

#: (name, baseline, stage the timing runs in, pairs or images per step). The paper's batch (64) is
#: what the Table 2 projection uses; the larger batch shows what the GPU can do.
MEASUREMENTS = [
    ("reg_b64", "reg", 0, 64),
    ("reg_rank_b64", "reg_rank_within_cross", 0, 64),
    ("full_joint_b64", "reg_rank_att_cont", 2, 64),
    ("reg_rank_b256", "reg_rank_within_cross", 0, 256),
    ("full_joint_b256", "reg_rank_att_cont", 2, 256),
    # i19: add the DINOv2-base fine-tune line here, e.g.
    # ("dinov2_base_reg_rank_b64", "<its baseline>", 0, 64),
]
#: measured last (torch.compile takes a while): the opt-in fast mode
FAST = [("reg_rank_b256_fast", "reg_rank_within_cross", 0, 256)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _prepare_data(work: Path, smoke: bool, log) -> Path:
    """A small synthetic release of small photos (warped up to 256² by the decode cache): seconds,
    where 10,000 photos at 1024×768 would take half an hour to simulate."""
    n, size = (200, "96x72") if smoke else (2000, "160x120")
    py = [sys.executable, "-m", "aadb_toolkit"]
    t = time.perf_counter()
    subprocess.run([*py, "simulate", "--out", str(work / "rel"), "--images", str(n), "--seed", "1",
                    "--image-size", size], check=True, timeout=240, capture_output=True)
    subprocess.run([*py, "curate", "--release", str(work / "rel"), "--out", str(work / "cur"), "--on-bad-value",
                    "exclude", "--key-file", str(work / "key"), "--no-progress"], check=True, timeout=120,
                   capture_output=True)
    log(f"synthetic release: {n} photos of {size} in {time.perf_counter() - t:.1f} s")
    return work / "cur"


def _overrides(smoke: bool, batch: int, fast: bool) -> dict:
    o = {"optim.batch_size": batch, "optim.steps": 100000, "pairs.n_pairs": max(20000, 64 * batch),
         "train.validate_every_steps": 10 ** 6, "train.checkpoint_every_steps": 10 ** 6,
         "data.decode_workers": 16, "content.clusters": 10, "train.fast": fast}
    if smoke:
        o.update({"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "train.cpu_threads": 1,
                  "optim.batch_size": min(batch, 8), "pairs.n_pairs": 400, "data.decode_workers": 2,
                  "content.clusters": 3, "content.finetune_epochs": 1})
    return o


def measure(name: str, baseline: str, stage_index: int, batch: int, *, data, work: Path, device: str,
            smoke: bool, fast: bool = False) -> dict:
    """Median-free, synchronised timing of ``timed`` steps after ``warm`` warm-up steps in one stage."""
    warm, timed = (1, 2) if smoke else (10, 60)
    cfg = load_config(ROOT / "baselines" / f"{baseline}.toml", _overrides(smoke, batch, fast))
    t0 = time.perf_counter()
    cuda = device.startswith("cuda")
    with trainer._fast_mode(fast and cuda), trainer._deterministic(cfg.train.deterministic and not fast, cuda):
        run = trainer._setup(cfg, data, work / "runs" / name, device, trainer._Dist(), False, False, work / "cache")
        state = trainer._build_state(run, None, None, False)
        stage = run.plan[stage_index]
        state.global_step = stage.start
        t_enter = time.perf_counter()
        trainer._enter_stage(run, state, stage)  # fits ContClass for the joint stage
        enter_s = time.perf_counter() - t_enter
        state.model.train()
        setup_s = time.perf_counter() - t0
        for _ in range(warm):
            trainer.train_step(run, state, stage)
        _sync(device)
        t = time.perf_counter()
        losses = [trainer.train_step(run, state, stage)[0] for _ in range(timed)]
        _sync(device)
        dt = time.perf_counter() - t
    images_per_step = cfg.optim.batch_size * (2 if stage.uses_pairs else 1)
    loss = float(torch.stack(losses).float().mean())
    return {"name": name, "baseline": baseline, "stage": stage.name, "batch": cfg.optim.batch_size,
            "images_per_step": images_per_step, "steps_timed": timed, "step_ms": round(1000 * dt / timed, 3),
            "images_per_s": round(images_per_step * timed / dt, 1), "setup_s": round(setup_s, 2),
            "stage_entry_s": round(enter_s, 2), "mean_loss": loss, "fast": fast,
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if device.startswith("cuda") else None}


def project_table2(results: dict) -> list[dict]:
    """Minutes of every Table 2 row at the paper budget: each stage's steps × the measured step
    time of its kind (image batches: Reg; pairs: Reg+Rank; with branches: the full model's joint
    stage), all at the paper's batch of 64."""
    from aadb_toolkit.reproduce import load_recipe, row_config

    kind_ms = {k: (results.get(n) or {}).get("step_ms") for k, n in
               (("images", "reg_b64"), ("pairs", "reg_rank_b64"), ("branches", "full_joint_b64"))}
    rows, total = [], 0.0
    recipe = load_recipe("table2")
    for row in recipe.rows:
        cfg = row_config(recipe, row, "paper")
        td = _UnitCounts(cfg)
        minutes, approx = 0.0, cfg.model.fc7_factor != 1 or cfg.optim.batch_size != 64
        for st in trainer.stage_plan(cfg, td):
            ms = kind_ms["branches" if st.branches else "pairs" if st.uses_pairs else "images"]
            if ms is None:
                minutes = None
                break
            minutes += st.steps * ms / 60000
        if minutes is not None:
            minutes *= cfg.ensemble.members
            total += minutes
        rows.append({"row": row.label, "minutes": None if minutes is None else round(minutes, 1),
                     "approximate": approx})
    rows.append({"row": "all of Table 2", "minutes": round(total, 1)})
    return rows


class _UnitCounts:
    """Stands in for the training data in :func:`trainer.stage_plan`: AADB's 8,500 training images
    and the config's pair count."""

    def __init__(self, cfg) -> None:
        self.pairs = [0] * cfg.pairs.n_pairs if cfg.pairs.strategy != "none" else None

    def n_units(self, pairs: bool, images: str = "all") -> int:
        return len(self.pairs) if pairs and self.pairs is not None else 8500


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu"))
    ap.add_argument("--cpu-smoke", action="store_true", help="every path on the CPU at toy sizes")
    ap.add_argument("--work", default=None, help="scratch folder (default: OUT/work)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    smoke = args.cpu_smoke
    device = "cpu" if smoke else "cuda"
    log_file = open(out / "log.txt", "a", encoding="utf-8")

    def log(msg: str) -> None:
        line = f"[gpu_throughput {time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    doc: dict = {"mode": "cpu-smoke" if smoke else "gpu", "env": {"torch": torch.__version__,
                                                                   "python": platform.python_version()},
                 "measurements": {}, "errors": {}}
    if not smoke:
        if not torch.cuda.is_available():
            log(f"no CUDA GPU visible to torch {torch.__version__}")
            return 2
        p = torch.cuda.get_device_properties(0)
        doc["env"].update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2 ** 30, 1), cuda=torch.version.cuda,
                          bf16=torch.cuda.is_bf16_supported())
    save = lambda: write_json(out / "gpu_throughput.json", doc)  # noqa: E731
    t = time.perf_counter()
    data = load(_prepare_data(work, smoke, log))
    doc["prepare_s"] = round(time.perf_counter() - t, 1)
    save()
    import warnings

    warnings.filterwarnings("ignore", message="no --init-weights")
    for name, baseline, stage, batch in MEASUREMENTS + FAST:
        fast = name.endswith("_fast")
        try:
            r = measure(name, baseline, stage, batch, data=data, work=work, device=device, smoke=smoke, fast=fast)
            doc["measurements"][name] = r
            log(f"{name}: {r['images_per_s']:.0f} images/s ({r['step_ms']:.1f} ms/step, {r['images_per_step']} "
                f"images/step, setup {r['setup_s']} s)")
        except Exception as exc:  # recorded, and the next measurement still runs
            doc["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name}: FAILED {type(exc).__name__}: {exc}")
            traceback.print_exc()
        finally:
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
        doc["table2_paper_budget_minutes"] = project_table2(doc["measurements"])
        save()
    rr = doc["measurements"].get("reg_rank_b256", {}).get("images_per_s")
    doc["goal"] = {"reg_rank_images_per_s_goal": 30000, "defect_below": 15000, "reg_rank_b256": rr}
    save()
    log("summary: " + ", ".join(f"{k} {v['images_per_s']:.0f} img/s" for k, v in doc["measurements"].items()))
    log("Table 2 at the paper budget: " + ", ".join(
        f"{r['row']} {r['minutes']} min" for r in doc["table2_paper_budget_minutes"]))
    log(f"wrote {out / 'gpu_throughput.json'}")
    return 0 if not doc["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
