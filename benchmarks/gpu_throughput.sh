#!/usr/bin/env bash
# GPU training throughput of Reg+Rank at the paper's size (227x227 crops, full-width AlexNet, bf16
# autocast, model and uint8 image cache on the GPU):
#   1) benchmarks/bench_training.py: the device-resident cache pipeline vs PIL decode-per-step,
#      same model, same batches, same process (images/s and their ratio);
#   2) the real trainer end to end (`aadb train`, cache on device, bf16, validation) on a synthetic
#      release: median images/s of its metrics log.
# Needs one CUDA GPU and the toolkit's dependencies (numpy, pandas, pyarrow, scipy, pillow, tqdm,
# matplotlib, torch with CUDA); the package need not be installed (PYTHONPATH is set to the
# checkout). Takes about 5 minutes; every step has a time limit. Results (JSON + logs) go to OUT_DIR;
# record them in docs/performance.md ("Training throughput").
#
#   Usage: bash benchmarks/gpu_throughput.sh [OUT_DIR]      (default benchmarks/results/gpu)
#   Smoke test of this script without a GPU (tiny sizes, CPU; numbers meaningless):
#          SMOKE=1 bash benchmarks/gpu_throughput.sh /tmp/gpu_smoke
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}  # deterministic cuBLAS (the trainer's default)
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "[gpu_throughput $(date -u +%H:%M:%S)] $*" | tee -a "$out/log.txt"; }

if [[ "${SMOKE:-0}" == 1 ]]; then
    dev=cpu; bench_size=(--images 100 --photo-size 160x120 --crop 64 --width 0.0625 --batch 8 --steps 4 --warmup 1)
    train_size=(--image-size 64 --set model.width=0.0625 --set pairs.n_pairs=320 --set optim.batch_size=16
                --set train.cpu_threads=1); sim_images=200
else
    dev=cuda; bench_size=(--images 500 --photo-size 800x600 --crop 227 --width 1 --batch 64 --steps 40 --warmup 10)
    train_size=(--set pairs.n_pairs=12800); sim_images=2000
fi

say "preflight (device $dev)"
timeout 120 "$PY" - "$out/env.json" "$dev" <<'PY'
import importlib, json, platform, sys
missing = [m for m in ("numpy", "pandas", "pyarrow", "scipy", "PIL", "tqdm", "matplotlib", "torch")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {missing} (pip install them; torch must be a CUDA build)")
import torch
if sys.argv[2] == "cpu":  # smoke test only
    json.dump({"device": "cpu", "torch": torch.__version__, "python": platform.python_version()},
              open(sys.argv[1], "w"), indent=2)
    sys.exit(0)
if not torch.cuda.is_available():
    sys.exit(f"no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
             "this script measures GPU throughput")
if not torch.cuda.is_bf16_supported():
    sys.exit(f"{torch.cuda.get_device_name(0)} does not support bf16")
x = torch.randn(256, 256, device="cuda")
with torch.autocast("cuda", dtype=torch.bfloat16):
    assert (x @ x).dtype == torch.bfloat16
torch.cuda.synchronize()
import aadb_toolkit  # noqa: F401  (the checkout is importable)
env = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
       "cudnn": torch.backends.cudnn.version(), "python": platform.python_version(),
       "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)}
json.dump(env, open(sys.argv[1], "w"), indent=2)
print(json.dumps(env))
PY
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true

say "1/2 pipeline comparison (bench_training.py, 227x227, width 1, 64 pairs = 128 images per step)"
timeout 240 "$PY" benchmarks/bench_training.py --device "$dev" "${bench_size[@]}" --workers 8 --threads 0 \
    --json "$out/gpu_pipeline.json" 2>&1 | tee -a "$out/log.txt"

say "2/2 the trainer end to end (reg_rank_within_cross at 227x227, 12,800 pairs = 200 steps)"
timeout 120 "$PY" -m aadb_toolkit simulate --out "$work/r" --images "$sim_images" --seed 1 2>&1 | tail -3 | tee -a "$out/log.txt"
timeout 120 "$PY" -m aadb_toolkit curate --release "$work/r" --out "$work/c" --on-bad-value exclude \
    --key-file "$work/key" --no-progress 2>&1 | tail -3 | tee -a "$out/log.txt"
timeout 240 "$PY" -m aadb_toolkit train --config baselines/reg_rank_within_cross.toml --data "$work/c" \
    --out "$work/run" --device "$dev" "${train_size[@]}" --epochs 1 --set train.log_every_steps=10 \
    --max-minutes 3 --no-progress 2>&1 | tail -5 | tee -a "$out/log.txt"
cp "$work/run/metrics.jsonl" "$work/run/run.json" "$out/"
"$PY" - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
rates_no_warmup = sorted([r["images_per_s"] for r in recs if r["kind"] == "train" and r.get("images_per_s")][1:])
run = json.loads((out / "run.json").read_text())
res = {
    "env": json.loads((out / "env.json").read_text()),
    "pipeline": json.loads((out / "gpu_pipeline.json").read_text()),
    "trainer": {"images_per_s_median": rates_no_warmup[len(rates_no_warmup) // 2] if rates_no_warmup else None,
                "windows": len(rates_no_warmup), "device": run["device"], "global_step": run["global_step"],
                "stopped": run["stopped"], "elapsed_s": run["elapsed_s"], "best_val_rho": run["best_val_rho"]},
}
(out / "gpu_throughput.json").write_text(json.dumps(res, indent=2) + "\n")
print(json.dumps(res, indent=2))
PY
say "done: $out/gpu_throughput.json"
