#!/usr/bin/env python3
"""The `gpu-result:` lines scripts/gpu-check.sh ends with, one per model, assembled from its
results.jsonl (issue 43; BENCHMARKS.md records them verbatim):

  gpu-result: device=NAME model=imdn_x2 size=1920x1080 precision=f16 network_ms=X frame_ms=Y element_fps=Z torch_f16_ms=T

  gpu_results.py RESULTS.jsonl [--device NAME] [--specs "IMDN_x2:1920x1080 ..."]

NAME: the GPU's name as nvidia-smi gives it, spaces as '_' (default: asked of nvidia-smi;
NA without one). Per model and size, from the lines gpu-check.sh wrote:
  network_ms    our executor (`imdn bench --cuda-kernels ours --precision f16`): its launches
                alone on a frame already on the GPU (`launches_ms`; the bench's `network_ms`
                goes through the host for our executor, so it is not the network alone)
  frame_ms      the same bench run's whole frame as bytes: R'G'B' u8 uploaded, converted,
                padded, the network, cropped, converted, downloaded (`raw_frame_ms`)
  element_fps   the element in a pipeline on CUDA (scripts/gpu-element.sh), cuda-kernels=ours,
                f16: the steady rate at the sink
  torch_f16_ms  PyTorch f16 channels-last, cudnn.benchmark (scripts/torch_imdn.py)
A figure missing (not run, failed, not carried) prints as NA.
"""
import argparse
import json
import os
import subprocess
import sys

SPECS = "IMDN_x2:1920x1080 model_RTC:1920x1080 IMDN_x4:960x540"


def model_name(weights):
    """imdn_x2 for IMDN_x2(.pth), imdn_rtc_x2 for model_RTC (the authors' RTC is ×2)."""
    stem = os.path.basename(weights)
    stem = stem[:-4] if stem.endswith(".pth") else stem
    if stem == "model_RTC":
        return "imdn_rtc_x2"
    return stem.lower()


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a failed run: its figure is NA
    return rows


def last(rows, pred, key):
    """The value of `key` in the last row matching `pred` (a rerun's figure wins), else None."""
    for r in reversed(rows):
        if pred(r) and isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool):
            return r[key]
    return None


def figures(rows, weights, size):
    def same(r):
        return model_name(str(r.get("weights", ""))) == model_name(weights) and r.get("size") == size

    def ours_bench(r):  # bench's precision is its Rust Debug name (F16)
        return (same(r) and r.get("check") == "bench" and r.get("kernels") == "ours"
                and str(r.get("precision", "")).lower() == "f16")

    def element(r):
        return (same(r) and r.get("check") == "element" and r.get("kernels") == "ours"
                and r.get("device") == "cuda" and r.get("precision") == "f16" and r.get("ok"))

    def torch(r):
        return (same(r) and r.get("check") == "torch" and r.get("precision") == "f16"
                and r.get("channels_last") is True)

    return {
        "network_ms": last(rows, ours_bench, "launches_ms"),
        "frame_ms": last(rows, ours_bench, "raw_frame_ms"),
        "element_fps": last(rows, element, "fps"),
        "torch_f16_ms": last(rows, torch, "ms_per_frame"),
    }


def fmt(v, digits):
    return "NA" if v is None else f"{v:.{digits}f}"


def lines(rows, device, specs=SPECS):
    out = []
    for spec in specs.split():
        weights, size = spec.split(":")
        f = figures(rows, weights, size)
        out.append(
            f"gpu-result: device={device} model={model_name(weights)} size={size} precision=f16 "
            f"network_ms={fmt(f['network_ms'], 2)} frame_ms={fmt(f['frame_ms'], 2)} "
            f"element_fps={fmt(f['element_fps'], 1)} torch_f16_ms={fmt(f['torch_f16_ms'], 2)}"
        )
    return out


def gpu_name():
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "NA"
    return names[0].strip().replace(" ", "_") if names else "NA"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--device", help="the GPU's name (default: nvidia-smi's)")
    ap.add_argument("--specs", default=SPECS, help="model:WxH ... (gpu-check.sh's bench specs)")
    a = ap.parse_args(argv)
    device = (a.device or gpu_name()).replace(" ", "_")
    for line in lines(load(a.results), device, a.specs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
