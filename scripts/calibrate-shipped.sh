#!/usr/bin/env bash
# Calibrates the shipped IMDN_RTC weights for `--precision int8` (imdn calibrate): the ranges
# of the blocks' 3×3 conv inputs over the nine check photographs, every fifth photographic
# training tile and five procedural training tiles of each kind (facades, grids, stripes,
# text, line drawings, screen content), each downscaled by the model's scale as the network's
# input would be (the validation tiles stay unseen, to check it). Rewrites the files in
# weights/ with their parameters unchanged.
#
#   scripts/calibrate-shipped.sh [DATA [SCALE...]]   # DATA: scripts/prepare-data.sh's folder
#                                 # (default $IMDN_DATA or ~/.cache/imdn/data); SCALE: which
#                                 # of imdn_rtc_x2/x3/x4 (default all three)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${IMDN_DATA:-$HOME/.cache/imdn/data}}
shift $(($# > 0 ? 1 : 0))
scales=${*:-2 3 4}
for s in $scales; do
    case $s in
        2|3|4) ;;
        *) echo "no shipped IMDN_RTC for scale $s (2, 3 or 4)" >&2; exit 2 ;;
    esac
done
check=$HOME/.cache/imdn/check9
scripts/prepare-check-photos.sh --out "$check" >/dev/null
cargo build --release -q -p imdn --bin imdn
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
# the folder's name is what the weights' model card records
tmp=$top/check9-and-training-tiles
mkdir "$tmp"
cp "$check"/*.png "$tmp"/
find "$data/train" -name '*.png' ! -name 'proc-*' | sort | awk 'NR % 5 == 1' | xargs -r cp -t "$tmp"
for kind in drawing facade grid screen stripes text; do
    tiles=$(find "$data/train" -name "proc-*--$kind--*.png" | sort | head -5)
    [ -n "$tiles" ] || { echo "no procedural $kind tiles in $data/train (run scripts/prepare-data.sh)" >&2; exit 1; }
    # shellcheck disable=SC2086
    cp $tiles "$tmp"/
done
for s in $scales; do
    target/release/imdn calibrate --weights "weights/imdn_rtc_x$s.safetensors" \
        --images "$tmp" --downscale --out "weights/imdn_rtc_x$s.safetensors"
done
# the binary embeds the shipped files: rebuild it so that `--weights imdn_rtc_xN` names the
# calibrated ones
cargo build --release -q -p imdn --bin imdn
