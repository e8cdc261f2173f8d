#!/usr/bin/env bash
# Installs what the tests need and runs them: the Debian packages of
# scripts/debian-packages.txt, the project's own Python virtualenv (made afresh under CI), the
# cargo tests, the plugin as gst-launch loads it, the demo's programs on a tiny clip, and last a
# check that every system file all of this used comes from a package install-deps.sh installs.
# Tests that read ../shared/reference (the authors' checkpoints and Set5) skip with a message
# when it is absent, and fail under CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
py=$(scripts/python-env.sh ${CI:+--fresh})
# the Python scripts' own tests: the data scripts (test_prepare_data.py, test_structured_data.py,
# test_eval_sets.py); the cluster job's end-to-end test runs after the build, below
"$py" -m unittest discover -s scripts -p 'test_*.py'
export RUST_BACKTRACE=1
# the element's test backends (model-path=test:...) are built for the tests only
features=(--features gst-plugin-imdn/test-backends)
cargo build --all-targets "${features[@]}"

# One GStreamer registry for this run, built before logging starts, so that the plugin loads
# logged from here on are those the tests and examples make (read by scripts/check_deps.py).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/gst-logs"
export GST_REGISTRY="$scratch/registry.bin"
gst-inspect-1.0 >/dev/null
export GST_DEBUG=GST_PLUGIN_LOADING:4 GST_DEBUG_NO_COLOR=1 GST_DEBUG_FILE="$scratch/gst-logs/%p.log"

# The GStreamer plugin as users load it (the cargo tests register it statically instead).
(
    export GST_PLUGIN_PATH="$PWD/target/debug"
    gst-inspect-1.0 imdnupscale >/dev/null
    # test:nearest is the element's nearest-neighbour test backend (no weights needed)
    out=$(gst-launch-1.0 -v videotestsrc num-buffers=30 \
        ! video/x-raw,format=I420,width=160,height=90 \
        ! imdnupscale scale=2 model-path=test:nearest \
        ! video/x-raw,width=320,height=180 ! fakesink silent=false 2>&1)
    n=$(grep -c 'chain.*(86400 bytes' <<<"$out" || true)
    if [ "$n" -ne 30 ] || ! grep -q 'Got EOS' <<<"$out"; then
        echo "$out" | tail -20
        echo "imdnupscale smoke test: expected EOS after 30 buffers of 320x180 I420, got $n" >&2
        exit 1
    fi
    gst-launch-1.0 -q videotestsrc num-buffers=10 ! videoconvert \
        ! imdnupscale model-path=test:nearest ! videoconvert ! fakesink
    # no properties: the shipped IMDN_RTC ×2 on the CPU
    gst-launch-1.0 -q videotestsrc num-buffers=5 ! video/x-raw,width=160,height=90 \
        ! videoconvert ! imdnupscale ! video/x-raw,width=320,height=180 ! videoconvert ! fakesink
)

# The demo's programs (scripts/demo.sh) on a one-second clip: a photograph made here, the
# sample video with its audio track, and the transcode through the element.
clip="$scratch/clip"
mkdir "$clip"
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=256,height=192 \
    ! pngenc ! filesink location="$clip/photo.png"
target/debug/examples/sample-video "$clip/photo.png" "$clip/in.mp4" --size 64x48 --seconds 1
target/debug/examples/transcode "$clip/in.mp4" "$clip/out.mp4" --scale 2 \
    --model-path test:nearest >/dev/null
out=$(gst-launch-1.0 -v filesrc location="$clip/out.mp4" ! qtdemux name=d \
    d.video_0 ! queue ! decodebin ! video/x-raw,width=128,height=96 ! fakesink silent=false \
    d.audio_0 ! queue ! decodebin ! fakesink 2>&1)
n=$(grep -c 'fakesink0.*chain' <<<"$out" || true)
if ! grep -q 'Got EOS' <<<"$out" || [ "$n" -lt 25 ]; then
    echo "$out" | tail -20
    echo "examples smoke test: expected 25 decoded 128x96 frames and EOS, got $n" >&2
    exit 1
fi
# H.265, and what the encoder keeps of the element's frames (lossless: nothing lost, an
# infinite PSNR, which the JSON line writes as null)
target/debug/examples/transcode "$clip/in.mp4" "$clip/out265.mp4" --scale 2 --codec h265 \
    --model-path test:nearest >/dev/null
target/debug/examples/transcode "$clip/in.mp4" "$clip/lossless.mp4" --scale 2 --quality 0 \
    --model-path test:nearest >/dev/null
loss=$(target/debug/examples/encode-loss "$clip/in.mp4" "$clip/lossless.mp4" \
    --weights test:nearest 2>/dev/null | tail -1)
grep -q '"psnr_db":null' <<<"$loss" || { echo "encode-loss on a lossless file: $loss" >&2; exit 1; }
# the split screen: its first frame has the 4-pixel black divider in the middle, picture beside it
target/debug/examples/transcode "$clip/in.mp4" "$clip/compare.mp4" --scale 2 --compare \
    --quality 0 --model-path test:nearest >/dev/null
gst-launch-1.0 -q filesrc location="$clip/compare.mp4" ! decodebin ! videoconvert \
    ! video/x-raw,format=RGB ! pngenc snapshot=true ! filesink location="$clip/compare.png"
"$py" - "$clip/compare.png" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("L")
w, h = im.size
assert (w, h) == (128, 96), (w, h)
column = lambda x: max(im.getpixel((x, y)) for y in range(h))
divider = [column(x) for x in range(w // 2 - 2, w // 2 + 2)]
assert max(divider) <= 20, f"divider not black: {divider}"
assert column(w // 2 - 8) > 40 and column(w // 2 + 8) > 40, "no picture beside the divider"
PY

# The cluster job (scripts/cluster-upscale.py) on a local Ray cluster of two nodes, with and
# without a worker killed, against a single-machine transcode (scripts/cluster_test.py)
scripts/sample-data.sh
TRANSCODE=target/debug/examples/transcode SAMPLE_VIDEO=target/debug/examples/sample-video \
    "$py" scripts/cluster_test.py

# GLib warnings (bad property values, pad template mistakes) abort the GStreamer tests.
export G_DEBUG=fatal_warnings
if command -v cargo-nextest >/dev/null; then
    cargo nextest run --no-fail-fast "${features[@]}"
else
    cargo test --no-fail-fast "${features[@]}"
fi
unset G_DEBUG

"$py" scripts/check_deps.py --gst-logs "$scratch/gst-logs" \
    --binary target/debug/libgstimdn.so --binary target/debug/imdn \
    --program gst-launch-1.0 --program gst-inspect-1.0 --program pkg-config --program cc \
    --program /usr/bin/python3
