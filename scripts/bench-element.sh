#!/usr/bin/env bash
# Frames per second of the imdnupscale element in a pipeline vs the library's bare forward on
# the same frame size, interleaved in one run (the machine is shared and noisy: compare the
# ratios, not the absolute numbers across runs).
#
#   scripts/bench-element.sh [WEIGHTS]
#
# WEIGHTS: any IMDN weights file (safetensors or the authors' .pth, e.g.
# ../shared/reference/imdn-checkpoints/model_RTC.pth); default: random-init IMDN_RTC ×2
# (speed does not depend on the values). Environment:
#   SIZE=320x180   input frame size       FRAMES=200  frames per pipeline run
#   ROUNDS=3       interleaved rounds     ITERS=20    timed forwards per bench run
#   THREADS=nproc  CPU threads (imdn --threads / n-threads)
#   SCALE=2        the element's scale (must match fixed-scale weights)
#   DEVICE=cpu     cpu or cuda (cuda needs a CUDA build: CARGO_FLAGS="--features cuda")
#   DEPTHS="0 2"   max-frames-in-flight values
#   FORMAT=I420    the pipeline's video format (any the element takes, e.g. NV12, RGB)
#   PRECISION=f32  the network's arithmetic (int8: calibrated IMDN_RTC weights, e.g.
#                  weights/imdn_rtc_x2.safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-320x180} FRAMES=${FRAMES:-200} ROUNDS=${ROUNDS:-3} ITERS=${ITERS:-20}
THREADS=${THREADS:-$(nproc)} SCALE=${SCALE:-2} DEVICE=${DEVICE:-cpu} DEPTHS=${DEPTHS:-"0 2"}
# I420 by default: the format live sources and decoders give, and the one issue 44's figure is for
FORMAT=${FORMAT:-I420}
PRECISION=${PRECISION:-f32}
w=${SIZE%x*} h=${SIZE#*x}
# shellcheck disable=SC2086
cargo build --release -q -p imdn --bin imdn ${CARGO_FLAGS:-}
# shellcheck disable=SC2086
cargo build --release -q -p gst-plugin-imdn --lib --example init-weights ${CARGO_FLAGS:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
weights=${1:-}
if [ -z "$weights" ]; then
    weights=$tmp/rtc_x2.safetensors
    target/release/examples/init-weights rtc 2 "$weights"
fi
# the freshly built plugin, with a private registry (no stale cache, no installed copy)
export GST_PLUGIN_PATH=$PWD/target/release GST_REGISTRY=$tmp/registry.bin
gst-inspect-1.0 imdnupscale >/dev/null

bench_cmd=(target/release/imdn --threads "$THREADS" bench --weights "$weights" --device "$DEVICE"
    --size "$SIZE" --iters "$ITERS" --precision "$PRECISION" --json)
pipe_args() {
    pipe=(gst-launch-1.0 videotestsrc num-buffers="$FRAMES"
        ! video/x-raw,format="$FORMAT",width="$w",height="$h",framerate=30/1
        ! imdnupscale scale="$SCALE" model-path="$weights" device="$DEVICE"
        precision="$PRECISION" n-threads="$THREADS" max-frames-in-flight="$1" ! fakesink sync=false)
}
# the element's network frame: the frame and its edge margin (the element's edge mode)
margin_cmd=("${bench_cmd[@]}" --edge replicate)
echo "bare forward:  ${bench_cmd[*]}"
echo "bare, margin:  ${margin_cmd[*]}"
for d in $DEPTHS; do pipe_args "$d"; echo "element D=$d:  ${pipe[*]}"; done
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $THREADS threads"

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
bare=()
margin=()
fps_of() { "$@" 2>/dev/null | tail -1 | python3 -c 'import json,sys; print("%.2f" % (1000 / json.load(sys.stdin)["ms_per_frame"]))'; }
declare -A elem
for r in $(seq "$ROUNDS"); do
    fps=$(fps_of "${bench_cmd[@]}")
    bare+=("$fps")
    line="round $r ($FORMAT): bare $fps fps"
    fps=$(fps_of "${margin_cmd[@]}")
    margin+=("$fps")
    line="$line, bare with margin $fps fps"
    for d in $DEPTHS; do
        # gst-launch times PLAYING → EOS; the first frame went through during preroll
        pipe_args "$d"
        out=$("${pipe[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
        t=$(echo "$out" | sed -n 's/.*Execution ended after \([0-9:.]*\).*/\1/p' \
            | awk -F: '{print $1*3600 + $2*60 + $3}')
        fps=$(python3 -c "print(f'{($FRAMES - 1)/$t:.2f}')")
        elem[$d]="${elem[$d]:-} $fps"
        line="$line, D=$d $fps fps"
    done
    echo "$line"
done
b=$(echo "${bare[*]}" | median)
m=$(echo "${margin[*]}" | median)
echo "medians over $ROUNDS rounds, $SIZE $FORMAT → ×$SCALE, $DEVICE $PRECISION, $THREADS threads:"
printf '  %-36s %7.2f fps\n' "bare forward (imdn bench)" "$b"
printf '  %-36s %7.2f fps\n' "bare, edge margin (--edge replicate)" "$m"
for d in $DEPTHS; do
    e=$(echo "${elem[$d]}" | median)
    printf '  %-36s %7.2f fps   element / bare = %.2f, / bare with margin = %.2f\n' \
        "element, max-frames-in-flight=$d" "$e" "$(python3 -c "print($e/$b)")" \
        "$(python3 -c "print($e/$m)")"
done
