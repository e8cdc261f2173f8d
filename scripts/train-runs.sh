#!/usr/bin/env bash
# The long CPU training runs behind weights/, started or resumed in the background.
#
#   scripts/train-runs.sh start [NAME...]   # resume each run (or those named) from its newest
#                                           # checkpoint, or start it
#   scripts/train-runs.sh plan [NAME...]    # say what start would do, start nothing
#   scripts/train-runs.sh status            # last progress line and validation of each run
#   scripts/train-runs.sh stop [NAME...]    # stop them (a later start resumes from the checkpoints)
#
# Runs live in $IMDN_RUNS (default ~/.cache/imdn/runs), data in $IMDN_DATA (default
# ~/.cache/imdn/data2k, made by `scripts/prepare-data.sh --max-side 2040 --out ...`); runs that
# name their own --data use $IMDN_DATA_2K1K (default ~/.cache/imdn/data2k1k, made by
# `scripts/prepare-data.sh --max-side 2040 --extra-side 1020 --out ...`), and those on the larger
# set in $IMDN_DATA_MORE (default ~/.cache/imdn/data2k1k-more: the same command with --more;
# validated on data2k1k's tiles, which it shares) or $IMDN_DATA_TRIXIE (default
# ~/.cache/imdn/data2k1k-trixie: with --more --trixie). These runs predate the procedural tiles
# of issue 45: add --no-structured to those commands to make their photograph-only sets (without
# it, a third of the training tiles are procedural). The binary is copied
# out of target/ first, so rebuilding while they run does not touch it.
# Priorities: IMDN ×2 on two threads uses ≈ 1.4 cores (0.82 steps/s against 0.55 on one thread
# on an AMD EPYC machine; 0.47–0.51 on two on an Intel Xeon one). Two 64-channel runs on one
# thread each make more in all (0.36 steps/s each for IMDN ×3 and ×4 on the Intel machine,
# 2026-11-29). RTC runs take what is left at nice 19 on one thread: an RTC step is ≈ 20×
# cheaper than a 64-channel one, so idle cycles make ≈ 2.4–2.8 steps/s, and IMDN ×2 beside
# them keeps its step rate (measured within 2 %). Start the runs a session has time for by name.
# weights/README.md has each run's history and how its weights were exported.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${IMDN_RUNS:-$HOME/.cache/imdn/runs}
data=${IMDN_DATA:-$HOME/.cache/imdn/data2k}
data2k1k=${IMDN_DATA_2K1K:-$HOME/.cache/imdn/data2k1k}
more=${IMDN_DATA_MORE:-$HOME/.cache/imdn/data2k1k-more}
trixie=${IMDN_DATA_TRIXIE:-$HOME/.cache/imdn/data2k1k-trixie}
bin=$runs/imdn-bin

