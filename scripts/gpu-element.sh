#!/usr/bin/env bash
# The imdnupscale element in a pipeline, in frames per second: step 4 of scripts/gpu-check.sh,
# runnable alone (here too, on the CPU build, to check the carried GStreamer). Per model:
#   gst-launch-1.0 videotestsrc num-buffers=N ! video/x-raw,format=NV12,width=W,height=H
#     ! imdnupscale scale=S model-path=CK device=D precision=f16 cuda-kernels=K fallback-to-cpu=false
#     ! fakesink sync=false silent=false
# timed by scripts/element_fps.py at the sink over the buffers after the first SKIP (start-up
# excluded within the one run); videotestsrc alone into fakesink is timed too, the source's
# ceiling. fallback-to-cpu=false: a CUDA failure must fail the figure, not time the CPU.
#
# The GPU machine has no GStreamer: the Debian packages scripts/gpu-prepare.sh put in .gpu/gst
# are unpacked into a temporary folder (dpkg-deb -x, or scripts/deb_extract.py where dpkg is
# missing; never into /), and the element, gst-launch-1.0 and its plugin scanner run from there
# with a private registry and only the three plugins the pipeline uses on the system path.
# The plugin is .gpu/libgstimdn.so.xz (the CUDA build, stripped) unpacked, or $PLUGIN.
#
# Environment:
#   RES=results.jsonl      where the JSON lines go (appended; default $OUT/results.jsonl or
#                          /tmp/gpu-check/results.jsonl)
#   CK=DIR                 the checkpoints (default .gpu/reference/imdn-checkpoints, else
#                          ../shared/reference/imdn-checkpoints)
#   ELEMENT_SPECS="IMDN_x2:1920x1080 model_RTC:1920x1080 IMDN_x4:960x540"  (model:WxH; the
#                          scale is the name's _xN, else 2; checkpoints not carried are skipped)
#   ELEMENT_DEVICE=cuda    the element's device (cpu: a check of the bundle on any machine)
#   ELEMENT_KERNELS="ours:300 candle:40"  cuda-kernels and frames each (candle's f16 IMDN ×2
#                          ran about 3 fps on the H200: fewer frames); all models with the first,
#                          then with the next; the first 30 buffers are start-up (a sixth of
#                          them under 180 frames)
#   ELEMENT_PRECISION=f16  ELEMENT_TIMEOUT=90: seconds a pipeline may take (one stopped there
#                          counts the frames that came through); ELEMENT_BUDGET=240: seconds
#                          for the whole step (gpu-check.sh must finish within 8 minutes)
#   GST_DEBS=.gpu/gst      PLUGIN=FILE (.so or .so.xz)   DEB_EXTRACT=python (skip dpkg-deb)
#   ELEMENT_MAPS=DIR       write the shared objects each gst-launch-1.0 mapped (the proof that
#                          GStreamer ran from the bundle) into DIR
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
res=${RES:-${OUT:-/tmp/gpu-check}/results.jsonl}
mkdir -p "$(dirname "$res")"
ck=${CK:-.gpu/reference/imdn-checkpoints}
[ -d "$ck" ] || ck=../shared/reference/imdn-checkpoints
device=${ELEMENT_DEVICE:-cuda}
precision=${ELEMENT_PRECISION:-f16}
debs=${GST_DEBS:-.gpu/gst}
fail=0

