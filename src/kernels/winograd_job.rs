//! What the two Winograd kernels, F(2×2, 3×3) ([`super::winograd`]) and F(4×4, 3×3)
//! ([`super::winograd4`]), share: one conv's job, its blocks of tiles along the tile rows run
//! in parallel, the bordered input rows a block reads and the output rows it writes. The tile
//! side `M` (2 or 4) is a const parameter, so each kernel's code is compiled for its tiles.

use rayon::prelude::*;

use super::simd::RowDst;
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

/// Per-thread scratch of one block (each kernel keeps its own, sized for its tiles).
#[derive(Default)]
pub(super) struct Scratch {
    /// Zero-padded copies of input rows that end past the plane or its row.
    pub(super) rows: Vec<f32>,
    /// Transformed input [positions][cin][ntp], positions cin·ntp + V_SKEW apart.
    pub(super) v: Vec<f32>,
    /// GEMM results of one panel for a chunk of tiles [positions][PANEL][chunk].
    pub(super) m: Vec<f32>,
    /// One channel's output rows of a chunk (portable path).
    pub(super) y: Vec<f32>,
}

/// One block: tile row, first tile, tile count.
pub(super) type Block = (usize, usize, usize);

impl Job<'_> {
    /// All blocks of `M`×`M` output tiles, `block_len` tiles long, in parallel.
    pub(super) fn run<const M: usize>(&self, block_len: usize, block: impl Fn(Block) + Sync) {
        assert_eq!(self.wt.cin, self.p.cin);
        assert!(self.src.len() >= self.p.cin * self.g.plane());
        let (tiles_y, tiles_x) = (self.g.h.div_ceil(M), self.g.w.div_ceil(M));
        let per_row = tiles_x.div_ceil(block_len);
        (0..tiles_y * per_row).into_par_iter().for_each(|b| {
            let (ty, tx0) = (b / per_row, (b % per_row) * block_len);
            block((ty, tx0, block_len.min(tiles_x - tx0)));
        });
    }

    /// The `R` = `M` + 2 bordered input rows M·ty … M·ty + M + 1 of channel `ci` from column
    /// M·tx0, M·ntp + M floats each (the AVX loads read past the last tile): borrowed from the
    /// plane where they lie within its row, else zero-padded copies in `pad`.
    pub(super) fn input_rows<'s, const M: usize, const R: usize>(
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
    pub(super) fn destination<const M: usize>(&self, co: usize, (ty, tx0, nt): Block) -> RowDst<M> {
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

    /// The portable path's write of one channel's output rows `y` ([M][M·n], n tiles) into
    /// `dst`.
    pub(super) fn write_rows<const M: usize>(&self, y: &[f32], n: usize, dst: &RowDst<M>) {
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
}