# A run's checkpoints last only while sessions keep the same machine. So each continuation in
# CONTINUED starts from its predecessor's shipped weights (the weight average), taken from the
# commit that shipped them so that later exports do not move the starting point, with a fresh
# Adam state; it starts only where the predecessor's checkpoints are gone (RUNS below). A run
# that a later one supersedes only ever resumes, so it needs no line here: a resume reads its
# checkpoint, not its --init-from. weights/README.md has each run's history.
# name, the file its --init-from names, the git object it is made from
CONTINUED=(
    "imdn_x2f $runs/imdn_x2-step26000.safetensors 5e8cb07:weights/imdn_x2.safetensors"
    "imdn_x2g $runs/imdn_x2-step27000.safetensors c7c2a2f:weights/imdn_x2.safetensors"
    "imdn_x3c $runs/imdn_x3-step10500.safetensors 823e3e0:weights/imdn_x3.safetensors"
    "imdn_x4c $runs/imdn_x4-step10500.safetensors 823e3e0:weights/imdn_x4.safetensors"
    "imdn_x3e $runs/imdn_x3-step11500.safetensors 25b9809:weights/imdn_x3.safetensors"
    "imdn_x4e $runs/imdn_x4-step12500.safetensors 25b9809:weights/imdn_x4.safetensors"
    "rtc_x2c $runs/rtc_x2-step54500.safetensors 35961fd:weights/imdn_rtc_x2.safetensors"
    "rtc_x3e $runs/rtc_x3-step77000.safetensors 6c5de17:weights/imdn_rtc_x3.safetensors"
    "rtc_x4c $runs/rtc_x4-step43000.safetensors 35961fd:weights/imdn_rtc_x4.safetensors"
    "rtc_x2d $runs/rtc_x2-step69500.safetensors 03d9f9f:weights/imdn_rtc_x2.safetensors"
    "imdn_x2h $runs/imdn_x2-step29500.safetensors bc9362a:weights/imdn_x2.safetensors"
    "rtc_x3f $runs/rtc_x3-step88000.safetensors bc9362a:weights/imdn_rtc_x3.safetensors"
    "imdn_x3i $runs/imdn_x3-step14500-gpu236.safetensors 2986bab:weights/imdn_x3.safetensors"
    "imdn_x4h $runs/imdn_x4-step16500-gpu232.safetensors 2986bab:weights/imdn_x4.safetensors"
    "imdn_x3k $runs/imdn_x3-step14500-gpu236.safetensors 2986bab:weights/imdn_x3.safetensors"
    "imdn_x4i $runs/imdn_x4-step16500-gpu232.safetensors 2986bab:weights/imdn_x4.safetensors"
    "rtc_x3g $runs/rtc_x3-step105000.safetensors e5c5330:weights/imdn_rtc_x3.safetensors"
    "rtc_x4d $runs/rtc_x4-step66000.safetensors e2c3877:weights/imdn_rtc_x4.safetensors"
    "rtc_x3i $runs/rtc_x3-step123000.safetensors 3f57f36:weights/imdn_rtc_x3.safetensors"
    "rtc_x3j $runs/rtc_x3-step141000.safetensors 14ffdab:weights/imdn_rtc_x3.safetensors"
    "rtc_x4e $runs/rtc_x4-step88000.safetensors 79b7ae1:weights/imdn_rtc_x4.safetensors"
    "rtc_x4f $runs/rtc_x4-step88000.safetensors 79b7ae1:weights/imdn_rtc_x4.safetensors"
    "rtc_x3k $runs/rtc_x3-step158000.safetensors 35cb4d5:weights/imdn_rtc_x3.safetensors"
    "rtc_x3l $runs/rtc_x3-step158000.safetensors 35cb4d5:weights/imdn_rtc_x3.safetensors"
    "rtc_x3m $runs/rtc_x3-step158000.safetensors 35cb4d5:weights/imdn_rtc_x3.safetensors"
    "rtc_x3n $runs/rtc_x3-step158000.safetensors 35cb4d5:weights/imdn_rtc_x3.safetensors"
    "rtc_x2f $runs/rtc_x2-step81500.safetensors f3f21ae:weights/imdn_rtc_x2.safetensors"
    "imdn_x3j $runs/imdn_x3-step14500-gpu236.safetensors 2986bab:weights/imdn_x3.safetensors"
    "rtc_x4g $runs/rtc_x4-step88000.safetensors 79b7ae1:weights/imdn_rtc_x4.safetensors"
    "rtc_x2g $runs/rtc_x2-step100000.safetensors 8f1753d:weights/imdn_rtc_x2.safetensors"
    "imdn_x4l $runs/imdn_x4-x4j2800.safetensors 623786d:weights/imdn_x4.safetensors"
    "imdn_x3n $runs/imdn_x3-x3l4000.safetensors 623786d:weights/imdn_x3.safetensors"
    "imdn_x4m $runs/imdn_x4-x4l2400.safetensors 0014b38:weights/imdn_x4.safetensors"
    "imdn_x3o $runs/imdn_x3-x3n2400.safetensors 0014b38:weights/imdn_x3.safetensors"
    "imdn_x4n $runs/imdn_x4-x4m1600.safetensors edb645f:weights/imdn_x4.safetensors"
    "imdn_x3p $runs/imdn_x3-x3o2400.safetensors edb645f:weights/imdn_x3.safetensors"
    "imdn_x4o $runs/imdn_x4-x4n2800.safetensors 703cdec:weights/imdn_x4.safetensors"
    "imdn_x3q $runs/imdn_x3-x3p2800.safetensors 703cdec:weights/imdn_x3.safetensors"
    "imdn_x4p $runs/imdn_x4-x4o2000.safetensors 92e6aa8:weights/imdn_x4.safetensors"
    "imdn_x3r $runs/imdn_x3-x3q400.safetensors 92e6aa8:weights/imdn_x3.safetensors"
    "imdn_x4p_more $runs/imdn_x4-x4o2000.safetensors 92e6aa8:weights/imdn_x4.safetensors"
    "imdn_x3r_more $runs/imdn_x3-x3q400.safetensors 92e6aa8:weights/imdn_x3.safetensors"
    "imdn_x4q $runs/imdn_x4-x4pm1600.safetensors e82acf4:weights/imdn_x4.safetensors"
    "imdn_x3s $runs/imdn_x3-x3rm800.safetensors e82acf4:weights/imdn_x3.safetensors"
    "imdn_x3s_trixie $runs/imdn_x3-x3rm800.safetensors e82acf4:weights/imdn_x3.safetensors"
    "imdn_x3t $runs/imdn_x3-x3st1200.safetensors 655fd1b:weights/imdn_x3.safetensors"
)

