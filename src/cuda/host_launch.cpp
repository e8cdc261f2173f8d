// kernels.cu on the host, for the tests (tests/cuda_kernels.rs): host_launch runs one kernel
// over its whole grid, thread after thread (warp kernels: one lane a warp, host_shim.h), and
// host_sizeof gives the argument structs' sizes, which must equal args.rs's.

#include "host_shim.h"
#include "kernels.cu"

template <typename Args>
static void run(void (*kernel)(Args), const void* args, unsigned grid, unsigned block,
                unsigned step) {
    Args a;
    memcpy(&a, args, sizeof a);
    blockDim.x = block;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        for (unsigned t = 0; t < block; t += step) {
            threadIdx.x = t;
            kernel(a);
        }
    }
}

// 0, or -1 for a kernel not known here.
extern "C" int host_launch(const char* name, const void* args, unsigned grid, unsigned block) {
    if (!strcmp(name, "conv_direct_f32")) {
        run(conv_direct_f32, args, grid, block, 1);
    } else if (!strcmp(name, "conv_direct_f16")) {
        run(conv_direct_f16, args, grid, block, 1);
    } else if (!strcmp(name, "cca_stats_f32")) {
        run(cca_stats_f32, args, grid, block, 32);
    } else if (!strcmp(name, "cca_stats_f16")) {
        run(cca_stats_f16, args, grid, block, 32);
    } else if (!strcmp(name, "cca_attention_f32")) {
        run(cca_attention_f32, args, grid, block, 1);
    } else {
        return -1;
    }
    return 0;
}

// Size of the argument struct `name`, 0 for an unknown one.
extern "C" unsigned long host_sizeof(const char* name) {
    if (!strcmp(name, "ViewArg")) return sizeof(struct ViewArg);
    if (!strcmp(name, "ConvArgs")) return sizeof(struct ConvArgs);
    if (!strcmp(name, "StatsArgs")) return sizeof(struct StatsArgs);
    if (!strcmp(name, "AttentionArgs")) return sizeof(struct AttentionArgs);
    return 0;
}

// Software f16 rounding, to check against the half crate's.
extern "C" unsigned short host_float_to_half(float f) { return float_to_half(f); }
extern "C" float host_half_to_float(unsigned short h) { return half_to_float(h); }
