//! What the two Winograd kernels, F(2×2, 3×3) ([`super::winograd`]) and F(4×4, 3×3)
//! ([`super::winograd4`]), share: one conv's job, its blocks of tiles along the tile rows run
//! in parallel, and each block's steps (input transform, GEMMs, output transform), the
//! bordered input rows it reads and the output rows it writes. A kernel is its [`Tiles`]: the
//! tile sides `M` (output) and `R` = `M` + 2 (input) are const parameters, so each kernel's
//! code is compiled for its tiles.

use std::cell::RefCell;

use rayon::prelude::*;

use super::simd::{LANES, PANEL, RowDst, V_SKEW, panel_gemm};
use super::types::{Act, ConvParams, Geom, Prefill, Segments, WinogradWeights};

/// What every block of one conv shares.
pub(super) struct Job<'a> {
    pub(super) g: Geom,
    pub(super) src: &'a [f32],
    pub(super) p: &'a ConvParams,
    pub(super) wt: &'a WinogradWeights,
    pub(super) segs: &'a Segments,
    pub(super) prefill: Prefill<'a>,
    pub(super) act: Act,
    /// The AVX2 kernels (else the portable ones).
    pub(super) simd: bool,
}

/// One Winograd kernel: `M`×`M` output tiles computed from `R`×`R` input tiles, R² transform
/// positions.
pub(super) trait Tiles<const M: usize, const R: usize> {
    /// Tiles per GEMM + output transform pass: one panel's results, R²·PANEL·CHUNK floats, stay
    /// in L1.
    const CHUNK: usize;

    /// Tiles per block: the block's transformed input, R²·cin·tiles floats, stays in L2.
    fn block_tiles(cin: usize) -> usize;

    /// V = Bᵀ d B for the ntp tiles of input channel `ci`, tile k's R×R input at
    /// rows[r][M·k..]: `v` gets [R²][cin][ntp], positions `v_stride` apart.
    fn input_transform(rows: [&[f32]; R], ntp: usize, ci: usize, v_stride: usize, v: &mut [f32]);

    /// Y = Aᵀ M A for row `r` of the panel's GEMM results `m` ([R²][PANEL][ntp]): `rows`
    /// gets the channel's M output rows [a][M·ntp].
    fn output_transform(m: &[f32], r: usize, ntp: usize, rows: &mut [f32]);

    /// [`Tiles::input_transform`] with 8 tiles per AVX register, in an order of the kernel's
    /// choosing that its [`Tiles::output_transform_avx2`] undoes.
    ///
    /// # Safety
    /// AVX2 and FMA must be present.
    #[cfg(target_arch = "x86_64")]
    unsafe fn input_transform_avx2(
        rows: [&[f32]; R],
        ntp: usize,
        ci: usize,
        v_stride: usize,
        v: &mut [f32],
    );

    /// [`Tiles::output_transform`] on the AVX order, with bias, residual and activation
    /// applied on the way to `dst`.
    ///
    /// # Safety
    /// AVX2 and FMA must be present; `dst`'s rows are the caller's alone.
    #[cfg(target_arch = "x86_64")]
    unsafe fn output_transform_avx2(m: &[f32], r: usize, ntp: usize, dst: &RowDst<M>);
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Per-thread scratch of one block, resized for the running kernel's tiles.
#[derive(Default)]
struct Scratch {
    /// Zero-padded copies of input rows that end past the plane or its row.
    rows: Vec<f32>,
    /// Transformed input [positions][cin][ntp], positions cin·ntp + V_SKEW apart.
    v: Vec<f32>,
    /// GEMM results of one panel for a chunk of tiles [positions][PANEL][chunk].
    m: Vec<f32>,
    /// One channel's output rows of a chunk (portable path).
    y: Vec<f32>,
}

/// One block: tile row, first tile, tile count.
type Block = (usize, usize, usize);

impl Job<'_> {
    /// The 3×3 stride-1 "same" conv of `src` into `segs` by the Winograd kernel `T`, its blocks
    /// in parallel. Writes interior pixels only (the zero borders of the outputs stay as they
    /// are).
    pub(super) fn run<const M: usize, const R: usize, T: Tiles<M, R>>(&self) {
        assert_eq!(self.wt.cin, self.p.cin);
        assert!(self.src.len() >= self.p.cin * self.g.plane());
        let block_len = T::block_tiles(self.p.cin);
        let (tiles_y, tiles_x) = (self.g.h.div_ceil(M), self.g.w.div_ceil(M));
        let per_row = tiles_x.div_ceil(block_len);
        (0..tiles_y * per_row).into_par_iter().for_each(|b| {
            let (ty, tx0) = (b / per_row, (b % per_row) * block_len);
            let tiles = (ty, tx0, block_len.min(tiles_x - tx0));
            SCRATCH.with(|s| self.block::<M, R, T>(tiles, &mut s.borrow_mut()));
        });
    }

