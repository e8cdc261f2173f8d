//! Which kernel runs each conv: the choice ([`Kernels`]) is a value given when a network or an
//! op is built, and is recorded in the conv's parameters ([`ConvParams::winograd`]); running a
//! conv ([`conv_same`], [`conv_nchw`]) then only reads them.

use rayon::prelude::*;

use super::rowconv::Isa;
use super::types::{
    Act, ConvParams, Geom, Out, Prefill, SharedMut, Winograd, bordered_from_nchw, grow,
    nchw_from_bordered, zero_border_columns,
};
use super::winograd::F2;
use super::winograd_job::Job;
use super::winograd4::F4;
use super::{conv, simd, winograd, winograd_dw, winograd4};

/// The smallest input channel count of a 3×3 conv that runs by Winograd, in inference and in
/// training (forward, input and weight gradients): IMDN_RTC's 12- and 9-channel convs gain
/// too (BENCHMARKS.md); the 3-channel head stays on im2col.
pub const MIN_CHANNELS: usize = 8;

/// The smallest input channel count that runs by F(4×4, 3×3) rather than F(2×2, 3×3): below
/// it (IMDN_RTC) the smaller transforms weigh less beside small GEMMs.
pub const F4_MIN_CHANNELS: usize = 32;

/// Which kernels the 3×3 stride-1 convs may use; the default is the fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    /// Winograd from [`MIN_CHANNELS`] input channels (else im2col everywhere).
    pub winograd: bool,
    /// With `winograd`: F(4×4, 3×3) from [`F4_MIN_CHANNELS`] (else F(2×2, 3×3) everywhere).
    pub winograd4: bool,
    /// Networks without channel attention (IMDN_RTC) run streamed, four rows at a time
    /// ([`rowconv`](super::rowconv)), instead of layer by layer.
    pub stream: bool,
    /// The widest instruction set the streamed kernels may use (the CPU's, at most).
    pub isa: Isa,
    /// Streamed IMDN_RTC's block 3×3 convs on 8-bit integers ([`int8`](super::int8)), from
    /// the input ranges calibrated into the weights file.
    pub int8: bool,
}

impl Default for Kernels {
    fn default() -> Self {
        Self {
            winograd: true,
            winograd4: true,
            stream: true,
            isa: Isa::Avx512,
            int8: false,
        }
    }
}

impl Kernels {
    /// im2col for every conv (for comparisons).
    pub const IM2COL: Self = Self {
        winograd: false,
        winograd4: false,
        stream: false,
        isa: Isa::Avx512,
        int8: false,
    };

    /// The fastest kernels, layer by layer (for comparisons).
    pub const LAYERWISE: Self = Self {
        winograd: true,
        winograd4: true,
        stream: false,
        isa: Isa::Avx512,
        int8: false,
    };

    /// The Winograd kernel for a 3×3 conv with `cin` input channels, if any.
    fn winograd_kind(self, k: usize, cin: usize) -> Option<winograd_dw::Kind> {
        if k != 3 || cin < MIN_CHANNELS || !self.winograd {
            None
        } else if cin >= F4_MIN_CHANNELS && self.winograd4 {
            Some(winograd_dw::Kind::F4)
        } else {
            Some(winograd_dw::Kind::F2)
        }
    }

    /// `p` with the weights of the kernel chosen for it transformed (none for im2col).
    pub fn plan(self, mut p: ConvParams) -> ConvParams {
        let (w, cin, cout) = (&p.weight, p.cin, p.cout);
        p.winograd = self.winograd_kind(p.k, cin).map(|kind| match kind {
            winograd_dw::Kind::F2 => Winograd::F2(winograd::weights(w, cin, cout)),
            winograd_dw::Kind::F4 => Winograd::F4(winograd4::weights(w, cin, cout)),
        });
        p
    }

    /// dW [cout, cin·k·k] of a stride-1 "same" conv from its input [n, cin, h, w] and output
    /// gradient [n, cout, h, w]: by the Winograd kernel the forward runs, else im2col GEMMs.
    pub fn weight_grad(
        self,
        x: &[f32],
        g: &[f32],
        n: usize,
        (h, w): (usize, usize),
        (cin, cout, k): (usize, usize, usize),
    ) -> Vec<f32> {
        match self.winograd_kind(k, cin) {
            Some(kind) => winograd_dw::weight_grad(x, g, n, (h, w), (cin, cout), kind),
            None => conv::conv_weight_grad(x, g, n, (h, w), (cin, cout, k)),
        }
    }
}

