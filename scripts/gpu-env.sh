# Sourced by the device scripts (gpu-check.sh, gpu-train.sh) on a GPU machine: sets $bin (the
# CUDA build of imdn: $IMDN_BIN, or .gpu/imdn.xz from scripts/gpu-prepare.sh unpacked, or
# target/cuda/release/imdn) and puts the CUDA libraries it links, from the Python packages on
# the machine's image, on LD_LIBRARY_PATH.
bin=${IMDN_BIN:-target/cuda/release/imdn}
if [ -z "${IMDN_BIN:-}" ] && [ -f .gpu/imdn.xz ]; then
    # python's lzma: the image may have no xz tool. Unpacked once: a second script sourcing
    # this while the first one's runs use /tmp/imdn must not rewrite it.
    [ -x /tmp/imdn ] || python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        .gpu/imdn.xz /tmp/imdn.part && chmod +x /tmp/imdn.part && mv /tmp/imdn.part /tmp/imdn
    bin=/tmp/imdn
fi
libdirs=$(python3 - <<'PY'
import glob, os, site, sys
want = ["libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcudart.so.13",
        "libnvrtc.so.13", "libcudnn.so.9"]
roots = site.getsitepackages() + ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu"]
dirs = []
for name in want:
    for r in roots:
        hits = glob.glob(os.path.join(r, "**", name), recursive=True)
        if hits:
            d = os.path.dirname(hits[0])
            if d not in dirs:
                dirs.append(d)
            break
    else:
        print(f"missing {name}", file=sys.stderr)
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
echo "binary: $bin"
if ldd "$bin" | grep "not found"; then
    echo "FAIL: unresolved libraries"
    exit 1
fi
