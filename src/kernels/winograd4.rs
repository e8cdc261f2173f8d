//! Winograd F(4×4, 3×3) for the stride-1 3×3 convs with many input channels (IMDN's 64 and
//! 48): a 4×4 output tile costs 36 multiply-adds per channel pair instead of 144 (F(2×2, 3×3)
//! in [`super::winograd`]: 64). The layout and the blocking are that module's (their shared
//! part is [`super::winograd_job`]): each 6×6 input tile is transformed (V = Bᵀ d B), the 36
//! transform positions are 36 GEMMs of one panel of output channels against the block's tiles
//! (the same GEMM micro-kernel), and the output transform (Y = Aᵀ M A) writes with bias,
//! residual and LeakyReLU fused. Its transforms multiply by 2, 4, 5 and 8 (and the weights' by
//! 1/6 and 1/24), so its rounding error is larger than F(2×2, 3×3)'s, still near float rounding
//! (the tests of [`plan`](super::plan) check it against im2col within 4e-5 of the outputs'
//! scale; `tests/cpu.rs` checks whole networks against candle's). Which convs run this way is
//! [`plan`](super::plan)'s choice.

use super::simd::{LANES, PANEL, RowDst};
#[cfg(target_arch = "x86_64")]
use super::simd::{Ymm, store_row_avx2};
use super::transform::{at4 as at, bt4 as bt, kernel4};
use super::types::WinogradWeights;
use super::winograd_job::Tiles;

/// Transform positions of a 6×6 tile.
const POS: usize = 36;

/// F(4×4, 3×3): 4×4 output tiles from 6×6 input tiles, 36 positions.
pub(super) struct F4;

/// Weights transformed for F(4×4, 3×3): 36 positions.
pub fn weights(weight: &[f32], cin: usize, cout: usize) -> WinogradWeights {
    WinogradWeights::new(weight, cin, cout, kernel4)
}

impl Tiles<4, 6> for F4 {
    /// 36·PANEL·32 floats (27 KiB).
    const CHUNK: usize = 32;

    /// Near 300 KiB of transformed input.
    fn block_tiles(cin: usize) -> usize {
        (2048 / cin.max(1)).clamp(LANES, 256) / LANES * LANES
    }

    /// V = Bᵀ d B for the ntp tiles of one input channel (portable): tile k's 6×6 input is
    /// rows[r][4k..4k + 6]; `v` gets [36][cin][ntp], positions `v_stride` apart.
    fn input_transform(rows: [&[f32]; 6], ntp: usize, ci: usize, v_stride: usize, v: &mut [f32]) {
        for k in 0..ntp {
            // d B row by row, then Bᵀ down each column
            let e: [[f32; 6]; 6] =
                std::array::from_fn(|r| bt(std::array::from_fn(|j| rows[r][4 * k + j])));
            for j in 0..6 {
                let col = bt(std::array::from_fn(|r| e[r][j]));
                for (i, &x) in col.iter().enumerate() {
                    v[(i * 6 + j) * v_stride + ci * ntp + k] = x;
                }
            }
        }
    }

