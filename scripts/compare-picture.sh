#!/usr/bin/env bash
# Makes docs/compare.png, the README's before/after picture: a 320×240 region of the demo's
# sample photograph (coffee.png, CC0) reduced ×2 like a half-resolution camera frame, then
# `imdn compare` with the shipped IMDN_RTC ×2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/sample-data.sh
py=$(scripts/python-env.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" - "$tmp/coffee_lr.png" <<'PY'
import sys
from PIL import Image
region = Image.open("data/samples/coffee.png").convert("RGB").crop((150, 40, 470, 280))
region.resize((160, 120), Image.BICUBIC).save(sys.argv[1])
PY
cargo build --release --quiet --bin imdn
mkdir -p docs
target/release/imdn compare --crop 80 "$tmp/coffee_lr.png" docs/compare.png
