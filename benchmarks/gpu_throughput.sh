#!/usr/bin/env bash
# GPU training throughput of the reference models at the paper's size (227x227 crops, full-width
# AlexNet, bf16 autocast, uint8 image cache on the GPU), measured on the toolkit's own training
# step (benchmarks/gpu_throughput.py), and the Table 2 paper-budget time extrapolated from the
# measured step times. Input: a 2,000-photo synthetic release of small photos (seconds to make;
# the decode cache warps them to 256x256). Measures Reg (64 images/step), Reg+Rank and the full
# model's joint stage at 64 and 256 pairs/step, then Reg+Rank in the opt-in fast mode. Each
# measurement is guarded (a failure is recorded and the next one runs) and the JSON is rewritten
# after each, so a run cut short still reports what it measured. About 2-4 minutes on one H200
# (limit: 330 s). Record the figures in docs/performance.md ("Training throughput").
#
#   Usage: bash benchmarks/gpu_throughput.sh [--cpu-smoke] [OUT_DIR]   (default benchmarks/results/gpu)
#   --cpu-smoke: every path on the CPU at toy sizes, under 3 minutes; numbers meaningless.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
smoke=""
if [[ "${1:-}" == "--cpu-smoke" ]]; then smoke="--cpu-smoke"; shift; fi
out=${1:-benchmarks/results/gpu${smoke:+_smoke}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
PY=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z "$smoke" ]]; then nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true; fi
limit=330; [[ -n "$smoke" ]] && limit=170
timeout "$limit" "$PY" benchmarks/gpu_throughput.py --out "$out" --work "$work" $smoke
rc=$?
if [[ $rc -eq 124 ]]; then echo "[gpu_throughput] stopped at the ${limit} s limit; partial results in $out/gpu_throughput.json"; fi
exit $rc
