#!/usr/bin/env bash
# Ours vs ONNX Runtime vs PyTorch eager on this CPU, interleaved in one run (not part of CI:
# it installs PyTorch, a few GB). Usage: scripts/compare-cpu.sh [WEIGHTS.pth] [WxH] [THREADS]
# Defaults: the authors' IMDN ×2 and RTC ×2 from ../shared/reference, 640x360, 2 threads.
# PRECISION=int8 OURS_WEIGHTS=weights/imdn_rtc_x2.safetensors: ours in 8 bits on our calibrated
# RTC ×2 (the others run WEIGHTS, the same architecture).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${COMPARE_VENV:-$HOME/.cache/imdn/compare-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q torch onnxruntime onnx numpy
cargo build --release --quiet --bin imdn
size=${2:-640x360}
threads=${3:-2}
export OMP_WAIT_POLICY=PASSIVE  # PyTorch's OpenMP threads must not spin between its runs
if [ $# -ge 1 ]; then
    models=("$1")
else
    models=(../shared/reference/imdn-checkpoints/IMDN_x2.pth ../shared/reference/imdn-checkpoints/model_RTC.pth)
fi
for w in "${models[@]}"; do
    "$venv/bin/python" scripts/compare_cpu.py --imdn target/release/imdn --weights "$w" \
        --size "$size" --threads "$threads" --rounds "${ROUNDS:-5}" \
        --precision "${PRECISION:-f32}" ${OURS_WEIGHTS:+--ours-weights "$OURS_WEIGHTS"}
done
