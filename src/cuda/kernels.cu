// The CUDA executor's kernels (issue 43): one launch per step of a cuda::Schedule, on NHWC
// activations read and written through channel views. src/cuda/args.rs builds their
// arguments (the structs below, field for field) and launch sizes.
//
// One source, two compilers: NVRTC on a GPU machine, and the host C++ compiler in the tests
// with host_shim.h standing in for CUDA's built-ins (tests/cuda_kernels.rs runs every step on
// the CPU against cuda::Reference). Hence no CUDA headers (f16 conversions in PTX), and warp
// kernels written per warp: a lane loop over the warp's work (LANE, LANES), which on the CPU
// is one lane doing all of it.
//
// The convs: with f32 activations the direct kernel (f32 arithmetic on CUDA cores, one thread
// per output pixel); with f16 ones the implicit GEMM on tensor cores (mma.sync, f32 sums).
// Then the attention's statistics and vectors, the frames' layout, and the element's frame
// conversions (Y'CbCr, gray and packed R'G'B', both ways), bit for bit as its CPU code.

#ifndef IMDN_HOST
#define DEVICE __device__ __forceinline__
// called, not inlined: code that unrolled loops would otherwise repeat many times over
#define CALLED __device__ __noinline__
// loops over fragments and tiles unrolled, so that their arrays stay in registers
#define UNROLL _Pragma("unroll")
#define LANE ((int)(threadIdx.x & 31))
#define LANES 32
#define GLOBAL_INDEX ((long long)blockIdx.x * blockDim.x + threadIdx.x)
typedef unsigned short half_bits;
DEVICE float half_to_float(half_bits h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
DEVICE half_bits float_to_half(float f) {
    half_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
DEVICE void add_to(double* at, double v) { atomicAdd(at, v); }

// Two f16 values at a 4-byte aligned address, as one register.
DEVICE unsigned load_pair(const half_bits* p) { return *(const unsigned*)p; }
// D += A·B on tensor cores: A 16×16 f16 (row), B 16×8 f16 (col), D 16×8 f32, each lane
// holding its fragment registers (PTX ISA, "Matrix Fragments for mma.m16n8k16").
DEVICE void mma_16816(float d[4], const unsigned a[4], const unsigned b[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// IEEE arithmetic, never contracted into FMAs: the colour conversions match the element's CPU
// code (pixels.rs) to the bit.
#define ADD(a, b) __fadd_rn(a, b)
#define SUB(a, b) __fsub_rn(a, b)
#define MUL(a, b) __fmul_rn(a, b)
#define DIV(a, b) __fdiv_rn(a, b)

// The most output channels of a conv (IMDN's 64), and hidden channels of an attention.
#define MAX_COUT 64
#define MAX_MID 16

enum { ACT_NONE = 0, ACT_LEAKY_RELU = 1, ACT_RELU = 2 };

// Channels base[0 .. channels) of every pixel of an h×w grid of frames, `stride` elements
// per pixel (the buffer's channel count): pixel (f, y, x) at ((f·h + y)·w + x)·stride.
struct ViewArg {
    void* base;
    int stride;
    int channels;
    int h;
    int w;
};

struct ConvArgs {
    struct ViewArg src;
    // output channels in order across the views (dst[1].channels is 0 for one view)
    struct ViewArg dst[2];
    // added after the activation, at the element written (base null: none)
    struct ViewArg res;
    const float* res_gains;  // per channel of res; null: 1
    const float* src_scale;  // per frame, src_scale[f·scale_stride + ci]; null: none
    const void* weight;      // KRSC, [cout_pad][k][k][cin_pad]
    const float* bias;       // [cout_pad]
    const float* embed_code; // per frame, embed_code[f·code_stride]; null: none
    const float* embed_w;    // [cout]
    int scale_stride;
    int code_stride;
    int n;
    int oh;  // the output grid before a pixel shuffle
    int ow;
    int k;
    int stride;
    int cin;
    int cin_pad;
    int cout;
    int shuffle;  // s > 1: output channel c·s² + i·s + j to channel c of dst[0] at (s·y + i, s·x + j)
    int act;
    float slope;
};

struct StatsArgs {
    struct ViewArg src;
    float* dst;   // per frame, dst[f·dst_stride + c] = mean + std of channel c
    double* acc;  // per frame and channel, the sum and the sum of squares; zero between steps
    int dst_stride;
    int n;
    int chunk;  // pixels a warp of the sums adds up
};

struct AttentionArgs {
    const float* src;  // per frame, src[f·src_stride + c]
    float* dst;        // per frame, dst[f·dst_stride + c]
    const float* down_w;  // [mid_pad][cin_pad]
    const float* down_b;
    const float* up_w;  // [cin_pad][mid_pad]
    const float* up_b;
    int src_stride;
    int dst_stride;
    int cin;
    int cin_pad;
    int mid;
    int mid_pad;
    int n;
};

// A Y'CbCr component of a frame: sample i of row y at byte offset + i·step of row y
// (row y at plane + y·stride).
struct YuvComp {
    const unsigned char* plane;
    long long stride;
    int offset;
    int step;
};

// One axis of the chroma upsampling: output sample i lerps input samples i0 and i1 by f.
struct Tap {
    int i0;
    int i1;
    float f;
};

// A Y'CbCr or gray frame into planar R'G'B' f32 in [0, 1] (the element's read_yuv).
struct YuvInArgs {
    struct YuvComp comp[3];  // Y, Cb, Cr
    const struct Tap* xs;    // per output column
    const struct Tap* ys;    // per output row
    float* rgb;              // [3][h][w]
    float kr, kb, y_off, y_scale, c_off, c_scale;
    int w, h;
    int wide;   // 16-bit little-endian samples, the code in bits shift..shift + depth
    int shift;
    int mask;
    int gray;
};

// Planar R'G'B' f32 written as a Y'CbCr or gray frame (the element's write_yuv): luma per
// pixel, chroma as the mean over each subsampling block (clipped at odd edges).
struct YuvOutArgs {
    struct YuvComp comp[3];  // Y, Cb, Cr (their planes written)
    const float* rgb;        // [3][h][w]
    float kr, kb, y_off, y_scale, c_off, c_scale, max;
    int w, h;
    int y_count;  // luma samples a row holds: w, or more for packed 4:2:2 at an odd width
    int cw, ch;   // chroma samples a row, chroma rows
    int sub_x, sub_y;  // log2 of the chroma subsampling
    int wide;
    int shift;
    int gray;
};

// A packed R'G'B' frame (3 or 4 bytes a pixel) and planar R'G'B' f32, both ways (the element's
// unpack_row and pack_row): component c at byte rgb[c] of a pixel, the 4th byte (if any) at
// `fourth`, alpha where `has_alpha`.
struct PackedArgs {
    unsigned char* plane;
    long long stride;
    float* rgb;              // [3][h][w]
    unsigned char* alpha;    // [h][w]: read into where the format has alpha; written from (null: 255)
    int bpp;
    int rgb_at[3];
    int fourth;     // byte of the 4th component, −1 for none
    int has_alpha;
    int w, h;
};

// Frames between planar f32 ([n][3][planar_h][planar_w]) and the network's NHWC view. On
// the way in the network's frames are the planar ones with their border pixels replicated
// `margin` pixels out (and further right and down to the view's size); on the way out the
// planar frames are the view's cropped at (margin, margin).
struct FramesArgs {
    float* planar;
    struct ViewArg nhwc;
    int n;
    int planar_h, planar_w;
    int margin;
};

DEVICE float load(const float* p) { return *p; }
DEVICE float load(const half_bits* p) { return half_to_float(*p); }
DEVICE void store(float* p, float v) { *p = v; }
DEVICE void store(half_bits* p, float v) { *p = float_to_half(v); }

// Element index of channel 0 of pixel (f, y, x) in a view.
DEVICE long long pixel(const struct ViewArg& v, int f, int y, int x) {
    return (((long long)f * v.h + y) * v.w + x) * v.stride;
}

DEVICE float activate(float v, int act, float slope) {
    if (act == ACT_LEAKY_RELU) return v >= 0.0f ? v : slope * v;
    if (act == ACT_RELU) return v > 0.0f ? v : 0.0f;
    return v;
}

// A k×k conv (zero padding (k−1)/2, stride 1 or 2) with its epilogue: + code · embed, the
// activation, + residual · gain, the write through the views or the pixel shuffle.
template <typename T>
DEVICE void conv_direct(const struct ConvArgs& a) {
    long long i = GLOBAL_INDEX;
    if (i >= (long long)a.n * a.oh * a.ow) return;
    int ox = (int)(i % a.ow);
    int oy = (int)((i / a.ow) % a.oh);
    int f = (int)(i / ((long long)a.ow * a.oh));
    float acc[MAX_COUT];
    for (int co = 0; co < a.cout; co++) acc[co] = a.bias[co];
    const T* src = (const T*)a.src.base;
    const T* weight = (const T*)a.weight;
    const float* scale = a.src_scale ? a.src_scale + (long long)f * a.scale_stride : 0;
    const int pad = (a.k - 1) / 2, per_cout = a.k * a.k * a.cin_pad;
    for (int ky = 0; ky < a.k; ky++) {
        int iy = oy * a.stride + ky - pad;
        if (iy < 0 || iy >= a.src.h) continue;
        for (int kx = 0; kx < a.k; kx++) {
            int ix = ox * a.stride + kx - pad;
            if (ix < 0 || ix >= a.src.w) continue;
            const T* x = src + pixel(a.src, f, iy, ix);
            const T* w = weight + (ky * a.k + kx) * a.cin_pad;
            for (int ci = 0; ci < a.cin; ci++) {
                float v = load(x + ci);
                if (scale) v *= scale[ci];
                for (int co = 0; co < a.cout; co++) acc[co] += load(w + co * per_cout + ci) * v;
            }
        }
    }
    float code = a.embed_code ? a.embed_code[(long long)f * a.code_stride] : 0.0f;
    for (int co = 0; co < a.cout; co++) {
        float v = acc[co];
        if (a.embed_code) v += code * a.embed_w[co];
        v = activate(v, a.act, a.slope);
        int view = 0, ch = co, y = oy, x = ox;
        if (a.shuffle > 1) {
            int s = a.shuffle, sub = co % (s * s);
            ch = co / (s * s);
            y = oy * s + sub / s;
            x = ox * s + sub % s;
        } else if (co >= a.dst[0].channels) {
            view = 1;
            ch = co - a.dst[0].channels;
        }
        if (a.res.base) {
            float gain = a.res_gains ? a.res_gains[ch] : 1.0f;
            v += gain * load((const T*)a.res.base + pixel(a.res, f, y, x) + ch);
        }
        store((T*)a.dst[view].base + pixel(a.dst[view], f, y, x) + ch, v);
    }
}

// Two f16 values in one register, the first in the low half (a fragment's lower column).
DEVICE unsigned pack(half_bits lo, half_bits hi) { return (unsigned)lo | ((unsigned)hi << 16); }

// An output pixel of a conv: its frame and position, and whether it exists (a warp's last
// tile may run past the frames).
struct OutPixel {
    int f, y, x;
    bool valid;
};

DEVICE struct OutPixel out_pixel(const struct ConvArgs& a, long long p) {
    struct OutPixel o;
    o.valid = p < (long long)a.n * a.oh * a.ow;
    if (!o.valid) p = 0;
    o.x = (int)(p % a.ow);
    o.y = (int)((p / a.ow) % a.oh);
    o.f = (int)(p / ((long long)a.ow * a.oh));
    return o;
}

// Element kk of the implicit GEMM's row for output pixel o: kk = tap·cin_pad + ci (the
// packed weight's order), zero past the taps, in the channel padding and outside the frame.
DEVICE half_bits im2col_at(const struct ConvArgs& a, const struct OutPixel& o, int kk,
                           const float* scale) {
    int tap = kk / a.cin_pad, ci = kk % a.cin_pad;
    if (!o.valid || tap >= a.k * a.k || ci >= a.cin) return 0;
    int pad = (a.k - 1) / 2;
    int iy = o.y * a.stride + tap / a.k - pad, ix = o.x * a.stride + tap % a.k - pad;
    if (iy < 0 || iy >= a.src.h || ix < 0 || ix >= a.src.w) return 0;
    half_bits v = ((const half_bits*)a.src.base)[pixel(a.src, o.f, iy, ix) + ci];
    return scale ? float_to_half(half_to_float(v) * scale[ci]) : v;
}

// The epilogue of one output element (a pixel o, an output channel co) of accumulated
// products `v`: bias, + code · embed, the activation, + residual · gain, the write.
template <typename T>
CALLED void epilogue(const struct ConvArgs& a, struct OutPixel o, int co, float v) {
    v += a.bias[co];
    if (a.embed_code) v += a.embed_code[(long long)o.f * a.code_stride] * a.embed_w[co];
    v = activate(v, a.act, a.slope);
    int view = 0, ch = co, y = o.y, x = o.x;
    if (a.shuffle > 1) {
        int s = a.shuffle, sub = co % (s * s);
        ch = co / (s * s);
        y = o.y * s + sub / s;
        x = o.x * s + sub % s;
    } else if (co >= a.dst[0].channels) {
        view = 1;
        ch = co - a.dst[0].channels;
    }
    if (a.res.base) {
        float gain = a.res_gains ? a.res_gains[ch] : 1.0f;
        v += gain * load((const T*)a.res.base + pixel(a.res, o.f, y, x) + ch);
    }
    store((T*)a.dst[view].base + pixel(a.dst[view], o.f, y, x) + ch, v);
}

// Channels c, c + 1 of the pixel at `px` (null: outside the frame) as a fragment register,
// zero from channel `cin` on, times the attention `scale` if any: one 32-bit load where the
// pair is whole, aligned and unscaled.
DEVICE unsigned channel_pair(const half_bits* px, int c, int cin, const float* scale) {
    if (!px || c >= cin) return 0;
    const half_bits* at = px + c;
    if (c + 1 < cin && !scale && ((unsigned long long)at & 3) == 0)
        return load_pair(at);
    half_bits hi = c + 1 < cin ? at[1] : 0;
    if (!scale) return pack(at[0], hi);
    half_bits lo = float_to_half(half_to_float(at[0]) * scale[c]);
    if (c + 1 < cin) hi = float_to_half(half_to_float(hi) * scale[c + 1]);
    return pack(lo, hi);
}

// The B fragments of reduction kk..kk + 15 for every tile of 8 output channels, and their
// products with each pixel tile's `af` into `acc`. Weight rows (one output channel's
// reduction) are contiguous and start on multiples of 8, so a pair is one aligned 32-bit
// load; past `ktot` (the last chunk of a reduction not a multiple of 16) the weights are zero.
template <int NT, int MT>
DEVICE void mma_chunk(float acc[MT][NT][4], const unsigned af[MT][4], const half_bits* weight,
                      int ktot, int kk, int g, int t) {
    UNROLL
    for (int nt = 0; nt < NT; nt++) {
        const half_bits* w = weight + (long long)(nt * 8 + g) * ktot;
        unsigned bf[2];
        UNROLL
        for (int r = 0; r < 2; r++) {
            // b0: reduction 2t, 2t + 1; b1: 2t + 8, 2t + 9
            int at = kk + 2 * t + r * 8;
            bf[r] = at < ktot ? load_pair(w + at) : 0;
        }
        UNROLL
        for (int m = 0; m < MT; m++) mma_16816(acc[m][nt], af[m], bf);
    }
}

// A conv on tensor cores, f16 activations and weights, f32 sums: the implicit GEMM of MT × 16
// output pixels (a warp; each B fragment serves the MT tiles) × NT·8 output channels, over
// k·k·cin_pad in steps of 16. Lane (g, t) = (lane / 4, lane % 4) loads its fragments'
// elements itself: of each pixel tile's A, rows g and g + 8 (pixels), columns 2t, 2t + 1
// (+ 8) (the reduction); of B (the weights, KRSC: one output channel's reduction is
// contiguous) channel g, reduction 2t, 2t + 1 (+ 8). With cin_pad a multiple of 16 the
// reduction runs tap by tap, each tap's pixels found once; otherwise (the 3-channel heads)
// element by element.
template <int NT, int MT>
DEVICE void conv_mma(const struct ConvArgs& a) {
    const int per_warp = 16 * MT;
    long long p0 = GLOBAL_INDEX / 32 * per_warp;
    if (p0 >= (long long)a.n * a.oh * a.ow) return;  // a whole warp leaves together
    const int lane = (int)(threadIdx.x & 31), g = lane >> 2, t = lane & 3;
    // rows[2m + h]: pixel g + 8h of tile m
    struct OutPixel rows[2 * MT];
    const float* scale[2 * MT];
    UNROLL
    for (int r = 0; r < 2 * MT; r++) {
        rows[r] = out_pixel(a, p0 + 16 * (r >> 1) + g + 8 * (r & 1));
        scale[r] = a.src_scale ? a.src_scale + (long long)rows[r].f * a.scale_stride : 0;
    }
    const int ktot = a.k * a.k * a.cin_pad, pad = (a.k - 1) / 2;
    const half_bits* weight = (const half_bits*)a.weight;
    const half_bits* src = (const half_bits*)a.src.base;
    float acc[MT][NT][4];
    UNROLL
    for (int m = 0; m < MT; m++)
        UNROLL
        for (int nt = 0; nt < NT; nt++)
            UNROLL
            for (int e = 0; e < 4; e++) acc[m][nt][e] = 0.0f;
    unsigned af[MT][4];
    if (a.cin_pad % 16 == 0) {
        for (int tap = 0; tap < a.k * a.k; tap++) {
            const half_bits* px[2 * MT];
            UNROLL
            for (int r = 0; r < 2 * MT; r++) {
                const struct OutPixel& o = rows[r];
                int iy = o.y * a.stride + tap / a.k - pad, ix = o.x * a.stride + tap % a.k - pad;
                bool inside = o.valid && iy >= 0 && iy < a.src.h && ix >= 0 && ix < a.src.w;
                px[r] = inside ? src + pixel(a.src, o.f, iy, ix) : 0;
            }
            for (int c0 = 0; c0 < a.cin_pad; c0 += 16) {
                // a0: (g, 2t), a1: (g + 8, 2t), a2: (g, 2t + 8), a3: (g + 8, 2t + 8)
                UNROLL
                for (int m = 0; m < MT; m++)
                    UNROLL
                    for (int r = 0; r < 4; r++) {
                        int row = 2 * m + (r & 1), c = c0 + 2 * t + (r >> 1) * 8;
                        af[m][r] = channel_pair(px[row], c, a.cin, scale[row]);
                    }
                mma_chunk<NT, MT>(acc, af, weight, ktot, tap * a.cin_pad + c0, g, t);
            }
        }
    } else {
        for (int k0 = 0; k0 < ktot; k0 += 16) {
            UNROLL
            for (int m = 0; m < MT; m++)
                UNROLL
                for (int r = 0; r < 4; r++) {
                    int row = 2 * m + (r & 1), kk = k0 + 2 * t + (r >> 1) * 8;
                    af[m][r] = pack(im2col_at(a, rows[row], kk, scale[row]),
                                    im2col_at(a, rows[row], kk + 1, scale[row]));
                }
            mma_chunk<NT, MT>(acc, af, weight, ktot, k0, g, t);
        }
    }
    UNROLL
    for (int m = 0; m < MT; m++)
        UNROLL
        for (int nt = 0; nt < NT; nt++) {
            // d0, d1: pixel g, channels 2t, 2t + 1; d2, d3: pixel g + 8
            UNROLL
            for (int e = 0; e < 4; e++) {
                int co = nt * 8 + 2 * t + (e & 1);
                const struct OutPixel& o = rows[2 * m + (e >> 1)];
                if (co < a.cout && o.valid) epilogue<half_bits>(a, o, co, acc[m][nt][e]);
            }
        }
}

// One warp per frame and `chunk` pixels, a lane per channel (its loads coalesced across
// the lanes), adding its sums to the frame's accumulators.
template <typename T>
DEVICE void cca_sums(const struct StatsArgs& a) {
    long long warp = GLOBAL_INDEX / 32;
    long long pixels = (long long)a.src.h * a.src.w, chunks = (pixels + a.chunk - 1) / a.chunk;
    if (warp >= a.n * chunks) return;
    int f = (int)(warp / chunks);
    long long p0 = warp % chunks * a.chunk, p1 = p0 + a.chunk < pixels ? p0 + a.chunk : pixels;
    const T* base = (const T*)a.src.base + pixel(a.src, f, 0, 0);
    for (int c = LANE; c < a.src.channels; c += LANES) {
        double sum = 0.0, sum2 = 0.0;
        for (long long p = p0; p < p1; p++) {
            double v = load(base + p * a.src.stride + c);
            sum += v;
            sum2 += v * v;
        }
        add_to(a.acc + ((long long)f * a.src.channels + c) * 2, sum);
        add_to(a.acc + ((long long)f * a.src.channels + c) * 2 + 1, sum2);
    }
}

// One thread per frame and channel: mean + population std from the sums, which it zeroes
// for the next step.
DEVICE void cca_finish(const struct StatsArgs& a) {
    long long i = GLOBAL_INDEX;
    if (i >= (long long)a.n * a.src.channels) return;
    int f = (int)(i / a.src.channels), c = (int)(i % a.src.channels);
    double* acc = a.acc + i * 2;
    double pixels = (double)a.src.h * a.src.w, mean = acc[0] / pixels;
    double var = acc[1] / pixels - mean * mean;
    a.dst[(long long)f * a.dst_stride + c] = (float)(sqrt(var > 0.0 ? var : 0.0) + mean);
    acc[0] = 0.0;
    acc[1] = 0.0;
}

// One thread per frame: 1×1 → ReLU → 1×1 → sigmoid on the statistics vector.
DEVICE void cca_attention(const struct AttentionArgs& a) {
    long long f = GLOBAL_INDEX;
    if (f >= a.n) return;
    const float* x = a.src + f * a.src_stride;
    float hidden[MAX_MID];
    for (int m = 0; m < a.mid; m++) {
        float v = a.down_b[m];
        for (int c = 0; c < a.cin; c++) v += a.down_w[m * a.cin_pad + c] * x[c];
        hidden[m] = v > 0.0f ? v : 0.0f;
    }
    for (int c = 0; c < a.cin; c++) {
        float v = a.up_b[c];
        for (int m = 0; m < a.mid; m++) v += a.up_w[c * a.mid_pad + m] * hidden[m];
        a.dst[f * a.dst_stride + c] = 1.0f / (1.0f + expf(-v));
    }
}

DEVICE int clamp_index(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// One thread a pixel of the frames written: planar f32 into the NHWC input, or the NHWC
// output back.
template <typename T, bool TO_NHWC>
DEVICE void frames(const struct FramesArgs& a) {
    int h = TO_NHWC ? a.nhwc.h : a.planar_h, w = TO_NHWC ? a.nhwc.w : a.planar_w;
    long long i = GLOBAL_INDEX, plane = (long long)h * w;
    if (i >= a.n * plane) return;
    int f = (int)(i / plane), y = (int)(i % plane / w), x = (int)(i % w);
    long long planar_plane = (long long)a.planar_h * a.planar_w;
    if (TO_NHWC) {
        T* px = (T*)a.nhwc.base + pixel(a.nhwc, f, y, x);
        long long at = (long long)clamp_index(y - a.margin, a.planar_h) * a.planar_w +
                       clamp_index(x - a.margin, a.planar_w);
        for (int c = 0; c < 3; c++) store(px + c, a.planar[(f * 3 + c) * planar_plane + at]);
    } else {
        const T* px = (const T*)a.nhwc.base + pixel(a.nhwc, f, y + a.margin, x + a.margin);
        long long at = (long long)y * a.planar_w + x;
        for (int c = 0; c < 3; c++) a.planar[(f * 3 + c) * planar_plane + at] = load(px + c);
    }
}

// Sample i of row y of component c, as a float code.
DEVICE float yuv_sample(const struct YuvInArgs& a, int c, int y, int i) {
    const struct YuvComp& k = a.comp[c];
    const unsigned char* at = k.plane + y * k.stride + k.offset + (long long)i * k.step;
    if (!a.wide) return (float)at[0];
    return (float)(((at[0] | (at[1] << 8)) >> a.shift) & a.mask);
}

// Chroma component c at output pixel (x, y): each of the two chroma rows lerped horizontally,
// then the two rows vertically (the element's order).
DEVICE float yuv_chroma(const struct YuvInArgs& a, int c, const struct Tap& tx, const struct Tap& ty) {
    float top0 = yuv_sample(a, c, ty.i0, tx.i0), top1 = yuv_sample(a, c, ty.i0, tx.i1);
    float bot0 = yuv_sample(a, c, ty.i1, tx.i0), bot1 = yuv_sample(a, c, ty.i1, tx.i1);
    float top = ADD(top0, MUL(SUB(top1, top0), tx.f));
    float bottom = ADD(bot0, MUL(SUB(bot1, bot0), tx.f));
    return ADD(top, MUL(SUB(bottom, top), ty.f));
}

DEVICE float unit(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

// One thread a pixel.
DEVICE void yuv_in(const struct YuvInArgs& a) {
    long long i = GLOBAL_INDEX, n = (long long)a.w * a.h;
    if (i >= n) return;
    int x = (int)(i % a.w), y = (int)(i / a.w);
    float luma = DIV(SUB(yuv_sample(a, 0, y, x), a.y_off), a.y_scale);
    float r, g, b;
    if (a.gray) {
        r = g = b = unit(luma);
    } else {
        float cb = DIV(SUB(yuv_chroma(a, 1, a.xs[x], a.ys[y]), a.c_off), a.c_scale);
        float cr = DIV(SUB(yuv_chroma(a, 2, a.xs[x], a.ys[y]), a.c_off), a.c_scale);
        r = ADD(luma, MUL(MUL(2.0f, SUB(1.0f, a.kr)), cr));
        b = ADD(luma, MUL(MUL(2.0f, SUB(1.0f, a.kb)), cb));
        g = DIV(SUB(SUB(luma, MUL(a.kr, r)), MUL(a.kb, b)), SUB(SUB(1.0f, a.kr), a.kb));
        r = unit(r);
        g = unit(g);
        b = unit(b);
    }
    a.rgb[i] = r;
    a.rgb[n + i] = g;
    a.rgb[2 * n + i] = b;
}

extern "C" __global__ void yuv_in_f32(struct YuvInArgs a) { yuv_in(a); }

// One thread a pixel: bytes / 255, and the alpha byte where there is one.
extern "C" __global__ void packed_in_f32(struct PackedArgs a) {
    long long i = GLOBAL_INDEX, n = (long long)a.w * a.h;
    if (i >= n) return;
    int x = (int)(i % a.w), y = (int)(i / a.w);
    const unsigned char* px = a.plane + y * a.stride + (long long)x * a.bpp;
    for (int c = 0; c < 3; c++) a.rgb[c * n + i] = DIV((float)px[a.rgb_at[c]], 255.0f);
    if (a.has_alpha && a.alpha) a.alpha[i] = px[a.fourth];
}

// One thread a pixel: each value clamped to [0, 1] (NaN: 0) times 255, rounded to nearest
// even; the 4th byte from `alpha` where the format has alpha and it is given, else 255.
extern "C" __global__ void packed_out_f32(struct PackedArgs a) {
    long long i = GLOBAL_INDEX, n = (long long)a.w * a.h;
    if (i >= n) return;
    int x = (int)(i % a.w), y = (int)(i / a.w);
    unsigned char* px = a.plane + y * a.stride + (long long)x * a.bpp;
    for (int c = 0; c < 3; c++)
        px[a.rgb_at[c]] = (unsigned char)rintf(MUL(fminf(fmaxf(a.rgb[c * n + i], 0.0f), 1.0f), 255.0f));
    if (a.fourth >= 0) px[a.fourth] = a.has_alpha && a.alpha ? a.alpha[i] : 255;
}

// A code: the value clamped to [0, max], rounded half up (NaN: 0), as the element rounds.
DEVICE unsigned code(const struct YuvOutArgs& a, float v) {
    return (unsigned)floorf(ADD(fminf(fmaxf(v, 0.0f), a.max), 0.5f));
}

DEVICE void put_sample(const struct YuvOutArgs& a, int c, int y, int i, unsigned v) {
    const struct YuvComp& k = a.comp[c];
    unsigned char* at = (unsigned char*)k.plane + y * k.stride + k.offset + (long long)i * k.step;
    if (a.wide) {
        unsigned s = v << a.shift;
        at[0] = (unsigned char)(s & 0xff);
        at[1] = (unsigned char)((s >> 8) & 0xff);
    } else {
        at[0] = (unsigned char)v;
    }
}

// Pixel p's R'G'B', clamped to [0, 1], and its luma.
DEVICE void rgb_luma(const struct YuvOutArgs& a, long long p, float rgb[3], float* luma) {
    long long n = (long long)a.w * a.h;
    for (int c = 0; c < 3; c++) rgb[c] = unit(a.rgb[c * n + p]);
    *luma = ADD(ADD(MUL(a.kr, rgb[0]), MUL(SUB(SUB(1.0f, a.kr), a.kb), rgb[1])), MUL(a.kb, rgb[2]));
}

// One thread a luma sample: past the width (packed 4:2:2 at an odd width) the last pixel's.
extern "C" __global__ void yuv_out_luma_f32(struct YuvOutArgs a) {
    long long i = GLOBAL_INDEX;
    if (i >= (long long)a.y_count * a.h) return;
    int x = (int)(i % a.y_count), y = (int)(i / a.y_count);
    float rgb[3], luma;
    rgb_luma(a, (long long)y * a.w + (x < a.w ? x : a.w - 1), rgb, &luma);
    put_sample(a, 0, y, x, code(a, ADD(a.y_off, MUL(luma, a.y_scale))));
}

// One thread a chroma sample: Cb and Cr summed over its block, a row at a time and left to
// right within a row (the element's order), then their means.
extern "C" __global__ void yuv_out_chroma_f32(struct YuvOutArgs a) {
    long long k = GLOBAL_INDEX;
    if (a.gray || k >= (long long)a.cw * a.ch) return;
    int i = (int)(k % a.cw), j = (int)(k / a.cw);
    int y0 = j << a.sub_y, y1 = (j + 1) << a.sub_y;
    if (y1 > a.h) y1 = a.h;
    int x0 = i << a.sub_x, x1 = (i + 1) << a.sub_x;
    if (x1 > a.w) x1 = a.w;
    float cb = 0.0f, cr = 0.0f;
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            float rgb[3], luma;
            rgb_luma(a, (long long)y * a.w + x, rgb, &luma);
            cb = ADD(cb, DIV(SUB(rgb[2], luma), MUL(2.0f, SUB(1.0f, a.kb))));
            cr = ADD(cr, DIV(SUB(rgb[0], luma), MUL(2.0f, SUB(1.0f, a.kr))));
        }
    }
    float per = DIV(1.0f, (float)((y1 - y0) * (x1 - x0)));
    put_sample(a, 1, j, i, code(a, ADD(a.c_off, MUL(MUL(cb, per), a.c_scale))));
    put_sample(a, 2, j, i, code(a, ADD(a.c_off, MUL(MUL(cr, per), a.c_scale))));
}
extern "C" __global__ void frames_in_f32(struct FramesArgs a) { frames<float, true>(a); }
extern "C" __global__ void frames_in_f16(struct FramesArgs a) { frames<half_bits, true>(a); }
extern "C" __global__ void frames_out_f32(struct FramesArgs a) { frames<float, false>(a); }
extern "C" __global__ void frames_out_f16(struct FramesArgs a) { frames<half_bits, false>(a); }
extern "C" __global__ void conv_direct_f32(struct ConvArgs a) { conv_direct<float>(a); }
// One entry per count of 8-channel output tiles (n), with the 16-pixel tiles a warp computes
// (m) that args.rs's rule gives it, each with the registers it needs.
extern "C" __global__ void conv_mma_f16_n1_m2(struct ConvArgs a) { conv_mma<1, 2>(a); }
extern "C" __global__ void conv_mma_f16_n2_m2(struct ConvArgs a) { conv_mma<2, 2>(a); }
extern "C" __global__ void conv_mma_f16_n3_m2(struct ConvArgs a) { conv_mma<3, 2>(a); }
extern "C" __global__ void conv_mma_f16_n4_m2(struct ConvArgs a) { conv_mma<4, 2>(a); }
extern "C" __global__ void conv_mma_f16_n5_m1(struct ConvArgs a) { conv_mma<5, 1>(a); }
extern "C" __global__ void conv_mma_f16_n6_m1(struct ConvArgs a) { conv_mma<6, 1>(a); }
extern "C" __global__ void conv_mma_f16_n7_m1(struct ConvArgs a) { conv_mma<7, 1>(a); }
extern "C" __global__ void conv_mma_f16_n8_m1(struct ConvArgs a) { conv_mma<8, 1>(a); }
extern "C" __global__ void cca_sums_f32(struct StatsArgs a) { cca_sums<float>(a); }
extern "C" __global__ void cca_sums_f16(struct StatsArgs a) { cca_sums<half_bits>(a); }
extern "C" __global__ void cca_finish_f32(struct StatsArgs a) { cca_finish(a); }
extern "C" __global__ void cca_attention_f32(struct AttentionArgs a) { cca_attention(a); }
