//! The GEMM micro-kernel the Winograd kernels share (6×16 accumulators in AVX registers,
//! with a portable fallback), the row store that fuses bias, residual and LeakyReLU, and the
//! AVX register type their transforms are written with.

/// Output channels per GEMM micro-kernel (rows of accumulators).
pub const PANEL: usize = 6;
/// Tiles per micro-kernel column chunk (two AVX vectors).
pub const LANES: usize = 16;
/// Floats between the transformed input's positions beyond cin·ntp: without it the 16 stores
/// of one tile are a multiple of 4 KiB apart and evict each other from one L1 set.
pub const V_SKEW: usize = 32;

/// Whether the AVX2 + FMA kernels can run here.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One channel's output rows in a block: `rows` (1..=R) rows of `valid` pixels each.
pub(super) struct RowDst<const R: usize> {
    pub out: [*mut f32; R],
    /// Residual rows to add (Prefill::BiasPlus).
    pub res: Option<[*const f32; R]>,
    pub rows: usize,
    pub valid: usize,
    pub bias: f32,
    /// Add to what the output holds (Prefill::Keep).
    pub keep: bool,
    pub lrelu: bool,
}

impl<const R: usize> RowDst<R> {
    /// The value written for transform result `v` over `old`, with residual `res`.
    #[inline(always)]
    pub fn finish(&self, v: f32, old: f32, res: Option<f32>) -> f32 {
        let mut x = v + self.bias + res.unwrap_or(0.0);
        if self.keep {
            x += old;
        }
        if self.lrelu { x.max(x * 0.05) } else { x }
    }
}

/// An AVX register with + and −, so the transforms read the same for scalars and vectors.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Ymm(pub(super) std::arch::x86_64::__m256);

#[cfg(target_arch = "x86_64")]
impl std::ops::Add for Ymm {
    type Output = Ymm;
    #[inline(always)]
    fn add(self, o: Ymm) -> Ymm {
        // SAFETY: only built inside the AVX2 kernels, which run where AVX is present
        Ymm(unsafe { std::arch::x86_64::_mm256_add_ps(self.0, o.0) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Mul<f32> for Ymm {
    type Output = Ymm;
    #[inline(always)]
    fn mul(self, k: f32) -> Ymm {
        // SAFETY: as for Add
        Ymm(unsafe {
            std::arch::x86_64::_mm256_mul_ps(self.0, std::arch::x86_64::_mm256_set1_ps(k))
        })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Sub for Ymm {
    type Output = Ymm;
    #[inline(always)]
    fn sub(self, o: Ymm) -> Ymm {
        // SAFETY: as for Add
        Ymm(unsafe { std::arch::x86_64::_mm256_sub_ps(self.0, o.0) })
    }
}

/// m[r][t] = Σ_k u[k][r] · v[k][t] for one panel and n tiles: u [cin][PANEL], v [cin][n] with
/// row stride `v_rs`, m [PANEL][n].
pub(super) fn panel_gemm(
    u: &[f32],
    (v, v_rs): (&[f32], usize),
    m: &mut [f32],
    cin: usize,
    n: usize,
    simd: bool,
) {
    assert!(u.len() >= cin * PANEL && m.len() >= PANEL * n && n <= v_rs);
    assert!(cin == 0 || v.len() >= (cin - 1) * v_rs + n);
    debug_assert_eq!(n % LANES, 0);
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: the features are present; bounds as asserted above
        unsafe { panel_gemm_avx2(u, (v, v_rs), m, cin, n) };
        return;
    }
    let _ = simd;
    for t in (0..n).step_by(LANES) {
        let mut acc = [[0f32; LANES]; PANEL];
        for k in 0..cin {
            let b = &v[k * v_rs + t..][..LANES];
            for (r, row) in acc.iter_mut().enumerate() {
                let a = u[k * PANEL + r];
                row.iter_mut().zip(b).for_each(|(o, &x)| *o += a * x);
            }
        }
        for (r, row) in acc.iter().enumerate() {
            m[r * n + t..][..LANES].copy_from_slice(row);
        }
    }
}

/// [`panel_gemm`] with 6×16 accumulators in 12 AVX registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_gemm_avx2(
    u: &[f32],
    (v, v_rs): (&[f32], usize),
    m: &mut [f32],
    cin: usize,
    n: usize,
) {
    use std::arch::x86_64::*;
    let (u, v, mp) = (u.as_ptr(), v.as_ptr(), m.as_mut_ptr());
    for t in (0..n).step_by(LANES) {
        let mut acc = [[_mm256_setzero_ps(); 2]; PANEL];
        for k in 0..cin {
            // SAFETY: k < cin and t + 16 ≤ n: within v [cin][v_rs] and u [cin][PANEL]
            unsafe {
                let b0 = _mm256_loadu_ps(v.add(k * v_rs + t));
                let b1 = _mm256_loadu_ps(v.add(k * v_rs + t + 8));
                for (r, row) in acc.iter_mut().enumerate() {
                    let a = _mm256_broadcast_ss(&*u.add(k * PANEL + r));
                    row[0] = _mm256_fmadd_ps(a, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(a, b1, row[1]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            // SAFETY: r < PANEL, t + 16 ≤ n: within m [PANEL][n]
            unsafe {
                _mm256_storeu_ps(mp.add(r * n + t), row[0]);
                _mm256_storeu_ps(mp.add(r * n + t + 8), row[1]);
            }
        }
    }
}

/// Writes `vals`, output columns x0..x0 + 8·N of row `a` in order, with the bias, residual,
/// accumulation and activation of `dst` applied; columns from `dst.valid` on are dropped.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn store_row_avx2<const R: usize, const N: usize>(
    dst: &RowDst<R>,
    a: usize,
    x0: usize,
    vals: [std::arch::x86_64::__m256; N],
) {
    use std::arch::x86_64::*;
    assert!(a < dst.rows && x0 < dst.valid);
    if x0 + 8 * N <= dst.valid {
        let (bias, slope) = (_mm256_set1_ps(dst.bias), _mm256_set1_ps(0.05));
        for (h, &y) in vals.iter().enumerate() {
            // SAFETY: columns x0 + 8h..x0 + 8h + 8 < valid of this block's rows
            unsafe {
                let o = dst.out[a].add(x0 + 8 * h);
                let mut v = _mm256_add_ps(y, bias);
                if let Some(res) = dst.res {
                    v = _mm256_add_ps(v, _mm256_loadu_ps(res[a].add(x0 + 8 * h)));
                }
                if dst.keep {
                    v = _mm256_add_ps(v, _mm256_loadu_ps(o));
                }
                if dst.lrelu {
                    v = _mm256_max_ps(v, _mm256_mul_ps(v, slope));
                }
                _mm256_storeu_ps(o, v);
            }
        }
        return;
    }
    for (h, &y) in vals.iter().enumerate() {
        let mut tail = [0f32; 8];
        // SAFETY: tail holds 8 floats
        unsafe { _mm256_storeu_ps(tail.as_mut_ptr(), y) };
        let x1 = x0 + 8 * h;
        for (x, &v) in tail.iter().enumerate().take(dst.valid.saturating_sub(x1)) {
            // SAFETY: column x1 + x < valid of this block's rows
            unsafe {
                let o = dst.out[a].add(x1 + x);
                let res = dst.res.map(|r| *r[a].add(x1 + x));
                *o = dst.finish(v, *o, res);
            }
        }
    }
}
