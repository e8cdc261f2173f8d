#!/usr/bin/env bash
# Installs what the tests need and runs them. Tests that read ../shared/reference (the
# authors' checkpoints and Set5) skip with a message when it is absent, and fail under CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# the data script's own parsing and rules (scripts/test_prepare_data.py)
python3 -m unittest discover -s scripts -p 'test_*.py'
export RUST_BACKTRACE=1
cargo build --all-targets

# The GStreamer plugin as users load it (the cargo tests register it statically instead).
# `cargo build` made target/debug/libgstimdn.so; a fresh registry avoids a stale cache.
(
    export GST_REGISTRY="$(mktemp -d)/r.bin" GST_PLUGIN_PATH="$PWD/target/debug"
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

# GLib warnings (bad property values, pad template mistakes) abort the GStreamer tests.
export G_DEBUG=fatal_warnings
if command -v cargo-nextest >/dev/null; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
