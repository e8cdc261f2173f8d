//! Convolution kernels on zero-bordered planar activations.
//!
//! Every activation is a set of channel planes of (h+2)×(w+2) floats with a one-pixel zero
//! border. A 3×3 stride-1 conv then needs no padding step: for the "wide" run of positions
//! from the first interior pixel to the last (interior rows plus the border columns between
//! them), each of the Cin·9 im2col rows of a tile is one contiguous slice of an input plane, so
//! the im2col tile is built with `memcpy`s, and the weights [Cout, Cin·9] are already the GEMM's
//! left operand. The GEMM writes straight into the output planes, on top of a prefill of bias
//! (plus the residual, when there is one); the activation runs on the tile while it is in cache.
//! Border columns hit by the wide run are zeroed afterwards, so the output is the next conv's
//! ready input. Channel slices of a plane set are contiguous: split is free, and concatenation
//! is writing into the right planes.

use gemm::Parallelism;
use rayon::prelude::*;

use super::winograd::{self, WinogradWeights};
use super::winograd4::{self, Winograd4Weights};

/// Geometry of one plane set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub h: usize,
    pub w: usize,
}

impl Geom {
    /// Row stride of a bordered plane.
    pub fn stride(&self) -> usize {
        self.w + 2
    }
    /// Floats per bordered plane.
    pub fn plane(&self) -> usize {
        (self.h + 2) * (self.w + 2)
    }
    /// The wide run: first interior position and its length.
    fn wide(&self) -> (usize, usize) {
        (self.stride() + 1, self.h * self.stride() - 2)
    }
    /// Index of interior pixel (y, x) in a plane.
    pub fn at(&self, y: usize, x: usize) -> usize {
        (y + 1) * self.stride() + x + 1
    }
}

/// A convolution's parameters: weights `[cout, cin·k·k]` row-major, bias `[cout]`.
#[derive(Clone, Debug)]
pub struct ConvParams {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    /// The weights transformed for Winograd, when this conv runs that way.
    pub winograd: Option<Winograd>,
}

/// A 3×3 conv's weights transformed for one of the Winograd kernels.
#[derive(Clone, Debug)]
pub enum Winograd {
    F2(WinogradWeights),
    F4(Winograd4Weights),
}

impl ConvParams {
    /// Plain parameters (im2col for 3×3).
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, cin: usize, cout: usize, k: usize) -> Self {
        Self {
            weight,
            bias,
            cin,
            cout,
            k,
            winograd: None,
        }
    }

    /// Runs this conv by Winograd if it is a 3×3 conv with at least `min_channels` input
    /// channels ([`winograd::MIN_CHANNELS`] for inference): F(4×4, 3×3) from
    /// [`winograd4::MIN_CHANNELS`] on (unless [`winograd4::set_enabled`] turned it off),
    /// F(2×2, 3×3) below.
    pub fn with_winograd(mut self, min_channels: usize) -> Self {
        if self.k == 3 && self.cin >= min_channels {
            let (w, cin, cout) = (&self.weight, self.cin, self.cout);
            self.winograd = Some(if cin >= winograd4::MIN_CHANNELS && winograd4::enabled() {
                Winograd::F4(Winograd4Weights::new(w, cin, cout))
            } else {
                Winograd::F2(WinogradWeights::new(w, cin, cout))
            });
        }
        self
    }
}

/// What the output starts from before the GEMM adds to it.
#[derive(Clone, Copy)]
pub enum Prefill<'a> {
    Bias,
    /// Bias plus a residual plane set of `cout` channels.
    BiasPlus(&'a [f32]),
    /// Accumulate onto what the output already holds.
    Keep,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    LRelu,
}

/// The most output plane sets one conv writes (a split of distilled and remaining channels).
const MAX_OUTS: usize = 4;

/// Where consecutive output channels go: `rows` channels into the plane set at `dst`.
pub struct Out<'a> {
    pub dst: &'a mut [f32],
    pub rows: usize,
}

