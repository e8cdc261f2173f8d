#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (as root; sudo otherwise).
# The Rust toolchain itself (rustc/cargo ≥ 1.95) must be on PATH: see README.
set -euo pipefail
# GStreamer: headers for the plugin (gstreamer, -base, -video, -check) and the tools and
# base elements (videotestsrc, videoconvert) the smoke tests and pipeline tests use.
# The plugin's examples (plugin/examples/transcode.rs, live.rs) also need: -good (mp4mux,
# qtdemux, matroskademux), -ugly (x264enc, with libx264), -libav (avenc_aac, and the avdec_*
# decoders decodebin picks), -bad (h264parse, which decodebin puts before the H.264 decoder;
# voaacenc). NumPy and Pillow: scripts/prepare_data.py and its tests.
packages=(build-essential pkg-config python3 python3-pip python3-numpy python3-pil
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    gstreamer1.0-libav)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust ≥ 1.95 (e.g. rustup) and put it on PATH" >&2
    exit 1
fi
