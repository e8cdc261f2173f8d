#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (as root; sudo otherwise).
# The Rust toolchain itself (rustc/cargo ≥ 1.95) must be on PATH: see README.
set -euo pipefail
# GStreamer: headers for the plugin (gstreamer, -base, -video, -check) and the tools and
# base elements (videotestsrc, videoconvert) the smoke tests and pipeline tests use.
packages=(build-essential pkg-config python3 python3-pip
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools gstreamer1.0-plugins-base)
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
