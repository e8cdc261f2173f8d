#!/usr/bin/env bash
# Before a device run (after scripts/build-cuda.sh): puts what the run needs into .gpu/, which
# .git/info/exclude keeps out of git, so that the device tool can carry it (../shared does not
# travel). Never commit it. Everything carried must fit the tool's 64 MiB with the work tree.
#
#   scripts/gpu-prepare.sh [--checkpoints "IMDN_x2 ..."] [--train-data DIR] [--train-mib N]
#
#   --checkpoints  the authors' checkpoints for gpu-check.sh's parity and benchmarks
#                  (default: IMDN_x2 IMDN_x3 IMDN_x4 model_RTC), with Set5
#   --train-data   a folder of training tiles (scripts/prepare-data.sh's DIR/train) for
#                  gpu-train.sh: copied into .gpu/train, the sharper m1020 tiles first, then the
#                  others in a fixed shuffled order, up to --train-mib (default 24)
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoints="IMDN_x2 IMDN_x3 IMDN_x4 model_RTC"
train_data=""
train_mib=24
while [ $# -gt 0 ]; do
    case "$1" in
        --checkpoints) checkpoints=$2; shift 2 ;;
        --train-data) train_data=$2; shift 2 ;;
        --train-mib) train_mib=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu/reference .gpu/train
mkdir -p .gpu/reference/imdn-checkpoints
cp -r ../shared/reference/Set5 .gpu/reference/
for m in $checkpoints; do
    cp ../shared/reference/imdn-checkpoints/$m.pth .gpu/reference/imdn-checkpoints/
done
if [ -n "$train_data" ]; then
    mkdir -p .gpu/train
    budget=$((train_mib * 1024 * 1024))
    # m1020 first (every photograph has some), then the rest by a hash of the name
    { ls "$train_data" | grep -- '--m1020--' | sort
      ls "$train_data" | grep -v -- '--m1020--' | while read -r f; do
          echo "$(echo "$f" | md5sum | cut -c1-8) $f"; done | sort | cut -d' ' -f2-
    } | { used=0; while read -r f; do
        size=$(stat -c %s "$train_data/$f")
        [ $((used + size)) -le $budget ] || continue
        cp "$train_data/$f" .gpu/train/
        used=$((used + size))
    done; }
    echo "training tiles: $(ls .gpu/train | wc -l) of $(ls "$train_data" | wc -l)"
fi
# the CUDA binary, stripped and compressed to fit the device tool's 64 MiB
if [ -f target/cuda/release/imdn ]; then
    strip -o .gpu/imdn target/cuda/release/imdn
    xz -9 -T2 -f .gpu/imdn
    rm -f .gpu/imdn.gz
fi
du -sh .gpu
