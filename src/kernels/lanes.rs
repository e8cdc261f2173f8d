//! Sixteen f32 lanes as one value, so the streaming kernels ([`rowconv`](super::rowconv)) are
//! written once and run on AVX-512 registers where the CPU has them and on plain arrays
//! (which the compiler vectorises for AVX2) elsewhere. A row's last vector, when it holds
//! eight tiles or fewer, runs on half registers ([`Ymm`]): the lanes past eight are never
//! computed, so they keep the zeros they were allocated with.
//!
//! The kernels use these values without closures: a closure is compiled without its caller's
//! `target_feature`, and where it is not inlined every lane operation becomes a call.

use std::ops::{Add, Mul, Sub};

/// Lanes per value.
pub const N: usize = 16;

/// Sixteen f32 lanes (or the first eight of sixteen: [`Ymm`]).
pub trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Mul<f32, Output = Self>
{
    /// Output channels a GEMM keeps in registers at once (a multiple of 4): 32 AVX-512
    /// registers hold 16 such values and more; AVX2's 16 registers, two per value, only 4.
    const ACCUMULATORS: usize;
    fn splat(v: f32) -> Self;
    /// # Safety
    /// `p` must be valid for reading 16 floats.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` must be valid for writing 16 floats (a [`Ymm`] writes the first 8).
    unsafe fn store(self, p: *mut f32);
    /// `self + a·b`.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `self·k + c` in one FMA.
    fn times_plus(self, k: f32, c: Self) -> Self;
    /// `c − self·k` in one FMA.
    fn minus_times(self, k: f32, c: Self) -> Self;
    /// LeakyReLU, slope 0.05.
    fn lrelu(self) -> Self;
    /// The lanes whose bit in `mask` is set, the others zero.
    fn keep(self, mask: u16) -> Self;
}

/// The portable value: an array the compiler vectorises inside a `target_feature` function.
#[derive(Clone, Copy)]
#[repr(align(64))]
pub struct Array(pub [f32; N]);

impl Add for Array {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        let mut r = self;
        for (r, o) in r.0.iter_mut().zip(o.0) {
            *r += o;
        }
        r
    }
}

impl Sub for Array {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        let mut r = self;
        for (r, o) in r.0.iter_mut().zip(o.0) {
            *r -= o;
        }
        r
    }
}

impl Mul for Array {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        let mut r = self;
        for (r, o) in r.0.iter_mut().zip(o.0) {
            *r *= o;
        }
        r
    }
}

impl Mul<f32> for Array {
    type Output = Self;
    #[inline(always)]
    fn mul(self, k: f32) -> Self {
        let mut r = self;
        for r in &mut r.0 {
            *r *= k;
        }
        r
    }
}

impl Lanes for Array {
    const ACCUMULATORS: usize = 4;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; N])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable floats
        Self(unsafe { p.cast::<[f32; N]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 16 writable floats
        unsafe { p.cast::<[f32; N]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // a·b + self rounded twice: `f32::mul_add` would call libm where FMA is absent
        let mut r = self;
        for i in 0..N {
            r.0[i] += a.0[i] * b.0[i];
        }
        r
    }
    #[inline(always)]
    fn times_plus(self, k: f32, c: Self) -> Self {
        let mut r = self;
        for i in 0..N {
            r.0[i] = r.0[i] * k + c.0[i];
        }
        r
    }
    #[inline(always)]
    fn minus_times(self, k: f32, c: Self) -> Self {
        let mut r = self;
        for i in 0..N {
            r.0[i] = c.0[i] - r.0[i] * k;
        }
        r
    }
    #[inline(always)]
    fn lrelu(self) -> Self {
        let mut r = self;
        for r in &mut r.0 {
            *r = r.max(*r * 0.05);
        }
        r
    }
    #[inline(always)]
    fn keep(self, mask: u16) -> Self {
        let mut r = self;
        for (i, r) in r.0.iter_mut().enumerate() {
            if mask >> i & 1 == 0 {
                *r = 0.0;
            }
        }
        r
    }
}

/// Asks for the cache line at `p` ahead of its use (a hint: any address is allowed).
#[inline(always)]
pub fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
}

/// `len` zero floats (a multiple of 16) on 64-byte boundaries, so that vectors at multiples
/// of 16 floats never straddle two cache lines.
pub fn aligned_zeros(len: usize) -> Vec<Array> {
    assert!(len.is_multiple_of(N));
    vec![Array([0.0; N]); len / N]
}

