//! im2col convolution on zero-bordered planes (see [`types`](super::types)).
//!
//! For the "wide" run of positions from the first interior pixel to the last (interior rows
//! plus the border columns between them), each of the Cin·9 im2col rows of a tile is one
//! contiguous slice of an input plane, so the im2col tile is built with `memcpy`s, and the
//! weights [Cout, Cin·9] are already the GEMM's left operand. The GEMM writes straight into the
//! output planes, on top of a prefill of bias (plus the residual, when there is one); the
//! activation runs on the tile while it is in cache. The wide run writes the border columns
//! between rows too: the caller zeroes them afterwards.

use gemm::Parallelism;
use rayon::prelude::*;

use super::types::{
    Act, ConvParams, Geom, Prefill, Segments, SharedMut, bordered_from_nchw, half, lrelu_in_place,
};

/// Positions per tile: the im2col tile (K × TILE floats) stays within L2.
fn tile_len(k: usize) -> usize {
    (((192 * 1024) / 4 / k.max(1)).clamp(64, 1024)) & !15
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stride-1 "same" convolution (k = 1 or 3) of `src` (`cin` planes) by im2col and GEMM with
/// `weight` (the parameters' or CCA-scaled 1×1 weights) into `segs`, which together hold `cout`
/// channels. Leaves the border columns of the interior rows written (see the module doc).
pub fn im2col(
    g: Geom,
    src: &[f32],
    p: &ConvParams,
    weight: &[f32],
    segs: &Segments,
    prefill: Prefill<'_>,
    act: Act,
) {
    let plane = g.plane();
    let k_dim = p.cin * p.k * p.k;
    debug_assert!(src.len() >= p.cin * plane);
    debug_assert_eq!(segs.iter().map(|s| s.2).sum::<usize>(), p.cout);
    let (start, len) = g.wide();
    let tile = tile_len(k_dim);
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
