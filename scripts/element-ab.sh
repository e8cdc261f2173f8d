#!/usr/bin/env bash
# Frames per second of two or more builds of the element, alternated round by round in one run
# (the machine is shared and noisy: only an interleaved comparison says which is faster).
#
#   scripts/element-ab.sh DIR...      each DIR holds a libgstimdn.so (e.g. a copy of
#                                     target/release/libgstimdn.so from another commit)
# Environment: SIZE=640x360 FORMAT=I420 FRAMES=150 ROUNDS=5 DEPTHS="1" THREADS=2 SCALE=2
#              WEIGHTS=weights/imdn_rtc_x2.safetensors
# Prints each round and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
SIZE=${SIZE:-640x360} FORMAT=${FORMAT:-I420} FRAMES=${FRAMES:-150} ROUNDS=${ROUNDS:-5}
DEPTHS=${DEPTHS:-1} THREADS=${THREADS:-2} SCALE=${SCALE:-2}
WEIGHTS=${WEIGHTS:-weights/imdn_rtc_x2.safetensors}
w=${SIZE%x*} h=${SIZE#*x}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "gst-launch-1.0 videotestsrc num-buffers=$FRAMES ! video/x-raw,format=$FORMAT,width=$w,height=$h" \
    "! imdnupscale scale=$SCALE model-path=$WEIGHTS n-threads=$THREADS max-frames-in-flight=D ! fakesink sync=false"
for r in $(seq "$ROUNDS"); do
    line="round $r:"
    for d in $DEPTHS; do
        for i in $(seq $#); do
            dir=${!i}
            out=$(GST_PLUGIN_PATH=$dir GST_REGISTRY=$tmp/registry-$i.bin gst-launch-1.0 \
                videotestsrc num-buffers="$FRAMES" \
                ! video/x-raw,format="$FORMAT",width="$w",height="$h",framerate=30/1 \
                ! imdnupscale scale="$SCALE" model-path="$WEIGHTS" n-threads="$THREADS" \
                max-frames-in-flight="$d" ! fakesink sync=false 2>&1) || { echo "$out" >&2; exit 1; }
            t=$(echo "$out" | sed -n 's/.*Execution ended after \([0-9:.]*\).*/\1/p' \
                | awk -F: '{print $1*3600 + $2*60 + $3}')
            fps=$(python3 -c "print(f'{($FRAMES - 1)/$t:.2f}')")
            echo "$fps" >>"$tmp/D$d-$i"
            line="$line D=$d $(basename "$dir") $fps"
        done
    done
    echo "$line"
done
echo "medians over $ROUNDS rounds, $SIZE $FORMAT → ×$SCALE, $THREADS threads:"
for d in $DEPTHS; do
    for i in $(seq $#); do
        dir=${!i}
        m=$(sort -g "$tmp/D$d-$i" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
        printf '  D=%s %-24s %7.2f fps\n' "$d" "$(basename "$dir")" "$m"
    done
done
