#!/usr/bin/env bash
# GPU training throughput of the reference models at the paper's size (227x227 crops, full-width
# AlexNet, bf16 autocast, uint8 image cache on the GPU), with the toolkit's own trainer:
#   1) a full-size synthetic release (default 10,000 photos of 1024x768), simulated and curated;
#   2) the decode cache build rate (DCT-scaled JPEG decode + warp to 256, threads);
#   3) `aadb train` for Reg+Rank (within- & cross-rater) and for the full model
#      (Reg+Rank+Att+Cont, its joint stage), each in the deterministic default and in the opt-in
#      fast mode (train.fast: cudnn.benchmark, channels_last, torch.compile), with the GPU
#      utilisation sampled by nvidia-smi every 200 ms while it trains;
#   4) the CPU baseline: the same trainer, same config, on the CPU, for a few steps;
#   5) the projected minutes of every row of Table 2 at the paper budget (steps x images/step / rate).
# Results (JSON + logs) go to OUT_DIR; record them in docs/performance.md ("Training throughput").
# Each step has a time limit; the whole script takes about 8-10 minutes on one H200.
#
#   Usage: bash benchmarks/gpu_throughput.sh [OUT_DIR]      (default benchmarks/results/gpu)
#   Knobs: SIM_IMAGES (10000), PHOTO (1024x768), STEPS (300 timed steps per run), BATCH (64 pairs)
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
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
PY=${PYTHON:-python}
work=$(mktemp -d)
sampler_pid=""
cleanup() { [[ -n "$sampler_pid" ]] && kill "$sampler_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
say() { echo "[gpu_throughput $(date -u +%H:%M:%S)] $*" | tee -a "$out/log.txt"; }

if [[ "${SMOKE:-0}" == 1 ]]; then
    dev=cpu; sim_images=200; photo=320x240; steps=4; batch=8
    size=(--image-size 64 --set model.width=0.0625 --set train.cpu_threads=1)
    cpu_steps=2
else
    dev=cuda; sim_images=${SIM_IMAGES:-10000}; photo=${PHOTO:-1024x768}; steps=${STEPS:-300}; batch=${BATCH:-64}
    size=(); cpu_steps=4
fi

say "preflight (device $dev)"
timeout 120 "$PY" - "$out/env.json" "$dev" <<'PY'
import importlib, json, platform, sys
missing = [m for m in ("numpy", "pandas", "pyarrow", "scipy", "PIL", "tqdm", "matplotlib", "torch")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {missing} (pip install them; torch must be a CUDA build)")
import torch
import aadb_toolkit  # noqa: F401  (the checkout is importable)
env = {"device": sys.argv[2], "torch": torch.__version__, "python": platform.python_version()}
if sys.argv[2] == "cuda":
    if not torch.cuda.is_available():
        sys.exit(f"no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda})")
    if not torch.cuda.is_bf16_supported():
        sys.exit(f"{torch.cuda.get_device_name(0)} does not support bf16")
    env.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
               gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
json.dump(env, open(sys.argv[1], "w"), indent=2)
print(json.dumps(env))
PY
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true

say "1/5 synthetic release: $sim_images photos of $photo"
t0=$(date +%s)
timeout 600 "$PY" -m aadb_toolkit simulate --out "$work/r" --images "$sim_images" --seed 1 --image-size "$photo" \
    2>&1 | tail -2 | tee -a "$out/log.txt"
timeout 300 "$PY" -m aadb_toolkit curate --release "$work/r" --out "$work/c" --on-bad-value exclude \
    --key-file "$work/key" --no-progress 2>&1 | tail -2 | tee -a "$out/log.txt"
echo "{\"simulate_and_curate_s\": $(( $(date +%s) - t0 ))}" > "$out/release.json"

say "2/5 decode cache build (DCT-scaled decode, warp 256, 8 threads)"
timeout 300 "$PY" - "$work/c" "$out/cache.json" <<'PY'
import json, sys, time
from aadb_toolkit.models.pipeline import decode_all
from aadb_toolkit.sources import load
data = load(sys.argv[1])
ids = list(data.split("train")["image_id"])
t = time.perf_counter()
decode_all(data, ids, 256, workers=8, progress=False)
dt = time.perf_counter() - t
res = {"images": len(ids), "seconds": round(dt, 2), "images_per_s": round(len(ids) / dt, 1)}
json.dump(res, open(sys.argv[2], "w"))
print(json.dumps(res))
PY

train_run() {  # name config device steps extra-args...
    local name=$1 config=$2 device=$3 n=$4; shift 4
    if [[ "$device" == cuda ]] && command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$out/util_$name.txt" &
        sampler_pid=$!
    fi
    timeout 420 "$PY" -m aadb_toolkit train --config "$config" --data "$work/c" --out "$work/$name" --device "$device" \
        --set optim.steps="$n" --set optim.batch_size="$batch" --set pairs.n_pairs=$(( batch * n )) \
        --set train.log_every_steps=10 --set train.validate_every_steps=1000000 \
        --set train.checkpoint_every_steps=1000000 --max-minutes 6 --no-progress "${size[@]}" "$@" 2>&1 | tail -2 | tee -a "$out/log.txt"
    if [[ -n "$sampler_pid" ]]; then kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""; fi
    cp "$work/$name/metrics.jsonl" "$out/metrics_$name.jsonl"
}
# the full model spends a token step in each of its first two stages, then times its joint stage
full_stages=(--set 'stages=[{name="reg",share=0.004,weights={regression=1.0}},{name="reg_rank",share=0.004,weights={regression=1.0,rank=1.0}},{name="joint",share=0.992,weights={regression=1.0,rank=1.0,attribute=0.1},branches=["attributes","content"]}]')

say "3/5 the trainer on $dev: Reg+Rank and the full model, default and fast mode ($steps steps, $batch pairs/step)"
train_run regrank baselines/reg_rank_within_cross.toml "$dev" "$steps"
train_run regrank_fast baselines/reg_rank_within_cross.toml "$dev" "$steps" --set train.fast=true
train_run full baselines/reg_rank_att_cont.toml "$dev" $(( steps + 2 )) "${full_stages[@]}"
train_run full_fast baselines/reg_rank_att_cont.toml "$dev" $(( steps + 2 )) "${full_stages[@]}" --set train.fast=true

say "4/5 CPU baseline: the same trainer and config on the CPU ($cpu_steps steps)"
train_run regrank_cpu baselines/reg_rank_within_cross.toml cpu "$cpu_steps" --set train.log_every_steps=1

say "5/5 summary and Table 2 projection"
"$PY" - "$out" "$batch" <<'PY'
import json, pathlib, sys
from aadb_toolkit.reproduce import load_recipe, row_config
out, batch = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def rate(name, stage):
    f = out / f"metrics_{name}.jsonl"
    recs = [json.loads(l) for l in f.read_text().splitlines() if l.strip()] if f.is_file() else []
    r = sorted(x["images_per_s"] for x in recs if x["kind"] == "train" and x.get("stage") == stage and x.get("images_per_s"))
    r = r[1:] if len(r) > 2 else r  # the first window holds compilation / warm-up
    return r[len(r) // 2] if r else None

def util(name):
    f = out / f"util_{name}.txt"
    v = [float(x) for x in f.read_text().split()] if f.is_file() else []
    v = v[len(v) // 5:]  # skip start-up (cache upload, compile)
    return {"mean": round(sum(v) / len(v), 1), "min": min(v), "samples": len(v)} if v else None

runs = {n: {"images_per_s": rate(n, st), "gpu_util_percent": util(n)} for n, st in
        (("regrank", "train"), ("regrank_fast", "train"), ("full", "joint"), ("full_fast", "joint"),
         ("regrank_cpu", "train"))}
# Table 2 at the paper budget: images through the network per row (8,500 train images)
N_TRAIN = 8500
t2 = load_recipe("table2")
proj = []
for fast in (False, True):
    total = 0.0
    for row in t2.rows:
        cfg = row_config(t2, row, "paper")
        stages = cfg.to_dict()["stages"] or [{"name": "train", "share": 1.0, "weights": cfg.loss.weights, "branches": []}]
        images = 0
        for st in stages:
            w = st["weights"] or cfg.loss.weights
            pairs = cfg.pairs.strategy != "none" and "rank" in w
            units = cfg.pairs.n_pairs if pairs else N_TRAIN
            steps = round(st["share"] * cfg.optim.steps) if cfg.optim.steps else (units // cfg.optim.batch_size) * cfg.optim.epochs
            images += steps * cfg.optim.batch_size * (2 if pairs else 1)
        r = runs["full_fast" if fast else "full"]["images_per_s"] if cfg.stages else runs["regrank_fast" if fast else "regrank"]["images_per_s"]
        minutes = images / r / 60 if r else None
        total += minutes or 0
        proj.append({"row": row.label, "fast": fast, "images": images, "minutes": None if minutes is None else round(minutes, 1)})
    proj.append({"row": "all of Table 2", "fast": fast, "minutes": round(total, 1)})
res = {"env": json.loads((out / "env.json").read_text()), "release": json.loads((out / "release.json").read_text()),
       "decode_cache": json.loads((out / "cache.json").read_text()), "pairs_per_step": batch, "runs": runs,
       "table2_paper_budget_projection": proj}
(out / "gpu_throughput.json").write_text(json.dumps(res, indent=2) + "\n")
print(json.dumps(res, indent=2))
PY
say "done: $out/gpu_throughput.json"
