#!/usr/bin/env bash
# Prepares the training data of `imdn train`: photographs from Debian's wallpaper packages,
# cut into 480×480 PNG tiles, in a cache outside the work tree (nothing here is committed).
#
#   scripts/prepare-data.sh [--out DIR] [--cache DIR] [--tile N] [--max-side N] [--extra-side N]
#                           [--packages a,b,c] [--more] [--trixie] [--manmade-val]
#                           [--share F | --no-structured]
#
#   --out DIR     tiles go to DIR/train and DIR/val, with DIR/manifest.json
#                 (default: $IMDN_DATA or ~/.cache/imdn/data)
#   --cache DIR   downloaded .deb files and their extracted contents
#                 (default: $IMDN_CACHE or ~/.cache/imdn/debian)
#   --tile N      tile side in pixels (default 480)
#   --max-side N  downscale larger photographs to this longer side first (default 0: keep)
#   --extra-side N  tile the photographs a second time at this smaller longer side (sharper
#                 per pixel; default 0: no second size)
#   --packages    the Debian packages to take photographs from (default below)
#   --more        also the photographs inside other packages (GCompris's activities, Tux Paint's
#                 templates, KPhotoAlbum's demo: MORE in scripts/prepare_data.py), for training
#                 only; validation stays the same
#   --trixie      also the photographs of Budgie's backgrounds, a Debian 13 ("trixie") package,
#                 for training only; fetched through a private apt setup in the cache (the
#                 machine's own apt sources are not touched)
#   --manmade-val six photographs of buildings and structures from Budgie's backgrounds (CC0,
#                 Debian 13, fetched as for --trixie; MANMADE_VAL in scripts/prepare_data.py) go
#                 to DIR/val-manmade, a validation set of real man-made scenes (issue 45); they
#                 are never trained on, with or without --trixie
#   --share F     procedural tiles with structure (facades, grids, stripes, text, line drawings,
#                 screen content: scripts/structured_data.py) make this share of the training
#                 tiles (default 1/3; 0 or --no-structured: none, the photographs alone, as the
#                 sets before issue 45), and 60 of them (10 per kind) go to DIR/val-structured,
#                 a validation set of their own; text is drawn in the fonts of Debian's
#                 fonts-dejavu-core, fonts-liberation2 and (validation only) fonts-freefont-ttf
#
# The packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the
# cache: nothing is installed system-wide. Each package's licence file comes with it
# (usr/share/doc/<pkg>/copyright) and is summarised per image in manifest.json; weights/README.md
# lists sources, licences and counts. Non-photographs (vector art, renders) are left out: see
# scripts/prepare_data.py. Set5 (../shared/reference) is test data and is never used here.
# Idempotent: a second run reuses the downloads and the tiles and only prints the counts.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${IMDN_DATA:-$HOME/.cache/imdn/data}
cache=${IMDN_CACHE:-$HOME/.cache/imdn/debian}
tile=480
max_side=0
extra_side=0
# Debian packages that hold photographs (checked for Debian 12; gnome-backgrounds,
# ukui-wallpapers, lomiri-wallpapers and sway-backgrounds hold none and are not fetched).
packages=lomiri-wallpapers-16.04,lomiri-wallpapers-20.04,lxqt-themes,mate-backgrounds,plasma-workspace-wallpapers
more_packages=gcompris-qt-data,kphotoalbum,tuxpaint-data
trixie_packages=budgie-backgrounds
more=""
trixie=""
manmade=""
share=0.3333333333333333
font_packages=fonts-dejavu-core,fonts-liberation2,fonts-freefont-ttf
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --tile) tile=$2; shift 2 ;;
        --max-side) max_side=$2; shift 2 ;;
        --extra-side) extra_side=$2; shift 2 ;;
        --packages) packages=$2; shift 2 ;;
        --more) more=1; shift ;;
        --trixie) trixie=1; shift ;;
        --manmade-val) manmade=1; shift ;;
        --share) share=$2; shift 2 ;;
        --no-structured) share=0; shift ;;
        -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -z "$more" ] || packages="$packages,$more_packages"
[ -z "$trixie" ] || packages="$packages,$trixie_packages"
# the man-made set alone: Budgie's other photographs are not taken
val_only=""
if [ -n "$manmade" ] && [ -z "$trixie" ]; then
    packages="$packages,$trixie_packages"
    val_only=$trixie_packages
fi
case "$(realpath -m "$out")/" in
    "$(realpath .)"/*) echo "--out must be outside the work tree" >&2; exit 2 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
mkdir -p "$cache/debs" "$cache/extract"
# Debian 13's index in the cache, for the --trixie packages: the machine's apt is left as it is
trixie_apt=(-o Dir::Etc::SourceList="$cache/apt-trixie/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$cache/apt-trixie/lists" -o Dir::Cache="$cache/apt-trixie/cache"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null)
if [ -n "$trixie$manmade" ]; then
    mkdir -p "$cache/apt-trixie/lists/partial" "$cache/apt-trixie/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        > "$cache/apt-trixie/sources.list"
    ls "$cache/apt-trixie/lists/"*_Packages* > /dev/null 2>&1 || apt-get "${trixie_apt[@]}" update -qq
fi

versions=()
candidate() { apt-cache "${apt[@]}" policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
# downloads and extracts $pkg into the cache (once) and appends pkg=version to `versions`
fetch() {
    apt=()
    archives="the configured Debian archives"
    if [[ ",$trixie_packages," == *",$pkg,"* ]]; then
        apt=("${trixie_apt[@]}")
        archives="Debian 13 (trixie)"
    fi
    version=$(candidate)
    # the machine's own index may be missing or stale: refresh it once
    if { [ -z "$version" ] || [ "$version" = "(none)" ]; } && [ ${#apt[@]} -eq 0 ] \
        && [ -z "${updated:-}" ]; then
        $sudo apt-get update -qq
        updated=1
        version=$(candidate)
    fi
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        echo "package $pkg is not available from $archives" >&2
        exit 1
    fi
    versions+=("$pkg=$version")
    # apt-get download names files with the version's ':' escaped as %3a
    deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_${version//:/%3a}_*.deb" | head -n1)
    if [ -z "$deb" ]; then
        echo "downloading $pkg $version"
        (cd "$cache/debs" && apt-get "${apt[@]}" download -q "$pkg=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
        deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_${version//:/%3a}_*.deb" | head -n1)
        [ -n "$deb" ] || { echo "download of $pkg failed" >&2; exit 1; }
    fi
    stamp="$cache/extract/$pkg/.extracted-$version"
    if [ ! -f "$stamp" ]; then
        rm -rf "$cache/extract/$pkg"
        mkdir -p "$cache/extract/$pkg"
        dpkg-deb -x "$deb" "$cache/extract/$pkg"
        touch "$stamp"
    fi
}
for pkg in ${packages//,/ }; do fetch; done
photo_versions=("${versions[@]}")
versions=()
if [ "$share" != 0 ]; then
    for pkg in ${font_packages//,/ }; do fetch; done
fi

py=$(scripts/python-env.sh)
IFS=, ; vlist="${photo_versions[*]}"; flist="${versions[*]:-}"; unset IFS
"$py" scripts/prepare_data.py --extract "$cache/extract" --out "$out" --tile "$tile" \
    --max-side "$max_side" --extra-side "$extra_side" --packages "$packages" --versions "$vlist" \
    --val-only "$val_only"
# after the photographs: their count sets how many procedural tiles make the share
"$py" scripts/structured_data.py --fonts "$cache/extract" --out "$out" --tile "$tile" \
    --share "$share" --versions "$flist"
