#!/usr/bin/env bash
# Training on a lent GPU machine (H100/H200) for a fixed time: each run below continues from a
# shipped model (its weights, a fresh Adam) on the tiles scripts/gpu-prepare.sh --train-data
# put in .gpu/train, all runs at once on the one GPU (each alone leaves it mostly idle: a
# small network's step is many short kernels). Each stops itself after TRAIN_SECONDS
# (`imdn train --time-limit`) with a checkpoint, which comes back in $OUT as <run>.safetensors:
# `imdn train --resume` continues it on any machine, `imdn convert` makes it a weights file.
# Meanwhile gpu-check.sh's Set5 parity runs; afterwards, if QUICK_BENCH=1, its timing of a
# training step's phases (forward, backward, Adam), the GPU alone.
#   TRAIN_SECONDS  training time per run (default 400)
#   RUNS           the runs to start, by name (default: all below)
#   DEVICE         where they train (default cuda; cpu for a dry run of this script)
# Logs: $OUT/gpu-train.log, and every run's log and train-log.jsonl in $OUT/logs.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-train}
mkdir -p "$out"
exec > >(tee -a "$out/gpu-train.log") 2>&1
# shellcheck source=gpu-env.sh
source scripts/gpu-env.sh
seconds=${TRAIN_SECONDS:-400}
data=.gpu/train
[ -d "$data" ] || { echo "FAIL: no $data (scripts/gpu-prepare.sh --train-data DIR)"; exit 1; }
work=/tmp/gpu-runs
mkdir -p "$work"

# name, variant, scale, shipped weights it continues, batch, LR patch, lr, halve every, weight
# average decay, seed; the 64-channel models first (issue 45: IMDN ×2 is the furthest behind
# the authors' on man-made scenes). Larger batches and patches than the CPU runs' 16 of 48 px: the GPU's
# cost per step hardly grows with them.
all=(
    "imdn_x2 imdn 2 weights/imdn_x2.safetensors 32 64 1e-4 1000 0.998 60"
    "imdn_x3 imdn 3 weights/imdn_x3.safetensors 32 64 1e-4 1000 0.998 61"
    "imdn_x4 imdn 4 weights/imdn_x4.safetensors 32 64 1e-4 1000 0.998 62"
    "rtc_x2 rtc 2 weights/imdn_rtc_x2.safetensors 64 64 1e-4 3000 0.999 63"
    "rtc_x3 rtc 3 weights/imdn_rtc_x3.safetensors 64 64 1e-4 3000 0.999 64"
    "rtc_x4 rtc 4 weights/imdn_rtc_x4.safetensors 64 64 1e-4 3000 0.999 65"
)
pids=()
for line in "${all[@]}"; do
    read -r name variant scale init batch patch lr halve ema seed <<< "$line"
    case " ${RUNS:-$name} " in *" $name "*) ;; *) continue ;; esac
    "$bin" train --device "${DEVICE:-cuda}" --threads 3 --variant "$variant" --scale "$scale" \
        --data "$data" --out "$work/$name" --steps 1000000 --time-limit "$seconds" \
        --batch "$batch" --patch "$patch" --lr "$lr" --halve-every "$halve" --ema "$ema" \
        --seed "$seed" --init-from "$init" --checkpoint-every 500 --keep 1 --log-every 100 \
        > "$work/$name.log" 2>&1 &
    pids+=($!)
    echo "started $name (pid $!)"
done
# a run that cannot start fails within seconds: then stop early, while a retry still fits
sleep "${START_WAIT:-45}"
alive=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
echo "runs alive after ${START_WAIT:-45} s: $alive of ${#pids[@]}"
for f in "$work"/*.log; do echo "--- $f"; tail -n 3 "$f"; done
if [ "$alive" -eq 0 ]; then
    tar czf "$out/logs.tgz" -C "$work" . 2>/dev/null
    exit 1
fi

echo "== parity (beside the training: a correctness check, not a timing)"
OUT=/tmp/gpu-check BENCH_SPECS="" PHASE_SPECS="" scripts/gpu-check.sh > /dev/null 2>&1
cat /tmp/gpu-check/gpu-check.log

fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
for line in "${all[@]}"; do
    read -r name _ <<< "$line"
    [ -d "$work/$name" ] || continue
    echo "--- $name"
    tail -n 4 "$work/$name.log"
    ck=$(ls "$work/$name"/checkpoint-*.safetensors 2>/dev/null | sort -V | tail -n 1)
    [ -n "$ck" ] && cp "$ck" "$out/$name.safetensors"
done
cp -r /tmp/gpu-check "$work/" 2>/dev/null
if [ "${QUICK_BENCH:-0}" = 1 ]; then
    echo "== training step phases (alone on the GPU)"
    OUT=/tmp/gpu-bench PARITY=0 BENCH_SPECS="" timeout 90 scripts/gpu-check.sh > /dev/null 2>&1
    grep -v '^{' /tmp/gpu-bench/gpu-check.log | tail -n 30
    cp -r /tmp/gpu-bench "$work/" 2>/dev/null
fi
tar czf "$out/logs.tgz" -C "$work" --exclude='*.safetensors' .
ls -la "$out"
echo "gpu-train finished, failures: $fail"
exit $fail
