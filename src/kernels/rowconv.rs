//! Convolutions on four rows at a time, for the streaming executor (`cpu/stream.rs`),
//! which keeps only the few rows of each activation its next layers still need.
//!
//! A row of one channel is stored in four phases ([`RowLayout`], in [`rows`](super::rows)): columns 4j, then 4j+1, 4j+2
//! and 4j+3, each run padded with zeros. The 6×6 input tile of output tile t (columns 4t …
//! 4t+3) covers columns 4t−1 … 4t+4, which are then six contiguous runs (phase 3 from t−1,
//! phases 0 to 3 from t, phase 0 from t+1). So F(4×4, 3×3) runs on sixteen tiles per vector
//! with plain unaligned loads, and its output lands in phases again, ready for the next layer.
//!
//! The 3×3 conv transforms the input of 16 tiles per channel (V = Bᵀ d B), multiplies each of
//! the 36 transform positions by weights transformed at load (U = G g Gᵀ; one FMA per weight
//! with the weight broadcast, vectorised over tiles: 36 multiply-adds per 4×4 tile and
//! channel pair instead of 144), and transforms back (Y = Aᵀ M A) with bias, residual and
//! LeakyReLU fused into the write; columns past the row end are written as zeros, the next
//! conv's padding. Its rounding is F(4×4, 3×3)'s ([`winograd4`](super::winograd4)).

use std::array::from_fn;
use std::ops::Range;

use super::lanes::{self, Array, Lanes, N, prefetch};
use super::rows::{Io, POS, SPAN, groups};
pub use super::rows::{Isa, MAX_CHANNELS, RowLayout, Rows, RowsMut, TILE};
use super::transform::kernel4;
use super::types::Act;

