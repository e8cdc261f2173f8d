#!/usr/bin/env bash
# The long CPU training runs behind weights/, started or resumed in the background.
#
#   scripts/train-runs.sh start    # resume each run from its newest checkpoint (or start it)
#   scripts/train-runs.sh status   # last progress line and validation of each run
#   scripts/train-runs.sh stop     # stop them (a later start resumes from the checkpoints)
#
# Runs live in $IMDN_RUNS (default ~/.cache/imdn/runs), data in $IMDN_DATA (default
# ~/.cache/imdn/data2k, made by `scripts/prepare-data.sh --max-side 2040 --out ...`). The binary
# is copied out of target/ first, so rebuilding while they run does not touch it.
# IMDN ×2 (64 channels) takes the cores at normal priority; the RTC runs, far into their slow
# tail, run at nice 19 and fill the gaps of its thread pool. weights/README.md has each run's
# history and how its weights were exported.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${IMDN_RUNS:-$HOME/.cache/imdn/runs}
data=${IMDN_DATA:-$HOME/.cache/imdn/data2k}
bin=$runs/imdn-bin

# name nice threads args...
RUNS=(
    "imdn_x2 0 2 --variant imdn --scale 2 --steps 200000 --lr 2e-4 --halve-every 40000 --seed 12 --checkpoint-every 250"
    "rtc_x2b 19 2 --variant rtc --scale 2 --steps 80000 --lr 2e-4 --halve-every 20000 --seed 2 --checkpoint-every 500"
    "rtc_x3 19 1 --variant rtc --scale 3 --steps 80000 --lr 2e-4 --halve-every 20000 --seed 3 --checkpoint-every 500"
    "rtc_x4 19 1 --variant rtc --scale 4 --steps 80000 --lr 2e-4 --halve-every 20000 --seed 4 --checkpoint-every 500"
)

# a run's process, whichever way its --out was spelt
pattern() { echo "--out ([^ ]*/)?$1 "; }
running() { pgrep -f -- "$(pattern "$1")" > /dev/null; }

case "${1:-}" in
    start)
        [ -d "$data/train" ] || { echo "no training data in $data (scripts/prepare-data.sh)" >&2; exit 1; }
        cargo build --release --quiet -p imdn
        mkdir -p "$runs"
        cp target/release/imdn "$bin.new" && mv "$bin.new" "$bin"
        for spec in "${RUNS[@]}"; do
            read -r name nice threads args <<< "$spec"
            if running "$name"; then echo "$name: already running"; continue; fi
            resume=""
            ls "$runs/$name"/checkpoint-*.safetensors > /dev/null 2>&1 && resume=--resume
            # shellcheck disable=SC2086  # args is a list of options
            nohup nice -n "$nice" "$bin" --threads "$threads" train $args \
                --data "$data/train" --val "$data/val" --val-every 1000 --patch 48 --batch 16 \
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
            pkill -f -- "$(pattern "$name")" && echo "$name: stopped" || true
        done
        ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
esac