/// The floats of an aligned buffer.
pub fn floats(buf: &[Array]) -> &[f32] {
    // SAFETY: `Array` is 16 floats with no padding (its size is its alignment, 64)
    unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), buf.len() * N) }
}

/// The floats of an aligned buffer, to write.
pub fn floats_mut(buf: &mut [Array]) -> &mut [f32] {
    // SAFETY: as in `floats`
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), buf.len() * N) }
}

/// An AVX-512 register; only built inside `target_feature(enable = "avx512f")` functions.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Zmm(std::arch::x86_64::__m512);

/// The first eight of sixteen lanes in an AVX-512VL half register, for a row's last vector
/// of tiles when it holds eight or fewer: half the work of a [`Zmm`]. Loads and stores touch
/// the first eight floats; only built inside `target_feature(enable = "avx512f,avx512vl")`
/// functions.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Ymm(std::arch::x86_64::__m256);

#[cfg(target_arch = "x86_64")]
mod registers {
    use std::arch::x86_64::*;
    use std::ops::{Add, Mul, Sub};

    use super::{Lanes, Ymm, Zmm};

    /// The lane operations of a register type, from its intrinsics (named in full, so that
    /// the two types read alike).
    macro_rules! register_lanes {
        ($t:ident, mask $mask:ty,
         $add:ident, $sub:ident, $mul:ident, $set1:ident, $loadu:ident, $storeu:ident,
         $fmadd:ident, $fnmadd:ident, $max:ident, $maskz_mov:ident) => {
            // SAFETY (every block of these impls): values of the type exist only inside
            // kernels that run where its instructions are present (checked by `avx512()`
            // before they are called).
            impl Add for $t {
                type Output = Self;
                #[inline(always)]
                fn add(self, o: Self) -> Self {
                    Self(unsafe { $add(self.0, o.0) })
                }
            }

            impl Sub for $t {
                type Output = Self;
                #[inline(always)]
                fn sub(self, o: Self) -> Self {
                    Self(unsafe { $sub(self.0, o.0) })
                }
            }

            impl Mul for $t {
                type Output = Self;
                #[inline(always)]
                fn mul(self, o: Self) -> Self {
                    Self(unsafe { $mul(self.0, o.0) })
                }
            }

            impl Mul<f32> for $t {
                type Output = Self;
                #[inline(always)]
                fn mul(self, k: f32) -> Self {
                    Self(unsafe { $mul(self.0, $set1(k)) })
                }
            }

            impl Lanes for $t {
                const ACCUMULATORS: usize = 16;
                #[inline(always)]
                fn splat(v: f32) -> Self {
                    Self(unsafe { $set1(v) })
                }
                #[inline(always)]
                unsafe fn load(p: *const f32) -> Self {
                    Self(unsafe { $loadu(p) })
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut f32) {
                    unsafe { $storeu(p, self.0) }
                }
                #[inline(always)]
                fn mul_add(self, a: Self, b: Self) -> Self {
                    Self(unsafe { $fmadd(a.0, b.0, self.0) })
                }
                #[inline(always)]
                fn times_plus(self, k: f32, c: Self) -> Self {
                    Self(unsafe { $fmadd(self.0, $set1(k), c.0) })
                }
                #[inline(always)]
                fn minus_times(self, k: f32, c: Self) -> Self {
                    Self(unsafe { $fnmadd(self.0, $set1(k), c.0) })
                }
                #[inline(always)]
                fn lrelu(self) -> Self {
                    Self(unsafe { $max(self.0, $mul(self.0, $set1(0.05))) })
                }
                #[inline(always)]
                fn keep(self, mask: u16) -> Self {
                    // a Ymm's lanes past eight are not computed: the mask's low byte
                    Self(unsafe { $maskz_mov(mask as $mask, self.0) })
                }
            }
        };
    }

    register_lanes!(Zmm, mask u16,
        _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_loadu_ps,
        _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_max_ps, _mm512_maskz_mov_ps);
    register_lanes!(Ymm, mask u8,
        _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_loadu_ps,
        _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_max_ps, _mm256_maskz_mov_ps);
}

/// Whether the AVX-512 kernels can run here.
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
