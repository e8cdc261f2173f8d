#!/usr/bin/env bash
# Nine whole photographs for a second, sharper held-out check of the shipped weights, beside our
# validation tiles and Set5: the five of KDE's jigsaw collection (Debian's palapeli-data:
# castle, bridge, citrus fruits, honey bee, chameleon; GPL-2+ as the package's `Files: *`,
# photographers in the .desktop files) and astronaut, chelsea, coffee and rocket from Debian's
# python3-skimage (public domain or CC0, see skimage/data/_fetchers.py). None of them is ever in
# training or validation: scripts/prepare-data.sh takes other packages.
#
#   scripts/prepare-check-photos.sh [--out DIR]    # default ~/.cache/imdn/check9
#   imdn eval --weights W --hr ~/.cache/imdn/check9 --downscale --scale N
#
# Packages are fetched with `apt-get download` and unpacked into a temporary folder; the
# images are decoded once by Pillow and stored as PNG so that every reader sees the same pixels.
# Idempotent: an existing complete folder is left as it is.
set -euo pipefail
out=$HOME/.cache/imdn/check9
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
names="castle-maintenon cincinnati-bridge citrus-fruits european-honey-bee
panther-chameleon-female astronaut chelsea coffee rocket"
complete=1
for n in $names; do [ -f "$out/$n.png" ] || complete=0; done
if [ "$complete" = 1 ]; then echo "check photographs in $out/ (9)"; exit 0; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() {
    (cd "$tmp" && apt-get download -q palapeli-data python3-skimage 2>&1 \
        | grep -v '^W: Download is performed unsandboxed' || true)
    [ "$(ls "$tmp" | grep -c '\.deb$')" = 2 ]
}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
# a fresh machine may not have the package lists yet
fetch || { $sudo apt-get update -qq && fetch; } || { echo "apt-get download failed" >&2; exit 1; }
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
py=$("$(dirname "$0")/python-env.sh")
mkdir -p "$out"
"$py" - "$tmp/x" "$out" <<'PY'
import glob, sys
from PIL import Image
root, out = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(root + "/usr/share/palapeli/collection/*.jpg"))
data = glob.glob(root + "/usr/lib/python3/dist-packages/skimage/data")[0]
files += [f"{data}/{n}" for n in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")]
for f in files:
    name = f.rsplit("/", 1)[1].rsplit(".", 1)[0]
    with Image.open(f) as im:
        im.convert("RGB").save(f"{out}/{name}.png")
    print(f"{name}.png  {im.size[0]}x{im.size[1]}  from {f[len(root) + 1:]}")
PY
echo "check photographs in $out/ (9)"