# name, the run it continues (- for none), nice, threads, args... A run that continues another
# waits while that one has checkpoints on this machine: the earlier run resumes instead, with its
# Adam state, and the later one starts only where those checkpoints are gone.
RUNS=(
    "imdn_x2c - 0 2 --variant imdn --scale 2 --steps 177000 --lr 2.5e-5 --halve-every 7000 --seed 23 --ema 0.999 --checkpoint-every 250 --val-every 1000 --init-from $runs/imdn_x2-step23000.safetensors"
    "rtc_x3c - 19 1 --variant rtc --scale 3 --steps 32000 --lr 5e-5 --halve-every 12000 --seed 33 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step48000.safetensors"
    "imdn_x2f imdn_x2c 0 1 --variant imdn --scale 2 --steps 174000 --lr 1e-4 --halve-every 4000 --seed 26 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x2-step26000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x2g imdn_x2f 0 1 --variant imdn --scale 2 --steps 173000 --lr 1e-4 --halve-every 3000 --seed 27 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x2-step27000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3b - 0 1 --variant imdn --scale 3 --steps 100000 --lr 1e-4 --halve-every 20000 --seed 35 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x2-step26000.safetensors"
    "imdn_x4b - 0 1 --variant imdn --scale 4 --steps 100000 --lr 1e-4 --halve-every 20000 --seed 45 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x2-step26000.safetensors"
    "imdn_x3c imdn_x3b 0 1 --variant imdn --scale 3 --steps 89500 --lr 1e-4 --halve-every 9500 --seed 36 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x3-step10500.safetensors"
    "imdn_x4c imdn_x4b 0 1 --variant imdn --scale 4 --steps 89500 --lr 1e-4 --halve-every 9500 --seed 46 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x4-step10500.safetensors"
    "imdn_x3e imdn_x3c 0 1 --variant imdn --scale 3 --steps 88500 --lr 1e-4 --halve-every 8500 --seed 39 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x3-step11500.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4e imdn_x4c 0 1 --variant imdn --scale 4 --steps 87500 --lr 1e-4 --halve-every 7500 --seed 49 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x4-step12500.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2c - 5 1 --variant rtc --scale 2 --steps 45500 --lr 1e-4 --halve-every 8000 --seed 21 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2-step54500.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3e rtc_x3c 5 1 --variant rtc --scale 3 --steps 23000 --lr 1e-4 --halve-every 4000 --seed 37 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step77000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4c - 5 1 --variant rtc --scale 4 --steps 57000 --lr 1e-4 --halve-every 4000 --seed 47 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4-step43000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2d rtc_x2c 5 1 --variant rtc --scale 2 --steps 30500 --lr 5e-5 --halve-every 10000 --seed 22 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2-step69500.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x2h imdn_x2g 0 1 --variant imdn --scale 2 --steps 170500 --lr 5e-5 --halve-every 3000 --seed 28 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x2-step29500.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3f rtc_x3e 5 1 --variant rtc --scale 3 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 38 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step88000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3i imdn_x3e 0 1 --variant imdn --scale 3 --steps 85500 --lr 1e-4 --halve-every 5500 --seed 43 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x3-step14500-gpu236.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4h imdn_x4e 0 1 --variant imdn --scale 4 --steps 83500 --lr 1e-4 --halve-every 3500 --seed 52 --ema 0.999 --checkpoint-every 250 --val-every 500 --init-from $runs/imdn_x4-step16500-gpu232.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3g rtc_x3f 5 1 --variant rtc --scale 3 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 39 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step105000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4d rtc_x4c 5 1 --variant rtc --scale 4 --steps 24000 --lr 1e-4 --halve-every 6000 --seed 48 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4-step66000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3i rtc_x3g 5 1 --variant rtc --scale 3 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 41 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step123000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3j rtc_x3i 5 1 --variant rtc --scale 3 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 42 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step141000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4e rtc_x4d 5 1 --variant rtc --scale 4 --loss l2 --steps 3000 --lr 5e-5 --halve-every 1000 --seed 49 --ema 0.999 --checkpoint-every 250 --val-every 250 --init-from $runs/rtc_x4-step88000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4f rtc_x4d 5 1 --variant rtc --scale 4 --loss l2 --steps 1000 --lr 1e-5 --halve-every 0 --seed 50 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4-step88000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3k rtc_x3j 5 1 --variant rtc --scale 3 --loss l2 --steps 3000 --lr 5e-5 --halve-every 1000 --seed 44 --ema 0.999 --checkpoint-every 250 --val-every 250 --init-from $runs/rtc_x3-step158000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3l rtc_x3j 5 1 --variant rtc --scale 3 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 45 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step158000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3m rtc_x3j 5 1 --variant rtc --scale 3 --loss l2 --steps 4000 --lr 1e-5 --halve-every 2000 --seed 46 --ema 0.999 --checkpoint-every 250 --val-every 250 --init-from $runs/rtc_x3-step158000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3n rtc_x3j 5 1 --variant rtc --scale 3 --steps 12000 --lr 5e-5 --halve-every 4000 --seed 47 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3-step158000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3o - 5 1 --variant rtc --scale 3 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 48 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x3l/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3p - 5 1 --variant rtc --scale 3 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 49 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3l/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3q - 5 1 --variant rtc --scale 3 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 50 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x3l/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3r - 5 1 --variant rtc --scale 3 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 51 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x3q/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x3s - 5 1 --variant rtc --scale 3 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 52 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x3q/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4g rtc_x4d 5 1 --variant rtc --scale 4 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 51 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4-step88000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2f - 5 1 --variant rtc --scale 2 --loss l2 --steps 1000 --lr 1e-5 --halve-every 0 --seed 25 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2-step81500.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3j - 0 1 --variant imdn --scale 3 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 44 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/imdn_x3-step14500-gpu236.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4h - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 52 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4g/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4i - 5 1 --variant rtc --scale 4 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 53 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4g/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2g rtc_x2d 5 1 --variant rtc --scale 2 --steps 18000 --lr 1e-4 --halve-every 6000 --seed 26 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2-step100000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2h - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 27 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2g/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2i - 5 1 --variant rtc --scale 2 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 28 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2g/checkpoint-00018000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4j - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 54 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4i/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4k - 5 1 --variant rtc --scale 4 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 55 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4i/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2j - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 29 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2i/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4l - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 56 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4k/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2k - 5 1 --variant rtc --scale 2 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 30 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2i/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4m - 5 1 --variant rtc --scale 4 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 57 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4k/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2l - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 31 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2k/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4n - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 58 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4m/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4o - 5 1 --variant rtc --scale 4 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 59 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4m/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4p - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 60 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4o/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4q - 5 1 --variant rtc --scale 4 --steps 12000 --lr 2e-4 --halve-every 4000 --seed 61 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4o/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4r - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 62 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4q/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4s - 5 1 --variant rtc --scale 4 --steps 12000 --lr 4e-4 --halve-every 3000 --seed 63 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4q/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4t - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 64 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4s/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4u - 5 1 --variant rtc --scale 4 --steps 12000 --lr 4e-4 --halve-every 3000 --seed 65 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4s/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4v - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 66 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4u/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4w - 5 1 --variant rtc --scale 4 --steps 12000 --lr 8e-4 --halve-every 3000 --seed 67 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4u/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4x - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 68 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4w/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4y - 5 1 --variant rtc --scale 4 --steps 12000 --lr 1.6e-3 --halve-every 2400 --seed 69 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4w/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4z - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 70 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4y/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4za - 5 1 --variant rtc --scale 4 --steps 12000 --lr 3.2e-3 --halve-every 2000 --seed 71 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4y/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4zb - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 72 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4za/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4zc - 5 1 --variant rtc --scale 4 --steps 12000 --lr 6.4e-3 --halve-every 1715 --seed 73 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x4za/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2m - 5 1 --variant rtc --scale 2 --steps 12000 --lr 1e-4 --halve-every 4000 --seed 32 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2k/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2n - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 33 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2m/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2o - 5 1 --variant rtc --scale 2 --steps 16000 --lr 2e-4 --halve-every 4000 --seed 34 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2m/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2p - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 35 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2o/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2q - 5 1 --variant rtc --scale 2 --steps 16000 --lr 4e-4 --halve-every 3200 --seed 36 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2o/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2r - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 37 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2q/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2s - 5 1 --variant rtc --scale 2 --steps 16000 --lr 8e-4 --halve-every 3200 --seed 38 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2q/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2t - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 39 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2s/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2u - 5 1 --variant rtc --scale 2 --steps 16000 --lr 1.6e-3 --halve-every 3200 --seed 40 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2s/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2v - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 41 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2u/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2w - 5 1 --variant rtc --scale 2 --steps 16000 --lr 3.2e-3 --halve-every 2667 --seed 42 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2u/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2x - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 43 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2w/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2y - 5 1 --variant rtc --scale 2 --steps 16000 --lr 6.4e-3 --halve-every 2286 --seed 44 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2w/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2z - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 45 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2y/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2za - 5 1 --variant rtc --scale 2 --steps 16000 --lr 6.4e-3 --halve-every 2286 --seed 46 --ema 0.999 --checkpoint-every 500 --val-every 1000 --init-from $runs/rtc_x2y/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3k - 0 1 --variant imdn --scale 3 --steps 2400 --lr 8e-4 --halve-every 400 --seed 45 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-step14500-gpu236.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4i - 0 1 --variant imdn --scale 4 --steps 2400 --lr 8e-4 --halve-every 400 --seed 54 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-step16500-gpu232.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x2zb - 5 1 --variant rtc --scale 2 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 47 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x2za/checkpoint-00016000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "rtc_x4zd - 5 1 --variant rtc --scale 4 --loss l2 --steps 500 --lr 1e-5 --halve-every 0 --seed 74 --ema 0.999 --checkpoint-every 125 --val-every 125 --init-from $runs/rtc_x4zc/checkpoint-00012000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4j - 0 1 --variant imdn --scale 4 --steps 4000 --lr 8e-4 --halve-every 800 --seed 55 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4i/checkpoint-00002400.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3l - 0 1 --variant imdn --scale 3 --steps 4000 --lr 4e-4 --halve-every 800 --seed 46 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-step14500-gpu236.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4k - 0 1 --variant imdn --scale 4 --steps 4000 --lr 8e-4 --halve-every 800 --seed 56 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4j/checkpoint-00004000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3m - 0 1 --variant imdn --scale 3 --steps 4000 --lr 4e-4 --halve-every 800 --seed 47 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3l/checkpoint-00004000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4l - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 57 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4j2800.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3n - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 48 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3l4000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4m - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 58 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4l2400.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3o - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 49 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3n2400.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4n - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 59 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4m1600.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3p - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 50 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3o2400.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4o - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 60 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4n2800.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3q - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 51 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3p2800.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x4p - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 61 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4o2000.safetensors --data $data2k1k/train --val $data2k1k/val"
    "imdn_x3r - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 52 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3q400.safetensors --data $data2k1k/train --val $data2k1k/val"
    # imdn_x4p and imdn_x3r on the larger set (--more): A/Bs of the data, all else equal
    "imdn_x4p_more - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 61 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4o2000.safetensors --data $more/train --val $data2k1k/val"
    "imdn_x3r_more - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 52 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3q400.safetensors --data $more/train --val $data2k1k/val"
    "imdn_x4q - 0 1 --variant imdn --scale 4 --steps 3200 --lr 8e-4 --halve-every 800 --seed 62 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x4-x4pm1600.safetensors --data $trixie/train --val $data2k1k/val"
    "imdn_x3s - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 53 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3rm800.safetensors --data $more/train --val $data2k1k/val"
    "imdn_x3s_trixie - 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 53 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3rm800.safetensors --data $trixie/train --val $data2k1k/val"
    "imdn_x3t imdn_x3s_trixie 0 1 --variant imdn --scale 3 --steps 3200 --lr 4e-4 --halve-every 800 --seed 54 --ema 0.999 --checkpoint-every 200 --val-every 400 --init-from $runs/imdn_x3-x3st1200.safetensors --data $trixie/train --val $data2k1k/val"
)