/// The most output plane sets one conv writes (a split of distilled and remaining channels).
const MAX_OUTS: usize = 4;

/// Stride-1 "same" convolution (k = 1 or 3) of `src` (`cin` planes) into `outs`, which together
/// hold `cout` channels, by the kernel `p` was planned for. `weight` overrides the parameters'
/// weights (CCA-scaled 1×1 weights) and runs by im2col. The outputs' borders stay zero.
pub fn conv_same(
    g: Geom,
    src: &[f32],
    p: &ConvParams,
    weight: Option<&[f32]>,
    outs: &mut [Out<'_>],
    prefill: Prefill<'_>,
    act: Act,
) {
    let plane = g.plane();
    debug_assert_eq!(outs.iter().map(|o| o.rows).sum::<usize>(), p.cout);
    // at most MAX_OUTS destinations, kept on the stack (this runs for every conv of a frame)
    assert!(
        outs.len() <= MAX_OUTS,
        "at most {MAX_OUTS} output plane sets"
    );
    let mut seg_buf = [(SharedMut(std::ptr::null_mut()), 0, 0); MAX_OUTS];
    let mut first = 0;
    for (seg, o) in seg_buf.iter_mut().zip(outs.iter_mut()) {
        assert!(o.dst.len() >= o.rows * plane);
        *seg = (SharedMut(o.dst.as_mut_ptr()), first, o.rows);
        first += o.rows;
    }
    let segs = &seg_buf[..outs.len()];
    let job = |wt| Job {
        g,
        src,
        p,
        wt,
        segs,
        prefill,
        act,
        simd: simd::available(),
    };
    match (&p.winograd, weight) {
        (Some(Winograd::F2(wt)), None) => job(wt).run::<_, _, F2>(),
        (Some(Winograd::F4(wt)), None) => job(wt).run::<_, _, F4>(),
        _ => {
            conv::im2col(g, src, p, weight.unwrap_or(&p.weight), segs, prefill, act);
            for o in outs.iter_mut() {
                zero_border_columns(g, &mut o.dst[..o.rows * plane]);
            }
        }
    }
}

/// Stride-1 "same" convolution on plain NCHW tensors (k = 1 or 3): borders the input, runs
/// [`conv_same`], strips the border. For candle's autograd path (training), not per-frame use.
pub fn conv_nchw(x: &[f32], n: usize, (h, w): (usize, usize), p: &ConvParams) -> Vec<f32> {
    let g = Geom { h, w };
    let plane = g.plane();
    let (isz, osz) = (p.cin * h * w, p.cout * h * w);
    let mut out = vec![0.0; n * osz];
    // images in parallel: training batches are many small images, too small to split alone
    out.par_chunks_exact_mut(osz)
        .zip(x.par_chunks_exact(isz))
        .for_each(|(out, x)| {
            let mut s = BORDERED.take();
            if s.geom != Some(g) {
                // other plane offsets: the old interiors would lie in the new borders
                s = Bordered {
                    geom: Some(g),
                    ..Bordered::default()
                };
            }
            grow(&mut s.src, p.cin * plane);
            grow(&mut s.dst, p.cout * plane);
            let src = &mut s.src[..p.cin * plane];
            bordered_from_nchw(g, x, src);
            let outs = &mut [Out {
                dst: &mut s.dst[..p.cout * plane],
                rows: p.cout,
            }];
            conv_same(g, src, p, None, outs, Prefill::Bias, Act::None);
            nchw_from_bordered(g, outs[0].dst, out);
            BORDERED.set(s);
        });
    out
}

/// [`conv_nchw`]'s bordered planes of one image, kept per thread between calls of the same
/// geometry instead of zero-filled anew: only interiors are ever written into `src`, so its
/// borders stay zero; `dst` is only read back in its interior.
#[derive(Default)]
struct Bordered {
    geom: Option<Geom>,
    src: Vec<f32>,
    dst: Vec<f32>,
}

thread_local! {
    /// Taken out while in use, so a nested call on the same thread (rayon runs other images'
    /// jobs while this one waits) just starts its own.
    static BORDERED: std::cell::Cell<Bordered> = std::cell::Cell::new(Bordered::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn noise(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed * 7919) * 2_654_435_761) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Bordered planes with noise inside and zero borders.
    fn planes(g: Geom, ch: usize, seed: usize) -> Vec<f32> {
        let mut v = noise(ch * g.plane(), seed);
        for plane in v.chunks_exact_mut(g.plane()) {
            for y in 0..g.h + 2 {
                for x in 0..g.w + 2 {
                    if y == 0 || x == 0 || y == g.h + 1 || x == g.w + 1 {
                        plane[y * g.stride() + x] = 0.0;
                    }
                }
            }
        }
        v
    }

    /// How a test conv runs: by im2col, or by Winograd F(2×2, 3×3) / F(4×4, 3×3) on the
    /// portable or the AVX2 kernels.
    #[derive(Clone, Copy, Debug)]
    enum How {
        Im2col,
        F2 { simd: bool },
        F4 { simd: bool },
    }

    /// Runs the conv into two output plane sets (split at `cout / 3`).
    fn conv(g: Geom, p: &ConvParams, how: How, mode: usize, act: Act) -> Vec<f32> {
        let src = planes(g, p.cin, 1);
        let res = planes(g, p.cout, 2);
        let split = p.cout / 3;
        let mut out = planes(g, p.cout, 3);
        let prefill = match mode {
            0 => Prefill::Bias,
            1 => Prefill::BiasPlus(&res),
            _ => Prefill::Keep,
        };
        let (a, b) = out.split_at_mut(split * g.plane());
        match how {
            How::Im2col => {
                let outs = &mut [
                    Out {
                        dst: a,
                        rows: split,
                    },
                    Out {
                        dst: b,
                        rows: p.cout - split,
                    },
                ];
                conv_same(g, &src, p, None, outs, prefill, act);
            }
            How::F2 { simd } | How::F4 { simd } => {
                let segs = [
                    (SharedMut(a.as_mut_ptr()), 0, split),
                    (SharedMut(b.as_mut_ptr()), split, p.cout - split),
                ];
                let job = |wt| Job {
                    g,
                    src: &src,
                    p,
                    wt,
                    segs: &segs,
                    prefill,
                    act,
                    simd,
                };
                if let How::F4 { .. } = how {
                    job(&winograd4::weights(&p.weight, p.cin, p.cout)).run::<_, _, F4>();
                } else {
                    job(&winograd::weights(&p.weight, p.cin, p.cout)).run::<_, _, F2>();
                }
            }
        }
        out
    }

    #[test]
    fn winograd_equals_im2col() {
        let simds: &[bool] = if simd::available() {
            &[false, true]
        } else {
            &[false]
        };
        let kernels: Vec<How> = simds
            .iter()
            .flat_map(|&simd| [How::F2 { simd }, How::F4 { simd }])
            .collect();
        let cases = [(8, 6), (9, 16), (12, 12), (17, 1), (48, 64), (64, 13)];
        let sizes = [
            (1, 1),
            (2, 3),
            (5, 7),
            (4, 16),
            (9, 40),
            (7, 301),
            (13, 130),
        ];
        for (i, &(cin, cout)) in cases.iter().enumerate() {
            let p = ConvParams::new(
                noise(cout * cin * 9, 10 + i),
                noise(cout, 20 + i),
                cin,
                cout,
                3,
            );
            for (j, &(h, w)) in sizes.iter().enumerate() {
                let g = Geom { h, w };
                let (mode, act) = ((i + j) % 3, if j % 2 == 0 { Act::LRelu } else { Act::None });
                let want = conv(g, &p, How::Im2col, mode, act);
                let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
                for &how in &kernels {
                    let got = conv(g, &p, how, mode, act);
                    let max = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    // F(4×4, 3×3) multiplies by up to 8 in its transforms: measured up to
                    // 1.9e-5 of the scale here, F(2×2, 3×3) within 1e-5
                    let tolerance = if matches!(how, How::F4 { .. }) {
                        4e-5
                    } else {
                        1e-5
                    };
                    assert!(
                        max <= tolerance * scale,
                        "{cin}→{cout} on {h}×{w}, prefill {mode}, {how:?}: max diff {max} (scale {scale})"
                    );
                }
            }
        }
    }
}
