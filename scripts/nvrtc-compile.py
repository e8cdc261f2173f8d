#!/usr/bin/env python3
"""Compiles src/cuda/kernels.cu with NVRTC as the CUDA executor does when it opens, without a
GPU: a check that the kernels build for an architecture, and what ptxas says of each (registers,
stack, spills). Needs a libnvrtc (CUDA 12 or 13), e.g. the one NVIDIA's PyPI wheels carry:

    python3 scripts/nvrtc-compile.py path/to/libnvrtc.so.13 [--arch sm_90]

Exit status 0 when it compiles; the log (with ptxas' report for a real architecture) on stdout.
"""
import argparse
import ctypes
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("libnvrtc", help="path to libnvrtc.so")
    p.add_argument("--arch", default="sm_90", help="compute_XY (PTX) or sm_XY (ptxas too)")
    a = p.parse_args()
    src = (Path(__file__).resolve().parent.parent / "src/cuda/kernels.cu").read_bytes()
    nvrtc = ctypes.CDLL(a.libnvrtc)
    prog = ctypes.c_void_p()
    if nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, b"kernels.cu", 0, None, None) != 0:
        print("nvrtcCreateProgram failed", file=sys.stderr)
        return 1
    opts = [f"--gpu-architecture={a.arch}".encode()]
    if a.arch.startswith("sm_"):
        opts.append(b"--ptxas-options=-v")
    started = time.monotonic()
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    took = time.monotonic() - started
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    print(log.value.decode(errors="replace"))
    print(f"kernels.cu for {a.arch}: {'compiled' if rc == 0 else 'FAILED'} in {took:.1f} s")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
