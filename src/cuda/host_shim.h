// CUDA's built-ins for kernels.cu compiled by a host C++ compiler (tests only): the thread
// indices as thread-locals the launcher sets, f16 conversions in software, warp loops run by
// one lane that does all of the warp's work (LANES 1), and the tensor-core product
// (mma_16816) by the 32 lanes of a warp as fibers that trade their fragment registers, so
// that the kernels' per-lane fragment layouts are checked as the GPU reads them.

#include <math.h>
#include <string.h>
#include <ucontext.h>

#define IMDN_HOST 1
#define DEVICE static inline
#define CALLED static
#define UNROLL
// plain IEEE arithmetic: x86-64's SSE, as Rust's f32 (no contraction without -mfma)
#define __fadd_rn(a, b) ((a) + (b))
#define __fsub_rn(a, b) ((a) - (b))
#define __fmul_rn(a, b) ((a) * (b))
#define __fdiv_rn(a, b) ((a) / (b))
#define __global__
#define LANE 0
#define LANES 1

struct Dim {
    unsigned x;
};
static thread_local Dim threadIdx, blockIdx, blockDim;
#define GLOBAL_INDEX ((long long)blockIdx.x * blockDim.x + threadIdx.x)

typedef unsigned short half_bits;

static inline float half_to_float(half_bits h) {
    unsigned sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
    if (exp == 0) {
        // zero or subnormal: mant · 2⁻²⁴
        float v = ldexpf((float)mant, -24);
        return (h & 0x8000u) ? -v : v;
    }
    if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even, as PTX cvt.rn.f16.f32.
static inline half_bits float_to_half(float f) {
    unsigned bits;
    memcpy(&bits, &f, 4);
    unsigned sign = (bits >> 16) & 0x8000u;
    float a = fabsf(f);
    if (a != a) return (half_bits)(sign | 0x7e00u);
    if (a >= 65520.0f) return (half_bits)(sign | 0x7c00u);
    if (a < 6.103515625e-05f) {
        // subnormal: a multiple of 2⁻²⁴, rounded to nearest even by rintf
        return (half_bits)(sign | (unsigned)rintf(ldexpf(a, 24)));
    }
    memcpy(&bits, &a, 4);
    unsigned exp = (bits >> 23) - 112, mant = bits & 0x7fffffu;
    unsigned h = (exp << 10) | (mant >> 13), rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (half_bits)(sign | h);
}

static inline unsigned load_pair(const half_bits* p) {
    unsigned v;
    memcpy(&v, p, 4);
    return v;
}

// Threads run one at a time here.
static inline void add_to(double* at, double v) { *at += v; }

// A warp as 32 fibers on one thread, switched round-robin (host_launch.cpp's run_warps).
struct Warp {
    ucontext_t lanes[32];
    ucontext_t launcher;
    bool done[32];
    // the registers handed to the mma of each parity of call, how many lanes have, and for
    // which call: a lane may hand in call c + 1 while others still read call c
    unsigned a[2][32][4];
    unsigned b[2][32][2];
    int arrived[2];
    long long call[2];
    long long calls[32];
    // threadIdx.x of lane 0 (set on each switch: the fibers share the launcher's thread)
    unsigned first_thread;
};
static Warp* warp;

// Switches from `lane` to the next lane not finished, or back to the launcher.
static inline void yield_lane(int lane) {
    for (int i = 1; i <= 32; i++) {
        int next = (lane + i) % 32;
        if (!warp->done[next]) {
            threadIdx.x = warp->first_thread + next;
            if (next != lane) swapcontext(&warp->lanes[lane], &warp->lanes[next]);
            threadIdx.x = warp->first_thread + lane;
            return;
        }
    }
    swapcontext(&warp->lanes[lane], &warp->launcher);
}

// The fragments' layouts (PTX ISA, mma.m16n8k16 .f16): lane 4g + t holds
// A (16×16, row-major): a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..);
// B (16×8, k × n): b0 (k 2t..2t+1, n g), b1 (k 2t+8..2t+9, n g);
// D (16×8): d0, d1 (g, 2t..2t+1), d2, d3 (g+8, 2t..2t+1); each pair's first in the low half.
static inline float fragment_a(int parity, int row, int col) {
    int lane = (row % 8) * 4 + (col % 8) / 2, reg = row / 8 + 2 * (col / 8);
    return half_to_float((half_bits)(warp->a[parity][lane][reg] >> (16 * (col % 2))));
}

static inline float fragment_b(int parity, int k, int n) {
    int lane = n * 4 + (k % 8) / 2, reg = k / 8;
    return half_to_float((half_bits)(warp->b[parity][lane][reg] >> (16 * (k % 2))));
}

static inline void mma_16816(float d[4], const unsigned a[4], const unsigned b[2]) {
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    long long c = warp->calls[lane]++;
    int parity = (int)(c % 2);
    if (warp->call[parity] != c) {
        warp->call[parity] = c;
        warp->arrived[parity] = 0;
    }
    memcpy(warp->a[parity][lane], a, sizeof warp->a[parity][lane]);
    memcpy(warp->b[parity][lane], b, sizeof warp->b[parity][lane]);
    warp->arrived[parity]++;
    while (warp->arrived[parity] < 32) yield_lane(lane);
    for (int e = 0; e < 4; e++) {
        int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float sum = 0.0f;
        for (int k = 0; k < 16; k++) sum += fragment_a(parity, row, k) * fragment_b(parity, k, col);
        d[e] += sum;
    }
}
