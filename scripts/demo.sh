#!/usr/bin/env bash
# The main job: upscale a sample photograph ×2 with IMDN and print where the result is.
# WEIGHTS may name any IMDN weights file (safetensors or the authors' .pth); by default the
# authors' IMDN_RTC checkpoint is taken from ../shared/reference if it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/sample-data.sh
weights=${WEIGHTS:-../shared/reference/imdn-checkpoints/model_RTC.pth}
if [ ! -f "$weights" ]; then
    echo "no weights at $weights: set WEIGHTS=path/to/weights (the authors publish theirs in" >&2
    echo "the checkpoints/ folder of github.com/Zheng222/IMDN)" >&2
    exit 1
fi
cargo build --release --quiet --bin imdn
mkdir -p out
./target/release/imdn info "$weights"
./target/release/imdn upscale --weights "$weights" data/samples/chelsea.png out/chelsea_x2.png
echo "result: $PWD/out/chelsea_x2.png"