/// Raw pointer that tiles share; each tile writes a disjoint column range.
#[derive(Clone, Copy)]
pub struct SharedMut(pub(super) *mut f32);
// SAFETY: tiles write disjoint positions of the planes (see `run_tiles`).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// Through a method, so closures capture the whole (Send) wrapper, not its raw field.
    pub fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay within the buffer the pointer came from
        unsafe { self.0.add(offset) }
    }
}

/// Positions per tile: the im2col tile (K × TILE floats) stays within L2.
fn tile_len(k: usize) -> usize {
    (((192 * 1024) / 4 / k.max(1)).clamp(64, 1024)) & !15
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stride-1 "same" convolution (k = 1 or 3) of `src` (`cin` planes) into `outs`, which together
/// hold `cout` channels. `weight` overrides the parameters' weights (CCA-scaled 1×1 weights).
/// A 3×3 conv with Winograd weights runs by [`winograd::conv3x3`] or [`winograd4::conv3x3`].
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
    let k_dim = p.cin * p.k * p.k;
    debug_assert!(src.len() >= p.cin * plane);
    debug_assert_eq!(outs.iter().map(|o| o.rows).sum::<usize>(), p.cout);
    let winograd = p
        .winograd
        .as_ref()
        .filter(|_| weight.is_none() && winograd::enabled());
    let weight = weight.unwrap_or(&p.weight);
    let (start, len) = g.wide();
    let tile = tile_len(k_dim);
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
    match winograd {
        Some(Winograd::F2(wt)) => return winograd::conv3x3(g, src, p, wt, segs, prefill, act),
        Some(Winograd::F4(wt)) => return winograd4::conv3x3(g, src, p, wt, segs, prefill, act),
        None => {}
    }
    let n_tiles = len.div_ceil(tile);
    (0..n_tiles).into_par_iter().for_each(|t| {
        let q0 = start + t * tile;
        let n = tile.min(start + len - q0);
        // prefill the output tile
        for &(dst, first, rows) in segs {
            for r in 0..rows {
                let co = first + r;
                // SAFETY: positions q0..q0+n of plane r belong to this tile alone
                let out = unsafe { std::slice::from_raw_parts_mut(dst.at(r * plane + q0), n) };
                match prefill {
                    Prefill::Bias => out.fill(p.bias[co]),
                    Prefill::BiasPlus(res) => {
                        let res = &res[co * plane + q0..][..n];
                        let b = p.bias[co];
                        out.iter_mut().zip(res).for_each(|(o, &x)| *o = x + b);
                    }
                    Prefill::Keep => {}
                }
            }
        }
        let gemm_into = |rhs: *const f32, rhs_rs: isize| {
            for &(dst, first, rows) in segs {
                // SAFETY: dst rows are planes `plane` apart, columns this tile's; lhs is the
                // weight rows first..first+rows; rhs is K×n with row stride rhs_rs.
                unsafe {
                    gemm::gemm(
                        rows,
                        n,
                        k_dim,
                        dst.at(q0),
                        1,
                        plane as isize,
                        true,
                        weight.as_ptr().add(first * k_dim),
                        1,
                        k_dim as isize,
                        rhs,
                        1,
                        rhs_rs,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            }
        };
        if p.k == 1 {
            // the input planes themselves are the right operand
            gemm_into(src[q0..].as_ptr(), plane as isize);
        } else {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                s.resize(k_dim * tile, 0.0);
                im2col3x3(g, src, p.cin, q0, n, &mut s);
                gemm_into(s.as_ptr(), n as isize);
            });
        }
        if act == Act::LRelu {
            for &(dst, _, rows) in segs {
                for r in 0..rows {
                    // SAFETY: as for the prefill
                    let out = unsafe { std::slice::from_raw_parts_mut(dst.at(r * plane + q0), n) };
                    lrelu_in_place(out);
                }
            }
        }
    });
    for o in outs.iter_mut() {
        zero_border_columns(g, &mut o.dst[..o.rows * plane]);
    }
}

