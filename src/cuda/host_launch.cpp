// kernels.cu on the host, for the tests (tests/cuda_kernels.rs): host_launch runs one kernel
// over its whole grid, thread after thread (warp kernels: one lane a warp, host_shim.h), and
// host_sizeof gives the argument structs' sizes, which must equal args.rs's.

#include "host_shim.h"
#include "kernels.cu"

#include <vector>

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

// What a lane's fiber runs: the kernel, with the launch's arguments.
static void (*fiber_kernel)(const void*);
static const void* fiber_args;

static void lane_main(int lane) {
    fiber_kernel(fiber_args);
    warp->done[lane] = true;
    yield_lane(lane);
}

// Each warp of the grid as 32 fibers that meet at its tensor-core products.
template <typename Args>
static void run_warps(void (*kernel)(Args), const void* args, unsigned grid, unsigned block) {
    static void (*typed)(Args);
    typed = kernel;
    fiber_kernel = [](const void* p) {
        Args a;
        memcpy(&a, p, sizeof a);
        typed(a);
    };
    fiber_args = args;
    blockDim.x = block;
    std::vector<char> stacks(32 * 256 * 1024);
    Warp w;
    warp = &w;
    for (unsigned b = 0; b < grid; b++) {
        for (unsigned wi = 0; wi < block / 32; wi++) {
            memset(&w, 0, sizeof w);
            w.call[0] = w.call[1] = -1;
            for (int lane = 0; lane < 32; lane++) {
                getcontext(&w.lanes[lane]);
                w.lanes[lane].uc_stack.ss_sp = &stacks[lane * 256 * 1024];
                w.lanes[lane].uc_stack.ss_size = 256 * 1024;
                w.lanes[lane].uc_link = nullptr;
                makecontext(&w.lanes[lane], (void (*)())lane_main, 1, lane);
            }
            blockIdx.x = b;
            w.first_thread = wi * 32;
            threadIdx.x = w.first_thread;
            swapcontext(&w.launcher, &w.lanes[0]);
        }
    }
}

// 0, or -1 for a kernel not known here.
extern "C" int host_launch(const char* name, const void* args, unsigned grid, unsigned block) {
    if (!strcmp(name, "conv_direct_f32")) {
        run(conv_direct_f32, args, grid, block, 1);
    } else if (!strcmp(name, "packed_in_f32")) {
        run(packed_in_f32, args, grid, block, 1);
    } else if (!strcmp(name, "packed_out_f32")) {
        run(packed_out_f32, args, grid, block, 1);
    } else if (!strcmp(name, "yuv_in_f32")) {
        run(yuv_in_f32, args, grid, block, 1);
    } else if (!strcmp(name, "yuv_out_luma_f32")) {
        run(yuv_out_luma_f32, args, grid, block, 1);
    } else if (!strcmp(name, "yuv_out_chroma_f32")) {
        run(yuv_out_chroma_f32, args, grid, block, 1);
    } else if (!strcmp(name, "frames_in_f32")) {
        run(frames_in_f32, args, grid, block, 1);
    } else if (!strcmp(name, "frames_in_f16")) {
        run(frames_in_f16, args, grid, block, 1);
    } else if (!strcmp(name, "frames_out_f32")) {
        run(frames_out_f32, args, grid, block, 1);
    } else if (!strcmp(name, "frames_out_f16")) {
        run(frames_out_f16, args, grid, block, 1);
    } else if (!strcmp(name, "conv_mma_f16_n1_m2")) {
        run_warps(conv_mma_f16_n1_m2, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n2_m2")) {
        run_warps(conv_mma_f16_n2_m2, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n3_m2")) {
        run_warps(conv_mma_f16_n3_m2, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n4_m2")) {
        run_warps(conv_mma_f16_n4_m2, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n5_m1")) {
        run_warps(conv_mma_f16_n5_m1, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n6_m1")) {
        run_warps(conv_mma_f16_n6_m1, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n7_m1")) {
        run_warps(conv_mma_f16_n7_m1, args, grid, block);
    } else if (!strcmp(name, "conv_mma_f16_n8_m1")) {
        run_warps(conv_mma_f16_n8_m1, args, grid, block);
    } else if (!strcmp(name, "cca_sums_f32")) {
        run(cca_sums_f32, args, grid, block, 32);
    } else if (!strcmp(name, "cca_sums_f16")) {
        run(cca_sums_f16, args, grid, block, 32);
    } else if (!strcmp(name, "cca_finish_f32")) {
        run(cca_finish_f32, args, grid, block, 1);
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
    if (!strcmp(name, "FramesArgs")) return sizeof(struct FramesArgs);
    if (!strcmp(name, "YuvInArgs")) return sizeof(struct YuvInArgs);
    if (!strcmp(name, "PackedArgs")) return sizeof(struct PackedArgs);
    if (!strcmp(name, "YuvOutArgs")) return sizeof(struct YuvOutArgs);
    if (!strcmp(name, "Tap")) return sizeof(struct Tap);
    return 0;
}

// Software f16 rounding, to check against the half crate's.
extern "C" unsigned short host_float_to_half(float f) { return float_to_half(f); }
extern "C" float host_half_to_float(unsigned short h) { return half_to_float(h); }
