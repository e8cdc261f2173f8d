#!/usr/bin/env bash
# The long CPU training runs behind weights/, started or resumed in the background.
#
#   scripts/train-runs.sh start [NAME...]   # resume each run (or those named) from its newest
#                                           # checkpoint, or start it
#   scripts/train-runs.sh status            # last progress line and validation of each run
#   scripts/train-runs.sh stop [NAME...]    # stop them (a later start resumes from the checkpoints)
#
# Runs live in $IMDN_RUNS (default ~/.cache/imdn/runs), data in $IMDN_DATA (default
# ~/.cache/imdn/data2k, made by `scripts/prepare-data.sh --max-side 2040 --out ...`). The binary
# is copied out of target/ first, so rebuilding while they run does not touch it.
# IMDN ×2, the one run within reach of its floor in a session (0.05 dB short at step 26 000,
# gaining ≈ 0.01 dB per 1000 steps), has both cores at normal priority: on two threads it uses
# ≈ 1.4 of them (0.82 steps/s against 0.55 on one thread on an AMD EPYC machine, 0.47 on two on
# the Intel Xeon one of 2026-11-28). RTC ×3, closest of the RTC runs, takes what it leaves at
# nice 19 on one thread: an RTC step is ≈ 20× cheaper than a 64-channel one, so those idle
# cycles make ≈ 2.4–2.8 steps/s, and IMDN ×2 keeps its step rate (measured within 2 %).
# weights/README.md has each run's history and how its weights were exported.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${IMDN_RUNS:-$HOME/.cache/imdn/runs}
data=${IMDN_DATA:-$HOME/.cache/imdn/data2k}
bin=$runs/imdn-bin

# The checkpoints of every run were lost with the machine they were on (2026-11-28; IMDN ×2 at
# step 24 000, RTC ×2/×3/×4 at 53 000 / 50 000 / 45 500). Each run in CONTINUED goes on from
# what survived: its shipped weights (the weight average), taken from the commit that shipped
# them so that later exports do not change the starting point, at the learning rate it had
# there, with a fresh Adam state. Runs imdn_x2c and rtc_x3c went on that way from steps
# 23 000 / 48 000 (commits 20f6b61 / 35961fd) to 26 000 / 67 000, then lost their checkpoints
# at the end of a session too; imdn_x2d and rtc_x3d go on from those exports: IMDN ×2 at
# 5e-5 (halving at step 30 000), RTC ×3 at 2.5e-5 (halving at 72 000). The other runs
# (RTC ×2/×4, IMDN ×3/×4, IMDN_AS) can go on the same way: a line here and one in RUNS.
# weights/README.md has the commands of the runs before, which this table held.
# name, the file its --init-from names, the git object it is made from
CONTINUED=(
    "imdn_x2d $runs/imdn_x2-step26000.safetensors 5e8cb07:weights/imdn_x2.safetensors"
    "rtc_x3d $runs/rtc_x3-step67000.safetensors 5e8cb07:weights/imdn_rtc_x3.safetensors"
)

# name nice threads args...
RUNS=(
    "imdn_x2d 0 2 --variant imdn --scale 2 --steps 174000 --lr 5e-5 --halve-every 4000 --seed 24 --ema 0.999 --checkpoint-every 250 --val-every 1000 --init-from $runs/imdn_x2-step26000.safetensors"
    "rtc_x3d 19 1 --variant rtc --scale 3 --steps 13000 --lr 2.5e-5 --halve-every 5000 --seed 34 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step67000.safetensors"
)

# a run's process, whichever way its --out was spelt
pattern() { echo "--out ([^ ]*/)?$1( |$)"; }
running() { pgrep -f -- "$(pattern "$1")" > /dev/null; }

# whether the command line names run $1 (no names: every run)
chosen() {
    local name=$1; shift
    [ $# -eq 0 ] && return 0
    for n in "$@"; do [ "$n" = "$name" ] && return 0; done
    return 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    start)
        [ -d "$data/train" ] || { echo "no training data in $data (scripts/prepare-data.sh)" >&2; exit 1; }
        cargo build --release --quiet -p imdn
        mkdir -p "$runs"
        cp target/release/imdn "$bin.new" && mv "$bin.new" "$bin"
        for spec in "${CONTINUED[@]}"; do
            read -r name file object <<< "$spec"
            if chosen "$name" "$@" && [ ! -f "$file" ]; then
                git show "$object" > "$file.new" && mv "$file.new" "$file"
            fi
        done
        for spec in "${RUNS[@]}"; do
            read -r name nice threads args <<< "$spec"
            chosen "$name" "$@" || continue
            if running "$name"; then echo "$name: already running"; continue; fi
            resume=""
            ls "$runs/$name"/checkpoint-*.safetensors > /dev/null 2>&1 && resume=--resume
            # shellcheck disable=SC2086  # args is a list of options
            nohup nice -n "$nice" "$bin" --threads "$threads" train $args \
                --data "$data/train" --val "$data/val" --patch 48 --batch 16 \
                --min-detail 4 --out "$runs/$name" $resume >> "$runs/$name.log" 2>&1 &
            echo "$name: started ${resume:-afresh} (log $runs/$name.log)"
        done
        ;;
    status)
        for spec in "${RUNS[@]}"; do
            read -r name _ <<< "$spec"
            state=stopped; running "$name" && state=running
            echo "$name ($state): $(grep -a '^step [0-9]*/' "$runs/$name.log" 2>/dev/null | tail -n 1)"
            echo "    $(grep -a 'validation' "$runs/$name.log" 2>/dev/null | tail -n 1)"
        done
        ;;
    stop)
        for spec in "${RUNS[@]}"; do
            read -r name _ <<< "$spec"
            chosen "$name" "$@" || continue
            pkill -f -- "$(pattern "$name")" && echo "$name: stopped" || true
        done
        ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
esac
