#!/usr/bin/env python3
"""Ours vs ONNX Runtime vs PyTorch eager on the CPU, interleaved in one run.

Same weights (the authors' .pth or any file our torch definition loads), same frame (the
deterministic pattern `imdn bench` uses), same thread count. Each round runs one frame of
each engine in turn (our engine is a long-lived `imdn bench --stdin-sync` process), so the
three see the same machine state. Prints per-engine medians, the ratios, and a JSON line.
  compare_cpu.py --imdn target/release/imdn --weights W.pth --size 640x360 --threads 2 --rounds 5
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_imdn import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imdn", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="f32", help="ours: f32 or int8")
    ap.add_argument("--ours-weights", help="ours (default --weights): int8 needs calibrated "
                    "weights, e.g. weights/imdn_rtc_x2.safetensors; the same architecture "
                    "times the same whatever its values")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    t = a.threads

    torch.set_num_threads(t)
    torch.set_num_interop_threads(1)
    net = load(a.weights).eval()
    frame = ((np.arange(3 * h * w, dtype=np.int64) * 7919) % 256).astype(np.float32) / 255.0
    x = torch.from_numpy(frame.reshape(1, 3, h, w))

    onnx_path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    with torch.inference_mode():
        try:
            torch.onnx.export(net, x, onnx_path, opset_version=17, dynamo=False,
                              input_names=["x"], output_names=["y"])
        except TypeError:
            torch.onnx.export(net, x, onnx_path, opset_version=17, input_names=["x"], output_names=["y"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = t
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between runs: it would steal the cores from the next engine
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    xn = x.numpy()

    with torch.inference_mode():
        ref = net(x).numpy()
    got = sess.run(None, {"x": xn})[0]
    ort_diff = float(np.abs(ref - got).max())

    env = dict(os.environ, RAYON_NUM_THREADS=str(t))
    ours = subprocess.Popen([a.imdn, "--threads", str(t), "bench", "--device", "cpu",
                             "--weights", a.ours_weights or a.weights, "--precision", a.precision,
                             "--size", a.size, "--tile", "0", "--stdin-sync"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    if ours.stdout.readline().strip() != "ready":
        sys.exit("imdn bench --stdin-sync did not start")

    def run_ours():
        ours.stdin.write("go\n")
        ours.stdin.flush()
        return float(ours.stdout.readline())

    def run_ort():
        t0 = time.perf_counter()
        sess.run(None, {"x": xn})
        return (time.perf_counter() - t0) * 1e3

    def run_torch():
        t0 = time.perf_counter()
        with torch.inference_mode():
            net(x)
        return (time.perf_counter() - t0) * 1e3

    engines = {"ours": run_ours, "onnxruntime": run_ort, "pytorch": run_torch}
    for f in engines.values():  # warm-up
        f()
    times = {k: [] for k in engines}
    names = list(engines)
    for r in range(a.rounds):
        order = names[r % 3:] + names[:r % 3]  # rotate who goes first
        for k in order:
            times[k].append(engines[k]())
        print(f"round {r + 1}: " + ", ".join(f"{k} {times[k][-1]:.1f} ms" for k in names), file=sys.stderr)
    ours.stdin.close()
    ours.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{os.path.basename(a.weights)} {a.size}, {t} threads, {a.rounds} interleaved rounds (medians):")
    for k in names:
        print(f"  {k:12s} {med[k]:9.1f} ms")
    print(f"  ours is {med['onnxruntime'] / med['ours']:.2f}× ONNX Runtime's speed and "
          f"{med['pytorch'] / med['ours']:.2f}× PyTorch's")
    print(json.dumps({"weights": os.path.basename(a.weights), "size": a.size, "threads": t, "rounds": a.rounds,
                      "ms": med, "ort_vs_torch_max_abs_diff": ort_diff,
                      "speedup_vs_onnxruntime": med["onnxruntime"] / med["ours"],
                      "speedup_vs_pytorch": med["pytorch"] / med["ours"],
                      "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__,
                                   "python": platform.python_version()},
                      "cpu": platform.processor() or platform.machine()}))


if __name__ == "__main__":
    main()
