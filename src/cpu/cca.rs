//! Contrast-aware channel attention (CCA) on the CPU: per-channel statistics of a block's
//! distilled channels, gathered over a whole frame or over a tile's share of one, and the
//! attention they give folded into the following 1×1 conv's weights.

use rayon::prelude::*;

use crate::acs::{ChannelSums, Rect};
use crate::kernels::types::{ConvParams, Geom};

/// The channel attention's sums, small vectors and c5's scaled weights, kept between frames.
#[derive(Default)]
pub(super) struct CcaScratch {
    /// A whole frame's sums, when the frame is its own statistics.
    pub sums: ChannelSums,
    pub attention: Attention,
}

/// The attention's vectors and the c5 weights it scales.
#[derive(Default)]
pub(super) struct Attention {
    stats: Vec<f32>,
    hidden: Vec<f32>,
    attn: Vec<f32>,
    pub weights: Vec<f32>,
}

/// Adds the sums of `ch` bordered planes of `src` over `region` (interior pixels) to `sums`,
/// sized to `ch` channels if it is empty; one pass per channel.
pub(super) fn add_region_sums(
    g: Geom,
    src: &[f32],
    ch: usize,
    region: Rect,
    sums: &mut ChannelSums,
) {
    if sums.sums.is_empty() {
        sums.reset(ch);
    }
    let p = g.plane();
    let width = region.x1 - region.x0;
    sums.sums[..ch]
        .par_iter_mut()
        .enumerate()
        .for_each(|(c, [sum, sum2])| {
            let plane = &src[c * p..][..p];
            for y in region.y0..region.y1 {
                for &v in &plane[g.at(y, region.x0)..][..width] {
                    *sum += v as f64;
                    *sum2 += (v as f64) * (v as f64);
                }
            }
        });
    sums.pixels += region.area();
}

/// Contrast-aware channel attention folded into the next 1×1 conv: c5(cat · a) =
/// (W5 · diag a) cat, `a` from the channels' mean + standard deviation in `sums`; the scaled
/// weights go into `s.weights`.
pub(super) fn attention_weights(
    (down, up): (&ConvParams, &ConvParams),
    c5: &ConvParams,
    sums: &ChannelSums,
    s: &mut Attention,
) {
    s.stats.clear();
    s.stats.extend((0..c5.cin).map(|c| {
        let (mean, std) = sums.mean_std(c);
        (std + mean) as f32
    }));
    dense_into(down, &s.stats, &mut s.hidden);
    s.hidden.iter_mut().for_each(|v| *v = v.max(0.0));
    dense_into(up, &s.hidden, &mut s.attn);
    s.attn
        .iter_mut()
        .for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
    s.weights.clear();
    s.weights.extend_from_slice(&c5.weight);
    for row in s.weights.chunks_exact_mut(c5.cin) {
        row.iter_mut().zip(&s.attn).for_each(|(wv, a)| *wv *= a);
    }
}

/// A 1×1 conv on one pixel's channel vector `x` into `out`.
fn dense_into(p: &ConvParams, x: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend((0..p.cout).map(|o| {
        p.bias[o]
            + p.weight[o * p.cin..][..p.cin]
                .iter()
                .zip(x)
                .map(|(w, v)| w * v)
                .sum::<f32>()
    }));
}
