//! Winograd F(2×2, 3×3) for the stride-1 3×3 convs with 8 or more input channels (IMDN's 64 and
//! 48, IMDN_RTC's 12 and 9).
//!
//! A 2×2 output tile of a 3×3 conv costs 16 multiply-adds per channel pair instead of 36: each
//! 4×4 input tile d is transformed (V = Bᵀ d B), the 16 transform positions are 16 small GEMMs
//! against weights transformed once at load (U = G g Gᵀ), and the output transform (Y = Aᵀ M A)
//! runs with bias, residual and LeakyReLU fused into the write. Work goes in blocks of
//! [`Tiles::block_tiles`] tiles along one tile row: the block's transformed input stays in L2,
//! and the GEMM results of one panel of [`PANEL`] output channels stay in L1 until they are
//! transformed. Errors stay at float rounding (the transforms only add, subtract and halve):
//! the tests of [`plan`](super::plan) check both Winograd kernels against im2col, and
//! `tests/cpu.rs` whole networks against candle's.
//!
//! The analytic FLOP count of `imdn bench` stays the direct conv's, so a model's "GFLOP/s" on
//! this path is an effective rate that can exceed the machine's GEMM rate.

use super::simd::{LANES, PANEL, RowDst};
#[cfg(target_arch = "x86_64")]
use super::simd::{Ymm, store_row_avx2};
use super::transform::{bt2 as bt, kernel2};
use super::types::WinogradWeights;
use super::winograd_job::Tiles;

/// F(2×2, 3×3): 2×2 output tiles from 4×4 input tiles, 16 positions.
pub(super) struct F2;

/// Weights transformed for F(2×2, 3×3): 16 positions.
pub fn weights(weight: &[f32], cin: usize, cout: usize) -> WinogradWeights {
    WinogradWeights::new(weight, cin, cout, kernel2)
}

/// Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]] applied to x0..x3.
#[inline(always)]
fn at<T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T>>(x: [T; 4]) -> [T; 2] {
    [x[0] + x[1] + x[2], x[1] - x[2] - x[3]]
}

impl Tiles<2, 4> for F2 {
    /// 16·PANEL·64 floats (24 KiB).
    const CHUNK: usize = 64;

    /// Near 256 KiB of transformed input (64 tiles at 64 channels); few channels get long
    /// blocks.
    fn block_tiles(cin: usize) -> usize {
        (4096 / cin.max(1)).clamp(32, 512) / LANES * LANES
    }

    /// V = Bᵀ d B for the ntp tiles of one input channel (portable): tile k's 4×4 input is
    /// rows[r][2k..2k + 4]; `v` gets [16][cin][ntp], positions `v_stride` apart.
    fn input_transform(rows: [&[f32]; 4], ntp: usize, ci: usize, v_stride: usize, v: &mut [f32]) {
        for k in 0..ntp {
            let d: [[f32; 4]; 4] =
                std::array::from_fn(|r| std::array::from_fn(|j| rows[r][2 * k + j]));
            // Bᵀ d, column by column, then each row times B
            let cols: [[f32; 4]; 4] =
                std::array::from_fn(|j| bt([d[0][j], d[1][j], d[2][j], d[3][j]]));
            for i in 0..4 {
                let row = bt([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]);
                for (j, &x) in row.iter().enumerate() {
                    v[(i * 4 + j) * v_stride + ci * ntp + k] = x;
                }
            }
        }
    }

