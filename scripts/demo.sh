#!/usr/bin/env bash
# The main job: make a short sample video (a camera-like pan across a CC0 photograph, with an
# audio track), upscale it ×2 through the imdnupscale element with the shipped IMDN_RTC model
# (H.264 + the original audio in MP4), and print where the result is.
# SCALE=3 or 4 picks the shipped ×3/×4 model; MODEL_PATH=weights runs other weights.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/sample-data.sh
cargo build --release --quiet -p gst-plugin-imdn --example sample-video --example transcode
mkdir -p out
if [ ! -f out/sample.mp4 ]; then
    target/release/examples/sample-video data/samples/coffee.png out/sample.mp4
fi
scale=${SCALE:-2}
target/release/examples/transcode out/sample.mp4 "out/sample_x$scale.mp4" --scale "$scale" \
    ${MODEL_PATH:+--model-path "$MODEL_PATH"}
echo "input:  $PWD/out/sample.mp4"
echo "result: $PWD/out/sample_x$scale.mp4"
