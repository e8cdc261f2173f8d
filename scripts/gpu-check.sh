#!/usr/bin/env bash
# One prepared run for a GPU machine (H100/H200: no package registry, no GStreamer there).
# Takes what was built here and carried in .gpu/ (scripts/gpu-prepare.sh; never committed): the
# CUDA builds of imdn and of the element (scripts/build-cuda.sh), the reference data, and
# GStreamer as Debian packages. Runs:
#   1. Set5 parity on the GPU: IMDN ×2/×3/×4 and RTC ×2 in f32 and f16 (table ±0.01 / ±0.05 dB),
#      by candle's network and by our executor (--cuda-kernels ours: src/cuda's kernels,
#      compiled by NVRTC when it opens; f16 convs on tensor cores, f32 ones direct);
#   2. benchmarks: IMDN ×2 and RTC ×2 at 1920×1080, IMDN ×4 at 960×540, in f32/TF32/f16,
#      our frame path (host in/out) and network alone; our executor in f16;
#   3. PyTorch (on the machine's image) on the same weights, sizes and precisions;
#   4. the element in a pipeline (scripts/gpu-element.sh): videotestsrc, NV12 at the
#      benchmarks' sizes, into imdnupscale on CUDA in f16 (cuda-kernels=ours, 300 frames;
#      candle, 40) into fakesink, frames per second at the sink after start-up, from the carried
#      GStreamer (ELEMENT_SPECS, ELEMENT_KERNELS narrow it; an empty ELEMENT_SPECS: none);
#   5. the phases of a training step (forward, backward, Adam) of IMDN ×3 and RTC ×2, as
#      scripts/gpu-train.sh runs them, and again with cudarc's event tracking on
#      (PHASE_SPECS="model:batch ..."; empty: none);
# and last prints one `gpu-result:` line per model of the benchmarks (scripts/gpu_results.py:
# our network alone and whole frame, the element's rate, PyTorch f16 channels-last; NA for a
# figure missing), the lines BENCHMARKS.md records.
# Everything is logged to $OUT/gpu-check.log, one JSON object a line in $OUT/results.jsonl.
# Checkpoints not carried are skipped; BENCH_SPECS (model:WxH ...) and BENCH_PRECISIONS narrow
# the benchmarks (an empty BENCH_SPECS: none); PARITY=0 skips the parity checks.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
log=$out/gpu-check.log
res=$out/results.jsonl
: > "$res"
exec > >(tee -a "$log") 2>&1
ref=${REF:-.gpu/reference}
[ -d "$ref" ] || ref=../shared/reference
ck=$ref/imdn-checkpoints
fail=0
# shellcheck source=gpu-env.sh
source scripts/gpu-env.sh

echo "== 1. Set5 parity on the GPU"
check() { # name scale precision reference-psnr tolerance kernels
    local j
    if [ ! -f "$ck/$1.pth" ]; then echo "$1: not carried, skipped"; return; fi
    j=$("$bin" eval --device cuda --precision "$3" --cuda-kernels "$6" --weights "$ck/$1.pth" \
        --hr "$ref/Set5/HR" --lr "$ref/Set5/LR_bicubic/x$2" --scale "$2" --json | tail -n 1)
    echo "$j" | python3 -c "
import json, sys
j = json.load(sys.stdin); p = j['mean']['psnr_y']; ok = abs(p - $4) <= $5
j.update(check='parity', precision='$3', kernels='$6', reference=$4, ok=ok)
print(json.dumps(j)); print(f'$1 ×$2 $3 $6: {p:.4f} dB (reference $4 ± $5):', 'ok' if ok else 'FAIL', file=sys.stderr)
sys.exit(0 if ok else 1)" >> "$res" || fail=1
}
for kernels in ours candle; do
    for p in $([ "${PARITY:-1}" = 1 ] && echo f32 f16); do
        tol=0.01; [ $p = f16 ] && tol=0.05
        check IMDN_x2 2 $p 37.9105 $tol $kernels
        check IMDN_x3 3 $p 34.3233 $tol $kernels
        check IMDN_x4 4 $p 32.1867 $tol $kernels
        check model_RTC 2 $p 37.2406 $tol $kernels
    done
done

echo "== 2. benchmarks (ours), 3. PyTorch on the same weights and sizes"
for spec in ${BENCH_SPECS-IMDN_x2:1920x1080 model_RTC:1920x1080 IMDN_x4:960x540}; do
    m=${spec%%:*}; size=${spec##*:}
    [ -f "$ck/$m.pth" ] || continue
    for p in ${BENCH_PRECISIONS:-f32 tf32 f16}; do
        "$bin" bench --device cuda --precision $p --tile 0 --weights "$ck/$m.pth" --size "$size" \
            --iters 10 --json | tail -n 1 | sed "s/^{/{\"check\":\"bench\",\"weights\":\"$m\",/" >> "$res" || fail=1
        tail -n 1 "$res"
        if [ $p = f16 ]; then # our executor's tensor-core convs (its f32 convs are the slow direct ones)
            "$bin" bench --device cuda --precision $p --cuda-kernels ours --tile 0 \
                --weights "$ck/$m.pth" --size "$size" --iters 3 --json | tail -n 1 |
                sed "s/^{/{\"check\":\"bench\",\"kernels\":\"ours\",\"weights\":\"$m\",/" >> "$res" || fail=1
            tail -n 1 "$res"
        fi
        cl=""; [ $p = f16 ] && cl=--channels-last
        for layout in "" $cl; do
            python3 scripts/torch_imdn.py "$ck/$m.pth" "$size" --precision $p $layout --iters 10 |
                sed "s/^{/{\"check\":\"torch\",/" >> "$res" || fail=1
            tail -n 1 "$res"
        done
    done
done
echo "== 4. the element in a pipeline (GStreamer carried in .gpu/gst)"
# its own process: the carried GStreamer's libraries go on its LD_LIBRARY_PATH only
RES=$res CK=$ck scripts/gpu-element.sh || fail=1
echo "== 5. training step phases (imdn train's step, alone on the GPU)"
for spec in ${PHASE_SPECS-imdn_x3:32 imdn_rtc_x2:64}; do
    for events in "" --cuda-events; do # as training runs, then with cudarc's event tracking
        "$bin" bench --device cuda --weights "${spec%%:*}" --size 64x64 \
            --train-batch "${spec##*:}" --phases $events --iters 5 || fail=1
    done
done
nvidia-smi --query-gpu=name,memory.used --format=csv
echo "gpu-check finished, failures: $fail"
python3 scripts/gpu_results.py "$res" --specs "${BENCH_SPECS-IMDN_x2:1920x1080 model_RTC:1920x1080 IMDN_x4:960x540}"
exit $fail