# Runs that ended or were stopped, and that start must never run again: short stages, the runs in
# a chain that went from one's checkpoint to the next (its last export is what later runs go on
# from), and runs that validation ranked below another. weights/README.md has each; their lines
# stay above so that the cards' commands can be rerun by hand, in order.
DONE=(
    rtc_x4e rtc_x4f rtc_x3k rtc_x3m rtc_x3n rtc_x2f imdn_x3j rtc_x3l rtc_x3o rtc_x3p rtc_x3q
    rtc_x3r rtc_x3s rtc_x4g rtc_x4h rtc_x2g rtc_x2h rtc_x4i rtc_x4j rtc_x2i rtc_x2j rtc_x4k
    rtc_x4l rtc_x2k rtc_x2l rtc_x4m rtc_x4n rtc_x2m rtc_x2n rtc_x4o rtc_x4p rtc_x2o rtc_x2p
    rtc_x4q rtc_x4r rtc_x2q rtc_x2r rtc_x4s rtc_x4t rtc_x2s rtc_x2t rtc_x4u rtc_x4v rtc_x2u
    rtc_x2v rtc_x4w rtc_x4x rtc_x2w rtc_x2x rtc_x4y rtc_x4z rtc_x2y rtc_x2z rtc_x4za
    rtc_x4zb imdn_x3k imdn_x4i rtc_x2za rtc_x4zc rtc_x2zb rtc_x4zd imdn_x4j imdn_x3l
    imdn_x4k imdn_x3m imdn_x4l imdn_x3n imdn_x4m imdn_x3o imdn_x4n imdn_x3p imdn_x4o
    imdn_x3q imdn_x4p imdn_x3r imdn_x4p_more imdn_x3r_more imdn_x3s
)

