#!/usr/bin/env bash
# GPU training throughput of Reg+Rank at the paper's size (227x227 crops, full-width AlexNet, bf16
# autocast): the device-resident uint8 cache pipeline vs PIL decode-per-step, same model, same run.
# Needs a CUDA GPU; runs in a few minutes. Record the printed JSON in docs/performance.md
# ("Training throughput"). Usage: bash benchmarks/gpu_throughput.sh [OUT_DIR]
set -euo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
python - <<'PY'
import torch, sys
if not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible: this script measures GPU throughput")
print("GPU:", torch.cuda.get_device_name(0))
PY
# 1) pipeline comparison at the paper's size (64 pairs = 128 images per step, as baselines/reg_rank_*.toml)
python benchmarks/bench_training.py --device cuda --images 1000 --photo-size 800x600 \
    --crop 227 --width 1 --batch 64 --steps 50 --warmup 10 --workers 8 --json "$out/gpu_pipeline.json"
# 2) the real trainer end to end (cache on device, bf16, validation), one short epoch of 12,800 pairs
work=$(mktemp -d)
aadb simulate --out "$work/r" --images 2000 --seed 1
aadb curate --release "$work/r" --out "$work/c" --on-bad-value exclude --key-file "$work/key" --no-progress
aadb train --config baselines/reg_rank_within_cross.toml --data "$work/c" --out "$work/run" \
    --set pairs.n_pairs=12800 --epochs 1 --no-progress
python - "$work/run/metrics.jsonl" "$out/gpu_trainer.json" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rates = [r["images_per_s"] for r in recs if r["kind"] == "train" and r.get("images_per_s")][1:]  # skip warm-up window
res = {"trainer_images_per_s_median": sorted(rates)[len(rates) // 2] if rates else None, "windows": len(rates)}
json.dump(res, open(sys.argv[2], "w"), indent=2)
print(json.dumps(res, indent=2))
PY
