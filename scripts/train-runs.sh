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
# IMDN ×2, the one run within reach of its floor in a session (0.07 dB short at step 23 000,
# gaining ≈ 0.01 dB per 1000 steps), has both cores to itself: `start imdn_x2` alone
# and leave the others stopped. On two threads it makes ≈ 0.82 steps/s, 1.5× the 0.55 it made
# on one. The others run one thread each (single-threaded runs use the cores better than one
# run on both): the three RTC runs at nice 5 share a core (an RTC step is ≈ 20× cheaper than a
# 64-channel one, so a third of a core is ≈ 2 steps/s each, where at nice 19 they made 0.1);
# the ×3/×4 fine-tunes (0.07 steps/s at nice 10: nowhere near their floors within a session)
# and IMDN_AS (past its floors) are parked at nice 19 and take what is left. weights/README.md
# has each run's history and how its weights were exported.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${IMDN_RUNS:-$HOME/.cache/imdn/runs}
data=${IMDN_DATA:-$HOME/.cache/imdn/data2k}
bin=$runs/imdn-bin

# The IMDN ×3/×4 runs start from the ×2 run's body (as the authors fine-tuned theirs): its
# checkpoint at step 4000, copied aside as imdn_x2-step4000.safetensors. IMDN_AS started from
# the ×2 body at step 6000 with its input skip (run imdn_as_noscale), and was restarted with its
# scale input from that run's step 2250 (imdn_as-step2250.safetensors, by `imdn convert`).
# A resumed run reads only its own checkpoints.
init=$runs/imdn_x2-step4000.safetensors
init_as=$runs/imdn_as-step2250.safetensors

# name nice threads args...
RUNS=(
    "imdn_x2 0 2 --variant imdn --scale 2 --steps 200000 --lr 2e-4 --halve-every 10000 --seed 12 --ema 0.999 --checkpoint-every 250 --val-every 1000"
    "imdn_x3 19 1 --variant imdn --scale 3 --steps 100000 --lr 2e-4 --halve-every 20000 --seed 13 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $init"
    "imdn_x4 19 1 --variant imdn --scale 4 --steps 100000 --lr 2e-4 --halve-every 20000 --seed 14 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $init"
    "imdn_as 19 1 --variant as --steps 100000 --lr 2e-4 --halve-every 20000 --seed 16 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $init_as"
    "rtc_x2b 5 1 --variant rtc --scale 2 --steps 80000 --lr 2e-4 --halve-every 20000 --seed 2 --ema 0.999 --checkpoint-every 500 --val-every 1000"
    "rtc_x3 5 1 --variant rtc --scale 3 --steps 80000 --lr 2e-4 --halve-every 20000 --seed 3 --ema 0.999 --checkpoint-every 500 --val-every 1000"
    "rtc_x4 5 1 --variant rtc --scale 4 --steps 80000 --lr 2e-4 --halve-every 20000 --seed 4 --ema 0.999 --checkpoint-every 500 --val-every 1000"
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
            echo "$name: started ${resume:-from scratch} (log $runs/$name.log)"
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