    /// [`Tiles::input_transform`] with 8 tiles per AVX register: a 4×4 transpose within each
    /// 128-bit lane turns the row's columns 4k..4k + 32 into column j of tiles
    /// 0 2 4 6 | 1 3 5 7 (no lane-crossing permute); [`Tiles::output_transform_avx2`] undoes
    /// that order, and the GEMM does not care.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn input_transform_avx2(
        rows: [&[f32]; 6],
        ntp: usize,
        ci: usize,
        v_stride: usize,
        v: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        assert!(
            rows.iter().all(|r| r.len() >= 4 * ntp + 4)
                && v.len() >= (POS - 1) * v_stride + (ci + 1) * ntp
        );
        let vp = v.as_mut_ptr();
        for k in (0..ntp).step_by(8) {
            // d B for each row r of the group's 8 tiles
            let e: [[Ymm; 6]; 6] = std::array::from_fn(|r| {
                // SAFETY: reads rows[r][4k..4k + 36] ⊂ [0, 4·ntp + 4) as asserted
                let d = unsafe {
                    let p = rows[r].as_ptr().add(4 * k);
                    let ld = |o: usize| _mm256_loadu_ps(p.add(o));
                    let (t0, t1) = (
                        _mm256_unpacklo_ps(ld(0), ld(8)),
                        _mm256_unpackhi_ps(ld(0), ld(8)),
                    );
                    let (t2, t3) = (
                        _mm256_unpacklo_ps(ld(16), ld(24)),
                        _mm256_unpackhi_ps(ld(16), ld(24)),
                    );
                    // columns 4 and 5: columns 0 and 1 of the rows shifted by 4
                    let (s0, s2) = (
                        _mm256_unpacklo_ps(ld(4), ld(12)),
                        _mm256_unpacklo_ps(ld(20), ld(28)),
                    );
                    [
                        _mm256_shuffle_ps::<0x44>(t0, t2),
                        _mm256_shuffle_ps::<0xEE>(t0, t2),
                        _mm256_shuffle_ps::<0x44>(t1, t3),
                        _mm256_shuffle_ps::<0xEE>(t1, t3),
                        _mm256_shuffle_ps::<0x44>(s0, s2),
                        _mm256_shuffle_ps::<0xEE>(s0, s2),
                    ]
                };
                bt(d.map(Ymm))
            });
            // then Bᵀ down each column j
            let columns: [[Ymm; 6]; 6] = std::array::from_fn(|j| std::array::from_fn(|r| e[r][j]));
            for (j, &column) in columns.iter().enumerate() {
                for (i, x) in bt(column).iter().enumerate() {
                    // SAFETY: position (i, j), channel ci, tiles k..k + 8 < ntp: within v
                    unsafe { _mm256_storeu_ps(vp.add((i * 6 + j) * v_stride + ci * ntp + k), x.0) };
                }
            }
        }
    }

    /// Y = Aᵀ M A for row `r` of the panel (portable): `rows` gets the channel's four output rows
    /// [a][4·ntp], tile k's columns at 4k..4k + 4.
    fn output_transform(m: &[f32], r: usize, ntp: usize, rows: &mut [f32]) {
        let mm = |xi: usize, k: usize| m[(xi * PANEL + r) * ntp + k];
        for k in 0..ntp {
            // Aᵀ M, column by column, then each row times A
            let cols: [[f32; 4]; 6] =
                std::array::from_fn(|j| at(std::array::from_fn(|i| mm(i * 6 + j, k))));
            for a in 0..4 {
                let y = at(std::array::from_fn(|j| cols[j][a]));
                rows[a * 4 * ntp + 4 * k..][..4].copy_from_slice(&y);
            }
        }
    }

    /// [`Tiles::output_transform`] for tiles in the AVX order of
    /// [`Tiles::input_transform_avx2`] (the same transpose within each 128-bit lane puts them
    /// back in column order), with the bias, residual and activation applied on the way to
    /// `dst`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn output_transform_avx2(m: &[f32], r: usize, ntp: usize, dst: &RowDst<4>) {
        use std::arch::x86_64::*;
        assert!(m.len() >= POS * PANEL * ntp && r < PANEL && dst.valid <= 4 * ntp);
        let mp = m.as_ptr();
        for k in (0..ntp).step_by(8) {
            let x0 = 4 * k;
            if x0 >= dst.valid {
                break;
            }
            // SAFETY: position xi, row r, tiles k..k + 8 < ntp: within m
            let mm =
                |xi: usize| Ymm(unsafe { _mm256_loadu_ps(mp.add((xi * PANEL + r) * ntp + k)) });
            let cols: [[Ymm; 4]; 6] =
                std::array::from_fn(|j| at(std::array::from_fn(|i| mm(i * 6 + j))));
            let rows: [[Ymm; 6]; 4] = std::array::from_fn(|a| std::array::from_fn(|j| cols[j][a]));
            for (a, &row) in rows.iter().enumerate().take(dst.rows) {
                let [y0, y1, y2, y3] = at(row).map(|y| y.0);
                let (t0, t1) = (_mm256_unpacklo_ps(y0, y1), _mm256_unpackhi_ps(y0, y1));
                let (t2, t3) = (_mm256_unpacklo_ps(y2, y3), _mm256_unpackhi_ps(y2, y3));
                let vals = [
                    _mm256_shuffle_ps::<0x44>(t0, t2),
                    _mm256_shuffle_ps::<0xEE>(t0, t2),
                    _mm256_shuffle_ps::<0x44>(t1, t3),
                    _mm256_shuffle_ps::<0xEE>(t1, t3),
                ];
                // SAFETY: AVX2 is present; a < dst.rows, x0 < dst.valid
                unsafe { store_row_avx2(dst, a, x0, vals) };
            }
        }
    }
}
