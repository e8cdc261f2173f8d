// CUDA's built-ins for kernels.cu compiled by a host C++ compiler (tests only): the thread
// indices as thread-locals the launcher sets, f16 conversions in software, and warps run by
// one lane that does all of the warp's work (LANES 1), so kernels.cu's warp kernels need no
// lane exchange. host_launch runs a kernel over its whole grid, one thread at a time.
//
// Compiled as `c++ -x c++ -std=c++17 -O2 -shared -fPIC -include host_shim.h kernels.cu`.

#include <math.h>
#include <string.h>

#define IMDN_HOST 1
#define DEVICE static inline
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

static inline double warp_sum(double v) { return v; }