/// A 3×3 stride-1 "same" conv by F(4×4, 3×3).
pub struct Conv3 {
    cin: usize,
    cout: usize,
    padded: usize,
    /// [POS][cin][padded]
    u: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv3 {
    /// From weights `[cout, cin, 3, 3]` (row-major) and bias `[cout]`.
    pub fn new(weight: &[f32], bias: &[f32], cin: usize, cout: usize) -> Self {
        assert_eq!(weight.len(), cout * cin * 9, "3×3 weights");
        assert!(cin <= MAX_CHANNELS && cout <= MAX_CHANNELS);
        let padded = cout.next_multiple_of(4);
        let mut u = vec![0.0; POS * cin * padded];
        for co in 0..cout {
            for ci in 0..cin {
                for (p, v) in kernel4(&weight[(co * cin + ci) * 9..][..9])
                    .into_iter()
                    .enumerate()
                {
                    u[(p * cin + ci) * padded + co] = v;
                }
            }
        }
        Self {
            cin,
            cout,
            padded,
            u,
            bias: bias.to_vec(),
        }
    }
}

/// A 1×1 conv.
pub struct Conv1 {
    cin: usize,
    cout: usize,
    padded: usize,
    /// [cin][padded]
    w: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv1 {
    /// From weights `[cout, cin]` (row-major) and bias `[cout]`.
    pub fn new(weight: &[f32], bias: &[f32], cin: usize, cout: usize) -> Self {
        assert_eq!(weight.len(), cout * cin, "1×1 weights");
        assert!(cin <= MAX_CHANNELS && cout <= MAX_CHANNELS);
        let padded = cout.next_multiple_of(4);
        let mut w = vec![0.0; cin * padded];
        for co in 0..cout {
            for ci in 0..cin {
                w[ci * padded + co] = weight[co * cin + ci];
            }
        }
        Self {
            cin,
            cout,
            padded,
            w,
            bias: bias.to_vec(),
        }
    }
}

/// Per-thread scratch of the 3×3 conv: the transformed input and the GEMM results of one
/// vector of tiles.
#[derive(Default)]
pub struct Scratch {
    v: Vec<Array>,
    m: Vec<Array>,
}

/// Bᵀ of F(4×4, 3×3) ([`bt4`](super::transform::bt4)) with its multiplies folded into FMAs,
/// which leave the adders (the busier pipes here) to the sums.
#[inline(always)]
fn bt<L: Lanes>(x: [L; SPAN]) -> [L; SPAN] {
    let (s12, d12, s34, d34) = (x[1] + x[2], x[1] - x[2], x[3] + x[4], x[4] - x[3]);
    let (e, d31) = (x[4] - x[2], x[3] - x[1]);
    [
        x[0].times_plus(4.0, x[2].minus_times(5.0, x[4])),
        s12.minus_times(4.0, s34),
        d12.times_plus(4.0, d34),
        d31.times_plus(2.0, e),
        d31.minus_times(2.0, e),
        x[1].times_plus(4.0, x[3].minus_times(5.0, x[5])),
    ]
}

/// Aᵀ of F(4×4, 3×3) ([`at4`](super::transform::at4)) with its multiplies in FMAs.
#[inline(always)]
fn at<L: Lanes>(x: [L; SPAN]) -> [L; TILE] {
    let (s12, d12, s34, d34) = (x[1] + x[2], x[1] - x[2], x[3] + x[4], x[3] - x[4]);
    [
        x[0] + s12 + s34,
        d34.times_plus(2.0, d12),
        s34.times_plus(4.0, s12),
        d34.times_plus(8.0, d12 + x[5]),
    ]
}

/// Output rows 4k … 4k+3 of a 3×3 conv from input rows 4k−1 … 4k+4 (`src`, in order), with
/// bias, then the residual `res`, then `act`, in the vectors of tiles `chunks` (any range of
/// them: the calls for one row may be split).
///
/// # Safety
/// The CPU must run `isa` ([`Isa::up_to`] gives one it does); every row pointer must be
/// valid for [`RowLayout::stride`] floats per channel of its set, and output rows must not
/// alias input or residual rows.
pub unsafe fn conv3(
    isa: Isa,
    k: &Conv3,
    (lay, chunks): (RowLayout, Range<usize>),
    (src, dst, res): (&[Rows<SPAN>], &[RowsMut<TILE>], Option<Rows<TILE>>),
    act: Act,
    s: &mut Scratch,
) {
    let io = Io::new(lay, src, dst, res, (k.cin, k.cout));
    // grown, never shrunk: the convs of a network take turns with one scratch
    for (buf, len) in [(&mut s.v, POS * k.cin), (&mut s.m, POS * k.padded)] {
        if buf.len() < len {
            buf.resize(len, Array([0.0; N]));
        }
    }
    let (v, m) = (s.v.as_mut_ptr().cast(), s.m.as_mut_ptr().cast());
    let lay = (lay, chunks);
    // SAFETY: the CPU runs `isa`; the pointers are valid as the caller promised
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => conv3_avx512(k, lay, &io, act, (v, m)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => conv3_avx2(k, lay, &io, act, (v, m)),
            _ => conv3_lanes::<Array>(k, lay, &io, act, (v, m)),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn conv3_avx512(
    k: &Conv3,
    (lay, chunks): (RowLayout, Range<usize>),
    io: &Io<SPAN>,
    act: Act,
    s: (*mut f32, *mut f32),
) {
    let (whole, half) = split_half(lay, chunks);
    unsafe {
        conv3_lanes::<lanes::Zmm>(k, (lay, whole), io, act, s);
        if let Some(c) = half {
            conv3_lanes::<lanes::Ymm>(k, (lay, c..c + 1), io, act, s);
        }
    }
}

/// `chunks` as the vectors run on whole registers and the row's last vector, when it is in
/// the range and holds eight tiles or fewer, to run on half registers.
#[cfg(target_arch = "x86_64")]
fn split_half(lay: RowLayout, chunks: Range<usize>) -> (Range<usize>, Option<usize>) {
    match lay.half_vector() {
        Some(c) if chunks.contains(&c) => (chunks.start..c, Some(c)),
        _ => (chunks, None),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv3_avx2(
    k: &Conv3,
    lay: (RowLayout, Range<usize>),
    io: &Io<SPAN>,
    act: Act,
    s: (*mut f32, *mut f32),
) {
    unsafe { conv3_lanes::<Array>(k, lay, io, act, s) }
}

#[inline(always)]
unsafe fn conv3_lanes<L: Lanes>(
    k: &Conv3,
    (lay, chunks): (RowLayout, Range<usize>),
    io: &Io<SPAN>,
    act: Act,
    (v, m): (*mut f32, *mut f32),
) {
    let (cin, padded) = (k.cin, k.padded);
    let phase: [usize; TILE] = from_fn(|p| lay.phase(p));
    for chunk in chunks {
        let t0 = chunk * N;
        // the six runs of a tile row: phase 3 from t−1, phases 0..3 from t, phase 0 from t+1
        let runs = [
            phase[3] + t0 - 1,
            phase[0] + t0,
            phase[1] + t0,
            phase[2] + t0,
            phase[3] + t0,
            phase[0] + t0 + 1,
        ];
        // SAFETY (this block): loads stay within each row's stride (the layout's padding),
        // the scratches hold POS·cin and POS·padded vectors
        unsafe {
            for (ci, rows) in io.src().iter().enumerate() {
                // the next vector's input, from L3 mostly (written one step ago)
                for row in rows {
                    for p in phase {
                        prefetch(row.wrapping_add(p + t0 + N));
                    }
                }
                // array literals, not zero-filled arrays: 36 vectors spill, and a fill is a memset
                let d = [
                    row_bt::<L>(rows[0], &runs),
                    row_bt::<L>(rows[1], &runs),
                    row_bt::<L>(rows[2], &runs),
                    row_bt::<L>(rows[3], &runs),
                    row_bt::<L>(rows[4], &runs),
                    row_bt::<L>(rows[5], &runs),
                ];
                // column j of the six row transforms
                #[allow(clippy::needless_range_loop)]
                for j in 0..SPAN {
                    let col = bt([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]);
                    for (i, c) in col.into_iter().enumerate() {
                        c.store(v.add(((i * SPAN + j) * cin + ci) * N));
                    }
                }
            }
            for p in 0..POS {
                let (vp, up, mp) = (
                    v.add(p * cin * N).cast_const(),
                    k.u.as_ptr().add(p * cin * padded),
                    m.add(p * padded * N),
                );
                for (c0, g) in groups(padded, L::ACCUMULATORS) {
                    let at = (vp, up.add(c0), mp.add(c0 * N));
                    match g {
                        4 => gemm::<L, 4>(at, cin, padded),
                        8 => gemm::<L, 8>(at, cin, padded),
                        12 => gemm::<L, 12>(at, cin, padded),
                        _ => gemm::<L, 16>(at, cin, padded),
                    }
                }
            }
            let masks: [u16; TILE] = from_fn(|p| lay.mask(chunk, p));
            for co in 0..k.cout {
                // Aᵀ M: per column j the four output rows
                let col =
                    |j: usize| column_at::<L>(m.add((j * padded + co) * N), SPAN * padded * N);
                let r = [col(0), col(1), col(2), col(3), col(4), col(5)];
                let b = L::splat(k.bias[co]);
                for a in 0..TILE {
                    let y = at([r[0][a], r[1][a], r[2][a], r[3][a], r[4][a], r[5][a]]);
                    for (x, mut y) in y.into_iter().enumerate() {
                        let to = phase[x] + t0;
                        y = y + b;
                        if let Some(res) = io.res() {
                            y = y + L::load(res[co][a].add(to));
                        }
                        if act == Act::LRelu {
                            y = y.lrelu();
                        }
                        y.keep(masks[x]).store(io.dst()[co][a].add(to));
                    }
                }
            }
        }
    }
}

/// Bᵀ of one input row: its six runs loaded.
#[inline(always)]
unsafe fn row_bt<L: Lanes>(row: *const f32, runs: &[usize; SPAN]) -> [L; SPAN] {
    // SAFETY: the runs lie within the row, as conv3's caller promised
    unsafe {
        bt([
            L::load(row.add(runs[0])),
            L::load(row.add(runs[1])),
            L::load(row.add(runs[2])),
            L::load(row.add(runs[3])),
            L::load(row.add(runs[4])),
            L::load(row.add(runs[5])),
        ])
    }
}

/// Aᵀ of one column of GEMM results: six vectors `step` floats apart from `m`.
#[inline(always)]
unsafe fn column_at<L: Lanes>(m: *const f32, step: usize) -> [L; TILE] {
    // SAFETY: the scratch holds the six positions
    unsafe {
        at([
            L::load(m),
            L::load(m.add(step)),
            L::load(m.add(2 * step)),
            L::load(m.add(3 * step)),
            L::load(m.add(4 * step)),
            L::load(m.add(5 * step)),
        ])
    }
}

/// G output channels of one transform position: m[g] = Σ_ci u[ci][g] · v[ci].
#[inline(always)]
unsafe fn gemm<L: Lanes, const G: usize>(
    (v, u, m): (*const f32, *const f32, *mut f32),
    cin: usize,
    padded: usize,
) {
    let mut acc = [L::splat(0.0); G];
    // SAFETY: v holds cin vectors, u cin rows of `padded` weights (G from here), m G vectors
    unsafe {
        for ci in 0..cin {
            let x = L::load(v.add(ci * N));
            let w = u.add(ci * padded);
            for (g, a) in acc.iter_mut().enumerate() {
                *a = a.mul_add(L::splat(*w.add(g)), x);
            }
        }
        for (g, a) in acc.into_iter().enumerate() {
            a.store(m.add(g * N));
        }
    }
}

/// Output rows 4k … 4k+3 of a 1×1 conv from the same input rows, with bias, then the
/// residual, then `act`.
///
/// # Safety
/// As [`conv3`]'s.
pub unsafe fn conv1(
    isa: Isa,
    k: &Conv1,
    lay: (RowLayout, Range<usize>),
    (src, dst, res): (&[Rows<TILE>], &[RowsMut<TILE>], Option<Rows<TILE>>),
    act: Act,
) {
    let io = Io::new(lay.0, src, dst, res, (k.cin, k.cout));
    // SAFETY: the CPU runs `isa`; the pointers are valid as the caller promised
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => conv1_avx512(k, lay, &io, act),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => conv1_avx2(k, lay, &io, act),
            _ => conv1_lanes::<Array>(k, lay, &io, act),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn conv1_avx512(
    k: &Conv1,
    (lay, chunks): (RowLayout, Range<usize>),
    io: &Io<TILE>,
    act: Act,
) {
    let (whole, half) = split_half(lay, chunks);
    unsafe {
        conv1_lanes::<lanes::Zmm>(k, (lay, whole), io, act);
        if let Some(c) = half {
            conv1_lanes::<lanes::Ymm>(k, (lay, c..c + 1), io, act);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv1_avx2(k: &Conv1, lay: (RowLayout, Range<usize>), io: &Io<TILE>, act: Act) {
    unsafe { conv1_lanes::<Array>(k, lay, io, act) }
}

#[inline(always)]
unsafe fn conv1_lanes<L: Lanes>(
    k: &Conv1,
    (lay, chunks): (RowLayout, Range<usize>),
    io: &Io<TILE>,
    act: Act,
) {
    // the vectors of a row, two at a time (each weight broadcast serves both)
    let vectors = (0..TILE).flat_map(|p| {
        chunks
            .clone()
            .map(move |c| (lay.phase(p) + c * N, lay.mask(c, p)))
    });
    let mut pending = None;
    for a in 0..TILE {
        for v in vectors.clone() {
            let Some(first) = pending.take() else {
                pending = Some(v);
                continue;
            };
            // SAFETY: as conv1's caller promised
            unsafe { pointwise::<L, 2>(k, io, a, [first, v], act) };
        }
        if let Some(last) = pending.take() {
            // SAFETY: as above
            unsafe { pointwise::<L, 1>(k, io, a, [last], act) };
        }
    }
}

/// `V` vectors (index, mask) of row `a` of a 1×1 conv, every group of output channels.
#[inline(always)]
unsafe fn pointwise<L: Lanes, const V: usize>(
    k: &Conv1,
    io: &Io<TILE>,
    a: usize,
    at: [(usize, u16); V],
    act: Act,
) {
    for (c0, g) in groups(k.padded, L::ACCUMULATORS) {
        let run = Pointwise { k, io, a, c0, act };
        // SAFETY: as conv1's caller promised
        unsafe {
            match (g, V) {
                (4, _) => run.group::<L, 4, V>(at),
                (8, _) => run.group::<L, 8, V>(at),
                (12, _) => run.group::<L, 12, V>(at),
                _ => run.group::<L, 16, V>(at),
            }
        }
    }
}

/// One group of output channels of one row of a 1×1 conv.
struct Pointwise<'a> {
    k: &'a Conv1,
    io: &'a Io<TILE>,
    /// Row of the tile.
    a: usize,
    c0: usize,
    act: Act,
}

impl Pointwise<'_> {
    /// G output channels at V vectors (index in each channel row, lanes in the row).
    #[inline(always)]
    unsafe fn group<L: Lanes, const G: usize, const V: usize>(&self, at: [(usize, u16); V]) {
        let Self { k, io, a, c0, act } = *self;
        let mut acc = [[L::splat(0.0); V]; G];
        for (g, acc) in acc.iter_mut().enumerate() {
            *acc = [L::splat(k.bias.get(c0 + g).copied().unwrap_or(0.0)); V];
        }
        let last = k.cout.min(c0 + G);
        // SAFETY: as conv1's caller promised; the weights hold cin rows of `padded`
        unsafe {
            if let Some(res) = io.res() {
                for r in &res[c0..last] {
                    for (i, _) in at {
                        prefetch(r[a].wrapping_add(i + N));
                    }
                }
            }
            for ci in 0..k.cin {
                let row = io.src()[ci][a];
                let mut x = [L::splat(0.0); V];
                for (x, &(i, _)) in x.iter_mut().zip(&at) {
                    prefetch(row.wrapping_add(i + N));
                    *x = L::load(row.add(i));
                }
                let w = k.w.as_ptr().add(ci * k.padded + c0);
                for (g, acc) in acc.iter_mut().enumerate() {
                    let wg = L::splat(*w.add(g));
                    for (acc, &x) in acc.iter_mut().zip(&x) {
                        *acc = acc.mul_add(wg, x);
                    }
                }
            }
            for (co, acc) in (c0..last).zip(acc) {
                for ((i, mask), mut y) in at.into_iter().zip(acc) {
                    if let Some(res) = io.res() {
                        y = y + L::load(res[co][a].add(i));
                    }
                    if act == Act::LRelu {
                        y = y.lrelu();
                    }
                    y.keep(mask).store(io.dst()[co][a].add(i));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lanes::{aligned_zeros, floats, floats_mut};

    /// A deterministic value in −1..1.
    fn value(i: usize) -> f32 {
        ((i * 7919 + 13) % 2001) as f32 / 1000.0 - 1.0
    }

    /// `rows` rows of `channels` channels of width `w` in the layout, from `value(seed + …)`,
    /// and the same values plain ([row][channel][x]).
    fn rows(
        lay: RowLayout,
        rows: usize,
        channels: usize,
        seed: usize,
    ) -> (Vec<Vec<Array>>, Vec<f32>) {
        let mut plain = vec![0.0; rows * channels * lay.w];
        let laid = (0..rows)
            .map(|r| {
                let mut buf = aligned_zeros(channels * lay.stride());
                for c in 0..channels {
                    for x in 0..lay.w {
                        let v = value(seed + (r * channels + c) * lay.w + x);
                        plain[(r * channels + c) * lay.w + x] = v;
                        floats_mut(&mut buf)[c * lay.stride() + lay.index(x)] = v;
                    }
                }
                buf
            })
            .collect();
        (laid, plain)
    }

    /// The rows of `bufs` (one buffer a row) as a set of `channels` channels.
    fn rows_of<const R: usize>(bufs: &[Vec<Array>], channels: usize) -> Rows<R> {
        Rows {
            rows: std::array::from_fn(|r| floats(&bufs[r]).as_ptr()),
            channels,
        }
    }

    /// Checks one output row set against `want` ([row][channel][x]) and that every other
    /// float of the rows stayed zero (the next conv's padding).
    fn check(lay: RowLayout, out: &[Vec<Array>], cout: usize, want: &[f32], what: &str) {
        for (a, row) in out.iter().enumerate() {
            let got = floats(row);
            let mut expect = vec![0.0; cout * lay.stride()];
            for c in 0..cout {
                for x in 0..lay.w {
                    expect[c * lay.stride() + lay.index(x)] = want[(a * cout + c) * lay.w + x];
                }
            }
            for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{what}: row {a} float {i}: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn conv3_matches_a_direct_conv_on_every_path() {
        // the last vector of tiles holding 1, 2, 4, 8 (half registers) and 9, 16 tiles
        for (w, cin, cout) in [
            (1, 3, 12),
            (5, 9, 3),
            (13, 12, 12),
            (36, 9, 12),
            (70, 12, 27),
            (96, 12, 12),
            (128, 3, 12),
            (131, 4, 48),
        ] {
            let lay = RowLayout::new(w);
            let (input, plain) = rows(lay, SPAN, cin, w);
            let (residual, res_plain) = rows(lay, TILE, cout, 7 * w);
            let weight: Vec<f32> = (0..cout * cin * 9).map(|i| value(3 * i) / 4.0).collect();
            let bias: Vec<f32> = (0..cout).map(|i| value(11 * i)).collect();
            let k = Conv3::new(&weight, &bias, cin, cout);
            // direct: out[a][co][x] = b + Σ w · in[a + dy][ci][x + dx − 1] (zero outside), + res
            let mut want = vec![0.0; TILE * cout * w];
            for a in 0..TILE {
                for co in 0..cout {
                    for x in 0..w {
                        let mut v = bias[co];
                        for ci in 0..cin {
                            for dy in 0..3 {
                                for dx in 0..3 {
                                    let xx = x as isize + dx as isize - 1;
                                    if (0..w as isize).contains(&xx) {
                                        v += weight[((co * cin + ci) * 3 + dy) * 3 + dx]
                                            * plain[((a + dy) * cin + ci) * w + xx as usize];
                                    }
                                }
                            }
                        }
                        v += res_plain[(a * cout + co) * w + x];
                        want[(a * cout + co) * w + x] = v.max(0.05 * v);
                    }
                }
            }
            for isa in Isa::available() {
                let mut out: Vec<Vec<Array>> = (0..TILE)
                    .map(|_| aligned_zeros(cout * lay.stride()))
                    .collect();
                let (src, res) = (rows_of(&input, cin), rows_of(&residual, cout));
                // the outputs in two sets, the vectors of tiles in two calls (as threads share them)
                let split = cout / 3;
                let dst = [split, cout - split].into_iter().scan(0, |first, n| {
                    let at = *first;
                    *first += n;
                    Some(RowsMut {
                        rows: std::array::from_fn(|a| {
                            floats_mut(&mut out[a])[at * lay.stride()..].as_mut_ptr()
                        }),
                        channels: n,
                    })
                });
                let dst: Vec<RowsMut<TILE>> = dst.collect();
                let mut scratch = Scratch::default();
                let chunks = lay.chunks();
                for part in [0..chunks / 2, chunks / 2..chunks] {
                    // SAFETY: every row holds its channels' strides
                    unsafe {
                        conv3(
                            isa,
                            &k,
                            (lay, part),
                            (&[src], &dst, Some(res)),
                            Act::LRelu,
                            &mut scratch,
                        )
                    };
                }
                check(
                    lay,
                    &out,
                    cout,
                    &want,
                    &format!("{isa:?} w {w} {cin}→{cout}"),
                );
            }
        }
    }

    #[test]
    fn conv1_matches_a_direct_conv_on_every_path() {
        for (w, cin, cout) in [
            (1, 12, 12),
            (7, 3, 4),
            (36, 12, 12),
            (66, 12, 12),
            (96, 9, 12),
            (129, 16, 20),
        ] {
            let lay = RowLayout::new(w);
            let (input, plain) = rows(lay, TILE, cin, w);
            let (residual, res_plain) = rows(lay, TILE, cout, 5 * w);
            let weight: Vec<f32> = (0..cout * cin).map(|i| value(5 * i)).collect();
            let bias: Vec<f32> = (0..cout).map(|i| value(17 * i)).collect();
            let k = Conv1::new(&weight, &bias, cin, cout);
            let mut want = vec![0.0; TILE * cout * w];
            for a in 0..TILE {
                for co in 0..cout {
                    for x in 0..w {
                        let dot: f32 = (0..cin)
                            .map(|ci| weight[co * cin + ci] * plain[(a * cin + ci) * w + x])
                            .sum();
                        want[(a * cout + co) * w + x] =
                            bias[co] + dot + res_plain[(a * cout + co) * w + x];
                    }
                }
            }
            for isa in Isa::available() {
                let mut out: Vec<Vec<Array>> = (0..TILE)
                    .map(|_| aligned_zeros(cout * lay.stride()))
                    .collect();
                let (src, res) = (rows_of(&input, cin), rows_of(&residual, cout));
                let dst = RowsMut {
                    rows: std::array::from_fn(|a| floats_mut(&mut out[a]).as_mut_ptr()),
                    channels: cout,
                };
                let chunks = lay.chunks();
                for part in [0..chunks / 2, chunks / 2..chunks] {
                    // SAFETY: every row holds its channels' strides
                    unsafe { conv1(isa, &k, (lay, part), (&[src], &[dst], Some(res)), Act::None) };
                }
                check(
                    lay,
                    &out,
                    cout,
                    &want,
                    &format!("{isa:?} w {w} {cin}→{cout}"),
                );
            }
        }
    }
}