# a run's process, whichever way its --out was spelt
pattern() { echo "--out ([^ ]*/)?$1( |$)"; }
running() { pgrep -f -- "$(pattern "$1")" > /dev/null; }

has_checkpoints() { ls "$runs/$1"/checkpoint-*.safetensors > /dev/null 2>&1; }

# what start does with run $1 (continuing run $2): resume, afresh, or why it does not start
decide() {
    local name=$1 after=$2 spec later later_after
    for spec in "${DONE[@]}"; do
        if [ "$spec" = "$name" ]; then
            echo "done: it ended (its card or Runs in progress has it)"; return
        fi
    done
    if has_checkpoints "$name"; then echo resume; return; fi
    if [ "$after" != - ] && has_checkpoints "$after"; then
        echo "waits: $after has checkpoints here and resumes instead"; return
    fi
    for spec in "${RUNS[@]}"; do
        read -r later later_after _ <<< "$spec"
        if [ "$later_after" = "$name" ]; then
            echo "superseded: $later goes on from this run's export"; return
        fi
    done
    echo afresh
}

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
    plan)
        for spec in "${RUNS[@]}"; do
            read -r name after _ <<< "$spec"
            chosen "$name" "$@" || continue
            running "$name" && { echo "$name: running"; continue; }
            echo "$name: $(decide "$name" "$after")"
        done
        ;;
    start)
        cargo build --release --quiet -p imdn
        mkdir -p "$runs"
        cp target/release/imdn "$bin.new" && mv "$bin.new" "$bin"
        for spec in "${RUNS[@]}"; do
            read -r name after nice threads args <<< "$spec"
            chosen "$name" "$@" || continue
            if running "$name"; then echo "$name: already running"; continue; fi
            how=$(decide "$name" "$after")
            case "$how" in
                resume) resume=--resume ;;
                afresh) resume="" ;;
                *) echo "$name: $how"; continue ;;
            esac
            # the run's own --data, else the default data
            train=$(awk '{ for (i = 1; i < NF; i++) if ($i == "--data") print $(i + 1) }' <<< "$args")
            dataargs=""
            [ -n "$train" ] || { train=$data/train; dataargs="--data $data/train --val $data/val"; }
            [ -d "$train" ] || { echo "$name: no training data in $train (scripts/prepare-data.sh)" >&2; continue; }
            for c in "${CONTINUED[@]}"; do
                read -r cname file object <<< "$c"
                if [ "$cname" = "$name" ] && [ ! -f "$file" ]; then
                    git show "$object" > "$file.new" && mv "$file.new" "$file"
                fi
            done
            # shellcheck disable=SC2086  # args is a list of options
            nohup nice -n "$nice" "$bin" --threads "$threads" train $args $dataargs \
                --patch 48 --batch 16 --min-detail 4 --out "$runs/$name" $resume \
                >> "$runs/$name.log" 2>&1 &
            echo "$name: started ${resume:-afresh} (log $runs/$name.log)"
        done
        ;;
    status)
        for spec in "${RUNS[@]}"; do
            read -r name _ <<< "$spec"
            [ -f "$runs/$name.log" ] || { echo "$name: never run here"; continue; }
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
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
