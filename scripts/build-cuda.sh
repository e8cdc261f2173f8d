#!/usr/bin/env bash
# Builds the CUDA variant (`--features cuda`: candle's cuda + cudnn) on a machine without a GPU,
# from NVIDIA's CUDA 13.0 wheels on PyPI plus a generated libcuda stub for the link.
# Output: target/cuda/release/imdn and libgstimdn.so (CLI_ONLY=1: the CLI alone). At run time
# they need the real libcuda.so.1 (the driver) and libcublas, libcublasLt, libcurand, libcudart,
# libnvrtc and libcudnn on LD_LIBRARY_PATH: a plugin built so does not load on hosts without
# them (GStreamer then reports it as failed to load); use the default CPU build there.
#   CUDA_COMPUTE_CAP  GPU architecture to compile kernels for (default 90: H100/H200).
# A clean build takes about 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=${CUDA_ENV:-$PWD/target/cuda-env}
root=$env_dir/root
if [ ! -x "$env_dir/venv/bin/pip" ]; then
    python3 -m venv "$env_dir/venv"
fi
# nvvm pinned to nvcc's version: nvcc 13.0's ptxas rejects the PTX 9.5 of nvvm 13.5
"$env_dir/venv/bin/pip" install --quiet nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-cccl==13.0.85 nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14 \
    nvidia-cudnn-cu13==9.28.1.4
site=$("$env_dir/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
n=$site/nvidia/cu13
rm -rf "$root" && mkdir -p "$root/lib64/stubs"
ln -s "$n/bin" "$n/include" "$n/nvvm" "$root/"
for l in cublas cublasLt cudart nvrtc; do ln -s "$n/lib/lib$l.so.13" "$root/lib64/lib$l.so"; done
ln -s "$n/lib/libcurand.so.10" "$root/lib64/libcurand.so"
ln -s "$site/nvidia/cudnn/lib/libcudnn.so.9" "$root/lib64/libcudnn.so"
ln -s "$site/nvidia/cudnn/include/"*.h "$root/include/" 2>/dev/null || true
# No wheel ships libcuda (it comes with the driver): link against a stub that defines every
# driver symbol cudarc declares; the real library is loaded at run time.
cargo fetch --quiet
cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10 | head -n 1)
grep -o 'load::<_F>("cu[A-Za-z0-9_]*")' "$cudarc/src/driver/sys/mod.rs" | sed 's/.*("\(.*\)")/\1/' | sort -u |
    sed 's/.*/int &(void) { return 999; }/' > "$root/lib64/stubs/libcuda.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib64/stubs/libcuda.so" "$root/lib64/stubs/libcuda.c"
export CUDA_ROOT=$root CUDA_HOME=$root CUDA_PATH=$root PATH=$root/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$root/lib64:$root/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
export RUSTFLAGS="${RUSTFLAGS:-} -L $root/lib64 -L $root/lib64/stubs"
cargo build --release --features cuda --target-dir target/cuda --bin imdn "$@"
echo "built target/cuda/release/imdn (compute capability $CUDA_COMPUTE_CAP)"
if [ -z "${CLI_ONLY:-}" ]; then
    # the plugin too (needs the GStreamer -dev packages of scripts/install-deps.sh)
    cargo build --release -p gst-plugin-imdn --features cuda --target-dir target/cuda "$@"
    echo "built target/cuda/release/libgstimdn.so"
fi