/// The im2col tile of a 3×3 conv for wide positions `q0..q0 + n`: row (ci, ky, kx) is one
/// contiguous slice of plane ci, so each row is a `memcpy`. `dst` holds at least cin·9·n.
fn im2col3x3(g: Geom, src: &[f32], cin: usize, q0: usize, n: usize, dst: &mut [f32]) {
    let (plane, stride) = (g.plane(), g.stride());
    for ci in 0..cin {
        for ky in 0..3 {
            for kx in 0..3 {
                let row = (ci * 9 + ky * 3 + kx) * n;
                // tap (ky, kx) of position q is q + (ky − 1)·stride + (kx − 1)
                let from = ci * plane + q0 + ky * stride + kx - stride - 1;
                dst[row..row + n].copy_from_slice(&src[from..][..n]);
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

/// Makes `buf` at least `len` long (new floats zero; existing ones kept).
pub(super) fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// The weight gradient of a stride-1 "same" convolution: dW[co, (ci, ky, kx)] = Σ over images
/// and positions of grad[co, q] · im2col(x)[(ci, ky, kx), q], as GEMMs over position tiles,
/// reduced across threads. Returns [cout, cin·k·k].
pub fn conv_weight_grad(
    x: &[f32],
    grad: &[f32],
    n: usize,
    (h, w): (usize, usize),
    (cin, cout, k): (usize, usize, usize),
) -> Vec<f32> {
    let g = Geom { h, w };
    let plane = g.plane();
    let k_dim = cin * k * k;
    let (start, len) = g.wide();
    let tile = tile_len(k_dim);
    let zeros = || vec![0.0f32; cout * k_dim];
    let add = |mut a: Vec<f32>, b: Vec<f32>| {
        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
        a
    };
    // per image: bordered input and gradient (whose zero borders cancel the wide run's border
    // positions), then every position tile adds grad_tile × im2col_tileᵀ into the sum
    let image_grad = |i: usize| {
        let mut xb = vec![0.0; cin * plane];
        let mut gb = vec![0.0; cout * plane];
        bordered_from_nchw(g, &x[i * cin * h * w..][..cin * h * w], &mut xb);
        bordered_from_nchw(g, &grad[i * cout * h * w..][..cout * h * w], &mut gb);
        let tile_grad = |mut acc: Vec<f32>, t: usize| {
            let q0 = start + t * tile;
            let m = tile.min(start + len - q0);
            let mut col = Vec::new();
            let (rhs, rhs_cs) = if k == 1 {
                (xb[q0..].as_ptr(), plane as isize)
            } else {
                col.resize(k_dim * m, 0.0);
                im2col3x3(g, &xb, cin, q0, m, &mut col);
                (col.as_ptr(), m as isize)
            };
            // SAFETY: acc is [cout, K] row-major; lhs: gradient rows (planes apart) over this
            // tile's m positions; rhs: im2colᵀ, m × K, element (p, r) at p + r·rhs_cs.
            unsafe {
                gemm::gemm(
                    cout,
                    k_dim,
                    m,
                    acc.as_mut_ptr(),
                    1,
                    k_dim as isize,
                    true,
                    gb[q0..].as_ptr(),
                    1,
                    plane as isize,
                    rhs,
                    rhs_cs,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            acc
        };
        // a fixed split into chunks, each summed in order, then the chunks in order: the same
        // sums whatever the thread count or scheduling, so training runs are reproducible
        let tiles = len.div_ceil(tile);
        let per_chunk = tiles.div_ceil(GRAD_CHUNKS);
        let chunks: Vec<Vec<f32>> = (0..tiles.div_ceil(per_chunk))
            .into_par_iter()
            .map(|c| (c * per_chunk..((c + 1) * per_chunk).min(tiles)).fold(zeros(), tile_grad))
            .collect();
        chunks.into_iter().fold(zeros(), add)
    };
    let images: Vec<Vec<f32>> = (0..n).into_par_iter().map(image_grad).collect();
    images.into_iter().fold(zeros(), add)
}

/// Position chunks per image in [`conv_weight_grad`]: enough to keep every core busy.
const GRAD_CHUNKS: usize = 8;

/// Copies NCHW planes of `g` into bordered planes (borders left zero).
fn bordered_from_nchw(g: Geom, src: &[f32], dst: &mut [f32]) {
    for (plane, from) in dst
        .chunks_exact_mut(g.plane())
        .zip(src.chunks_exact(g.h * g.w))
    {
        for y in 0..g.h {
            plane[g.at(y, 0)..][..g.w].copy_from_slice(&from[y * g.w..][..g.w]);
        }
    }
}

/// Strips the border of bordered planes into NCHW.
fn nchw_from_bordered(g: Geom, src: &[f32], dst: &mut [f32]) {
    for (plane, to) in src
        .chunks_exact(g.plane())
        .zip(dst.chunks_exact_mut(g.h * g.w))
    {
        for y in 0..g.h {
            to[y * g.w..][..g.w].copy_from_slice(&plane[g.at(y, 0)..][..g.w]);
        }
    }
}

/// Stride-2 3×3 convolution, padding 1: `src` (`g`) into `dst` (`half(g)`), LeakyReLU optional.
pub fn conv3x3_s2(g: Geom, src: &[f32], p: &ConvParams, dst: &mut [f32], act: Act) {
    let og = half(g);
    let (plane, oplane) = (g.plane(), og.plane());
    let k_dim = p.cin * 9;
    let out = SharedMut(dst.as_mut_ptr());
    (0..og.h).into_par_iter().for_each(|y| {
        let n = og.w;
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.resize(k_dim * n, 0.0);
            for ci in 0..p.cin {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let row = &mut s[(ci * 9 + ky * 3 + kx) * n..][..n];
                        // output (y, x) reads bordered input (2y + ky, 2x + kx)
                        let base = ci * plane + (2 * y + ky) * g.stride() + kx;
                        for (x, v) in row.iter_mut().enumerate() {
                            *v = src[base + 2 * x];
                        }
                    }
                }
            }
            let q0 = og.at(y, 0);
            for co in 0..p.cout {
                // SAFETY: row y of every output plane belongs to this task alone
                let o = unsafe { std::slice::from_raw_parts_mut(out.at(co * oplane + q0), n) };
                o.fill(p.bias[co]);
            }
            // SAFETY: dst rows are planes apart; lhs [cout, K]; rhs [K, n]
            unsafe {
                gemm::gemm(
                    p.cout,
                    n,
                    k_dim,
                    out.at(q0),
                    1,
                    oplane as isize,
                    true,
                    p.weight.as_ptr(),
                    1,
                    k_dim as isize,
                    s.as_ptr(),
                    1,
                    n as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            if act == Act::LRelu {
                for co in 0..p.cout {
                    // SAFETY: as above
                    let o = unsafe { std::slice::from_raw_parts_mut(out.at(co * oplane + q0), n) };
                    lrelu_in_place(o);
                }
            }
        });
    });
}

/// The geometry after a stride-2, padding-1, 3×3 conv.
pub fn half(g: Geom) -> Geom {
    Geom {
        h: g.h.div_ceil(2),
        w: g.w.div_ceil(2),
    }
}

pub fn lrelu_in_place(x: &mut [f32]) {
    for v in x {
        *v = v.max(*v * 0.05);
    }
}

/// Zeroes the left and right border columns of every interior row of every plane.
pub fn zero_border_columns(g: Geom, planes: &mut [f32]) {
    let stride = g.stride();
    for plane in planes.chunks_exact_mut(g.plane()) {
        for y in 1..=g.h {
            plane[y * stride] = 0.0;
            plane[y * stride + g.w + 1] = 0.0;
        }
    }
}
