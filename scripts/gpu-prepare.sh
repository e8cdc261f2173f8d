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
#
# Also carried: the CUDA builds of scripts/build-cuda.sh, stripped and xz-compressed
# (.gpu/imdn.xz, and .gpu/libgstimdn.so.xz, the element, where it was built), taken from
# CUDA_TARGET (default target/cuda/release; another worktree's build, e.g.
# CUDA_TARGET=../bf16/target/cuda/release); and for gpu-check.sh's element step
# (scripts/gpu-element.sh) GStreamer, which the GPU machine lacks: the Debian packages of
# scripts/gpu-gst-packages.txt as .deb files in .gpu/gst (about 5.5 MB), downloaded with
# `apt-get download` (no root needed; with a private copy of the package lists where this
# machine has none) only when missing.
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
# the common git dir's exclude file: in a worktree .git is a file
exclude=$(git rev-parse --git-common-dir)/info/exclude
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
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
# the CUDA binary and element, stripped and compressed to fit the device tool's 64 MiB
cuda_target=${CUDA_TARGET:-target/cuda/release}
pack() { # built-file packed-name
    strip -o ".gpu/$2" "$1"
    xz -9 -T2 -f ".gpu/$2"
}
if [ -f "$cuda_target/imdn" ]; then
    pack "$cuda_target/imdn" imdn
    rm -f .gpu/imdn.gz
fi
if [ -f "$cuda_target/libgstimdn.so" ]; then
    pack "$cuda_target/libgstimdn.so" libgstimdn.so
else # an older build's element would be timed against this binary's figures: none instead
    rm -f .gpu/libgstimdn.so.xz
    echo "no $cuda_target/libgstimdn.so (scripts/build-cuda.sh without CLI_ONLY): the element step will be skipped"
fi
# GStreamer for the element step: the packages' .deb files as they are (their data is xz
# already), in the versions this machine's package lists offer (those its GStreamer -dev
# packages, which the plugin builds against, come from)
mkdir -p .gpu/gst
pkgs=$(sed 's/#.*//' scripts/gpu-gst-packages.txt | xargs)
missing=""
for p in $pkgs; do
    compgen -G ".gpu/gst/${p}_*.deb" >/dev/null || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt=(apt-get)
    # without the package lists (a fresh container), a private copy: no root, / untouched
    # shellcheck disable=SC2086 # one word a package
    if ! apt-cache show $missing >/dev/null 2>&1; then
        lists=$(mktemp -d)
        mkdir -p "$lists/partial"
        apt=(apt-get "-oDir::State::Lists=$lists")
        "${apt[@]}" update -qq
    fi
    # shellcheck disable=SC2086 # one word a package
    (cd .gpu/gst && "${apt[@]}" download $missing)
fi
# the files of packages no longer listed would be unpacked too: removed
for f in .gpu/gst/*.deb; do
    name=$(basename "$f"); name=${name%%_*}
    case " $pkgs " in *" $name "*) ;; *) rm -f "$f" ;; esac
done
du -sh .gpu/*
du -sh .gpu