    /// Tiles tx0..tx0+nt of tile row ty: the input transform, then per panel of output
    /// channels the R² GEMMs and the output transform.
    fn block<const M: usize, const R: usize, T: Tiles<M, R>>(
        &self,
        (ty, tx0, nt): Block,
        s: &mut Scratch,
    ) {
        let (ntp, cin, positions) = (nt.next_multiple_of(LANES), self.p.cin, R * R);
        let v_stride = cin * ntp + V_SKEW;
        s.rows.resize(R * (M * ntp + M), 0.0);
        s.v.resize(positions * v_stride, 0.0);
        s.m.resize(positions * PANEL * T::CHUNK, 0.0);
        s.y.resize(M * M * T::CHUNK, 0.0);
        for ci in 0..cin {
            let rows = self.input_rows::<M, R>(ci, ty, tx0, ntp, &mut s.rows);
            #[cfg(target_arch = "x86_64")]
            if self.simd {
                // SAFETY: AVX2 and FMA are present; rows hold M·ntp + M floats, v R²·v_stride
                unsafe { T::input_transform_avx2(rows, ntp, ci, v_stride, &mut s.v) };
                continue;
            }
            T::input_transform(rows, ntp, ci, v_stride, &mut s.v);
        }
        for pnl in 0..self.wt.panels {
            // the GEMM results of CHUNK tiles at a time, so that they stay in L1 until the
            // output transform reads them
            for k0 in (0..nt).step_by(T::CHUNK) {
                let n = T::CHUNK.min(ntp - k0);
                for xi in 0..positions {
                    let v = &s.v[xi * v_stride + k0..][..(cin - 1) * ntp + n];
                    let m = &mut s.m[xi * PANEL * n..][..PANEL * n];
                    panel_gemm(self.wt.panel(xi, pnl), (v, ntp), m, cin, n, self.simd);
                }
                let tiles = (ty, tx0 + k0, T::CHUNK.min(nt - k0));
                for r in 0..PANEL.min(self.p.cout - pnl * PANEL) {
                    let dst = self.destination::<M>(pnl * PANEL + r, tiles);
                    self.output::<M, R, T>(&s.m, r, n, &dst, &mut s.y);
                }
            }
        }
    }

    /// The output transform of row `r` of the panel's GEMM results `m` into `dst`; `y` is
    /// scratch of the portable path.
    fn output<const M: usize, const R: usize, T: Tiles<M, R>>(
        &self,
        m: &[f32],
        r: usize,
        n: usize,
        dst: &RowDst<M>,
        y: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: AVX2 and FMA are present; dst's rows are this block's alone
            unsafe { T::output_transform_avx2(m, r, n, dst) };
            return;
        }
        T::output_transform(m, r, n, y);
        write_rows(y, n, dst);
    }

    /// The `R` = `M` + 2 bordered input rows M·ty … M·ty + M + 1 of channel `ci` from column
    /// M·tx0, M·ntp + M floats each (the AVX loads read past the last tile): borrowed from the
    /// plane where they lie within its row, else zero-padded copies in `pad`.
    fn input_rows<'s, const M: usize, const R: usize>(
        &'s self,
        ci: usize,
        ty: usize,
        tx0: usize,
        ntp: usize,
        pad: &'s mut [f32],
    ) -> [&'s [f32]; R] {
        debug_assert_eq!(R, M + 2);
        let (g, len) = (self.g, M * ntp + M);
        let stride = g.stride();
        let mut pads = pad.chunks_exact_mut(len);
        std::array::from_fn(|r| {
            let by = M * ty + r;
            let start = ci * g.plane() + by * stride + M * tx0;
            if by <= g.h + 1 && M * tx0 + len <= stride {
                return &self.src[start..][..len];
            }
            let pad = pads.next().expect("one pad row per input row");
            pad.fill(0.0);
            if by <= g.h + 1 {
                let avail = (stride - M * tx0).min(len);
                pad[..avail].copy_from_slice(&self.src[start..][..avail]);
            }
            &*pad
        })
    }

    /// Where channel `co`'s output rows of the block go.
    fn destination<const M: usize>(&self, co: usize, (ty, tx0, nt): Block) -> RowDst<M> {
        let (g, plane) = (self.g, self.g.plane());
        let &(dst, first, _) = self
            .segs
            .iter()
            .find(|&&(_, first, rows)| co < first + rows)
            .expect("segments cover every output channel");
        let x0 = M * tx0;
        let at = |a: usize| g.at((M * ty + a).min(g.h - 1), x0);
        RowDst {
            out: std::array::from_fn(|a| dst.at((co - first) * plane + at(a))),
            res: match self.prefill {
                Prefill::BiasPlus(res) => {
                    Some(std::array::from_fn(|a| res[co * plane + at(a)..].as_ptr()))
                }
                _ => None,
            },
            rows: (g.h - M * ty).min(M),
            valid: (M * nt).min(g.w - x0),
            bias: match self.prefill {
                Prefill::Keep => 0.0,
                _ => self.p.bias[co],
            },
            keep: matches!(self.prefill, Prefill::Keep),
            lrelu: self.act == Act::LRelu,
        }
    }
}

/// The portable path's write of one channel's output rows `y` ([M][M·n], n tiles) into `dst`.
fn write_rows<const M: usize>(y: &[f32], n: usize, dst: &RowDst<M>) {
    for a in 0..dst.rows {
        let vals = &y[a * M * n..][..dst.valid];
        // SAFETY: dst's rows are this block's alone and hold `valid` floats
        let out = unsafe { std::slice::from_raw_parts_mut(dst.out[a], dst.valid) };
        for (x, (o, &v)) in out.iter_mut().zip(vals).enumerate() {
            // SAFETY: residual rows hold `valid` floats
            let res = dst.res.map(|r| unsafe { *r[a].add(x) });
            *o = dst.finish(v, *o, res);
        }
    }
}
