#!/usr/bin/env bash
# Fetches the sample photographs used by the demo into data/samples/ (not committed):
# chelsea.png and coffee.png from the scikit-image wheel on PyPI (both CC0, see its
# skimage/data/README.txt). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/samples
if [ -f "$out/chelsea.png" ] && [ -f "$out/coffee.png" ]; then exit 0; fi
mkdir -p "$out"
py=$(scripts/python-env.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --disable-pip-version-check --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 scikit-image==0.24.0 -d "$tmp"
"$py" - "$tmp" "$out" <<'PY'
import glob, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(tmp + "/*.whl")[0]) as z:
    for name in ("chelsea.png", "coffee.png", "README.txt"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read("skimage/data/" + name))
PY
echo "sample photos in $out/"