# not carried: skipped, as a checkpoint not carried is (the gpu-result lines then say NA)
shopt -s nullglob
set -- "$debs"/*.deb
if [ $# -eq 0 ]; then
    echo "element: no GStreamer packages in $debs (scripts/gpu-prepare.sh): skipped"
    exit 0
fi
plugin=${PLUGIN:-.gpu/libgstimdn.so.xz}
[ -f "$plugin" ] || plugin=target/cuda/release/libgstimdn.so
if [ ! -f "$plugin" ]; then
    echo "element: no plugin (.gpu/libgstimdn.so.xz, $plugin): skipped"
    exit 0
fi
root=$(mktemp -d /tmp/gst-bundle.XXXXXX)
trap 'rm -rf "$root"' EXIT
if command -v dpkg-deb >/dev/null && [ "${DEB_EXTRACT:-}" != python ]; then
    for deb; do dpkg-deb -x "$deb" "$root" || exit 1; done
else
    python3 scripts/deb_extract.py "$root" "$@" || exit 1
fi
echo "element: GStreamer from $# packages of $debs, unpacked into $root"

mkdir -p "$root/imdn"
case "$plugin" in
    *.xz) python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
              "$plugin" "$root/imdn/libgstimdn.so" || exit 1 ;;
    *) cp "$plugin" "$root/imdn/libgstimdn.so" || exit 1 ;;
esac
echo "element: plugin $plugin"

# Only the plugins the pipeline uses on the system path: the package's others (ogg, opus,
# pango...) need libraries not carried, and each would be scanned and fail to load.
gst=$root/usr/lib/x86_64-linux-gnu/gstreamer-1.0
mkdir -p "$root/plugins"
for p in coreelements videotestsrc videoconvertscale; do
    ln -s "$gst/libgst$p.so" "$root/plugins/"
done
# Debian 12 puts some libraries under /lib (zlib, liblzma, libbz2), the rest under /usr/lib.
# The CUDA libraries scripts/gpu-env.sh found stay on the path, after the carried ones.
export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$root/usr/bin:$PATH
# GStreamer reads the _1_0 names first: both, so a stray setting in the environment cannot win
export GST_PLUGIN_SYSTEM_PATH_1_0=$root/plugins GST_PLUGIN_SYSTEM_PATH=$root/plugins
export GST_PLUGIN_PATH_1_0=$root/imdn GST_PLUGIN_PATH=$root/imdn
export GST_REGISTRY_1_0=$root/registry.bin GST_REGISTRY=$root/registry.bin
scanner=$root/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner
export GST_PLUGIN_SCANNER_1_0=$scanner GST_PLUGIN_SCANNER=$scanner

# every library the pipeline loads must resolve: the carried ones, the image's libc/libstdc++,
# the CUDA libraries (gpu-env.sh) and the driver's libcuda
missing=$(for f in "$root/usr/bin/gst-launch-1.0" "$scanner" "$root"/plugins/*.so "$root/imdn/libgstimdn.so"; do
    ldd "$f" | grep 'not found' | sed "s|^|$(basename "$f"): |"; done)
if [ -n "$missing" ]; then
    echo "element: FAIL, unresolved libraries:"; echo "$missing"
    exit 1
fi
# the registry once (scanning the plugins), and a check that the element is there
if ! gst-inspect-1.0 imdnupscale >/dev/null; then
    echo "element: FAIL, gst-inspect-1.0 does not find imdnupscale"
    gst-inspect-1.0 -b
    exit 1
fi
[ -n "${ELEMENT_MAPS:-}" ] && mkdir -p "$ELEMENT_MAPS"

run() { # model size kernels frames timeout: one pipeline timed; the JSON line to $res
    local m=$1 size=$2 kernels=$3 frames=$4 timeout=$5 w h scale skip extra maps=()
    w=${size%x*} h=${size#*x}
    scale=2; [[ $m =~ _x([234])$ ]] && scale=${BASH_REMATCH[1]}
    skip=$((frames >= 180 ? 30 : frames / 6))
    extra=$(printf '{"check":"element","weights":"%s","size":"%s","scale":%s,"device":"%s","precision":"%s","kernels":"%s","frames":%s}' \
        "$m" "$size" "$scale" "$device" "$precision" "$kernels" "$frames")
    [ -n "${ELEMENT_MAPS:-}" ] && maps=(--maps "$ELEMENT_MAPS/$m-$kernels.maps")
    python3 scripts/element_fps.py --skip "$skip" --timeout "$timeout" \
        --json-extra "$extra" "${maps[@]}" -- \
        gst-launch-1.0 -v videotestsrc num-buffers="$frames" \
        ! video/x-raw,format=NV12,width="$w",height="$h" \
        ! imdnupscale scale="$scale" model-path="$ck/$m.pth" device="$device" \
          precision="$precision" cuda-kernels="$kernels" fallback-to-cpu=false \
        ! fakesink sync=false silent=false >> "$res" || fail=1
    tail -n 1 "$res"
}

specs=${ELEMENT_SPECS-IMDN_x2:1920x1080 model_RTC:1920x1080 IMDN_x4:960x540}
# the source alone at each size: the ceiling the pipeline's rate is under
for size in $(for spec in $specs; do echo "${spec##*:}"; done | sort -u); do
    python3 scripts/element_fps.py --skip 30 --json-extra \
        "{\"check\":\"element_source\",\"size\":\"$size\",\"frames\":300}" -- \
        gst-launch-1.0 -v videotestsrc num-buffers=300 \
        ! video/x-raw,format=NV12,width="${size%x*}",height="${size#*x}" \
        ! fakesink sync=false silent=false >> "$res" || fail=1
    tail -n 1 "$res"
done
# Every model with our kernels first (the gpu-result figures), then with candle's, within the
# step's budget: a run gets at most what is left of it, and none starts with under 15 s left.
budget=${ELEMENT_BUDGET:-240}
for k in ${ELEMENT_KERNELS-ours:300 candle:40}; do
    for spec in $specs; do
        m=${spec%%:*}; size=${spec##*:}
        if [ ! -f "$ck/$m.pth" ]; then echo "element: $m not carried, skipped"; continue; fi
        left=$((budget - SECONDS))
        if [ $left -lt 15 ]; then echo "element: budget spent, $m ${k%%:*} skipped"; continue; fi
        timeout=${ELEMENT_TIMEOUT:-90}
        [ "$timeout" -gt $left ] && timeout=$left
        run "$m" "$size" "${k%%:*}" "${k##*:}" "$timeout"
    done
done
exit $fail