    /// [`Tiles::input_transform`] with 8 tiles per AVX register. Tiles are deinterleaved within
    /// each 128-bit lane only (no lane-crossing permute), so each group of 8 holds tiles in the
    /// order 0 1 4 5 2 3 6 7; [`Tiles::output_transform_avx2`] undoes that order, and the GEMM
    /// does not care.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn input_transform_avx2(
        rows: [&[f32]; 4],
        ntp: usize,
        ci: usize,
        v_stride: usize,
        v: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        assert!(
            rows.iter().all(|r| r.len() >= 2 * ntp + 2)
                && v.len() >= 15 * v_stride + (ci + 1) * ntp
        );
        let vp = v.as_mut_ptr();
        for k in (0..ntp).step_by(8) {
            // d[r][j] for the group's 8 tiles: columns 2k + j (+ 2 per tile)
            let d: [[__m256; 4]; 4] = std::array::from_fn(|r| {
                // SAFETY: reads rows[r][2k..2k + 18] ⊂ [0, 2·ntp + 2) as asserted
                unsafe {
                    let p = rows[r].as_ptr().add(2 * k);
                    let (a, b) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
                    let (a2, b2) = (_mm256_loadu_ps(p.add(2)), _mm256_loadu_ps(p.add(10)));
                    [
                        _mm256_shuffle_ps::<0b10_00_10_00>(a, b),
                        _mm256_shuffle_ps::<0b11_01_11_01>(a, b),
                        _mm256_shuffle_ps::<0b10_00_10_00>(a2, b2),
                        _mm256_shuffle_ps::<0b11_01_11_01>(a2, b2),
                    ]
                }
            });
            let cols: [[Ymm; 4]; 4] = std::array::from_fn(|j| {
                bt([Ymm(d[0][j]), Ymm(d[1][j]), Ymm(d[2][j]), Ymm(d[3][j])])
            });
            let v_rows: [[Ymm; 4]; 4] =
                std::array::from_fn(|i| bt([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]));
            for (i, row) in v_rows.iter().enumerate() {
                for (j, x) in row.iter().enumerate() {
                    // SAFETY: position (i, j), channel ci, tiles k..k + 8 < ntp: within v
                    unsafe { _mm256_storeu_ps(vp.add((i * 4 + j) * v_stride + ci * ntp + k), x.0) };
                }
            }
        }
    }

    /// Y = Aᵀ M A for row `r` of the panel (portable): `rows` gets the channel's two output rows
    /// [a][2·ntp], tile k's columns at 2k and 2k + 1.
    fn output_transform(m: &[f32], r: usize, ntp: usize, rows: &mut [f32]) {
        let mm = |xi: usize, k: usize| m[(xi * PANEL + r) * ntp + k];
        for k in 0..ntp {
            // Aᵀ M, column by column, then each row times A
            let cols: [[f32; 2]; 4] =
                std::array::from_fn(|j| at([mm(j, k), mm(4 + j, k), mm(8 + j, k), mm(12 + j, k)]));
            for a in 0..2 {
                let y = at([cols[0][a], cols[1][a], cols[2][a], cols[3][a]]);
                rows[a * 2 * ntp + 2 * k] = y[0];
                rows[a * 2 * ntp + 2 * k + 1] = y[1];
            }
        }
    }

    /// [`Tiles::output_transform`] for tiles in the AVX order of
    /// [`Tiles::input_transform_avx2`] (interleaving each 128-bit lane's even and odd columns
    /// puts them back in column order), with the bias, residual and activation applied on the
    /// way to `dst`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn output_transform_avx2(m: &[f32], r: usize, ntp: usize, dst: &RowDst<2>) {
        use std::arch::x86_64::*;
        assert!(m.len() >= 16 * PANEL * ntp && r < PANEL && dst.valid <= 2 * ntp);
        let mp = m.as_ptr();
        for k in (0..ntp).step_by(8) {
            let x0 = 2 * k;
            if x0 >= dst.valid {
                break;
            }
            // SAFETY: position xi, row r, tiles k..k + 8 < ntp: within m
            let mm =
                |xi: usize| Ymm(unsafe { _mm256_loadu_ps(mp.add((xi * PANEL + r) * ntp + k)) });
            // Aᵀ M column by column, then each of the two rows times A; named values, not
            // indexed arrays, so that everything stays in registers
            let col = |j: usize| at([mm(j), mm(4 + j), mm(8 + j), mm(12 + j)]);
            let ([c00, c01], [c10, c11], [c20, c21], [c30, c31]) = (col(0), col(1), col(2), col(3));
            let rows = [at([c00, c10, c20, c30]), at([c01, c11, c21, c31])];
            for (a, &[even, odd]) in rows.iter().enumerate().take(dst.rows) {
                let halves = [
                    _mm256_unpacklo_ps(even.0, odd.0),
                    _mm256_unpackhi_ps(even.0, odd.0),
                ];
                // SAFETY: AVX2 is present; a < dst.rows, x0 < dst.valid
                unsafe { store_row_avx2(dst, a, x0, halves) };
            }
        }
    }
}
