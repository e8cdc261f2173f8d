#!/usr/bin/env bash
# Installs the Debian packages named in scripts/debian-packages.txt (as root; sudo otherwise).
# The Rust toolchain itself (rustc/cargo ≥ 1.95) must be on PATH: see README.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/debian-packages.txt)
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
