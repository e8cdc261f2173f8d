#!/usr/bin/env bash
# Before a device run (after scripts/build-cuda.sh): copies the verification data (../shared/reference: the authors'
# checkpoints and Set5) into .gpu/reference, which .git/info/exclude keeps out of git, so that
# the device tool can carry it (../shared does not travel). Never commit it.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/reference/imdn-checkpoints
cp -r ../shared/reference/Set5 .gpu/reference/
for m in IMDN_x2 IMDN_x3 IMDN_x4 model_RTC; do
    cp ../shared/reference/imdn-checkpoints/$m.pth .gpu/reference/imdn-checkpoints/
done
# the CUDA binary, stripped and compressed to fit the device tool's 64 MiB
if [ -f target/cuda/release/imdn ]; then
    strip -o .gpu/imdn target/cuda/release/imdn
    gzip -9 -f .gpu/imdn
fi
du -sh .gpu
