//! 8-bit 3×3 convs for the streaming executor (`Precision::Int8` on the CPU), on AVX-512 VNNI.
//!
//! An input channel's values are rounded to u8 with a fixed range ([`Quant`], from
//! calibration frames): x ≈ scale·(q − zero). The input scales fold into the weights, which are
//! then rounded to s8 per output channel; the zero points' share of each sum is a constant
//! that folds into the bias (the padding, a real 0, rounds to the zero point exactly, so the
//! constant holds at the frame's edges too). `vpdpbusd` multiplies four u8 inputs by four s8
//! weights and adds the four products to a 32-bit lane, so a row's channels are packed four to
//! a 32-bit slot, in the row layout's column phases ([`RowLayout`]), and the conv runs
//! directly (no transforms): 9 taps × one instruction per group of four input channels and
//! output channel, for sixteen pixels. The sums are exact; scale, bias, the residual and
//! LeakyReLU follow in f32, and the output is f32 rows like the f32 kernels'.

use std::ops::Range;

use super::lanes::N;
use super::rows::{Io, RowLayout, Rows, RowsMut, SPAN, TILE};
use super::types::Act;

/// How one channel's values round to u8: x ≈ `scale`·(q − `zero`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    pub scale: f32,
    pub zero: u8,
}

impl Quant {
    /// The u8 grid over `lo..=hi` widened to hold 0 (the convs' padding must round exactly).
    pub fn from_range(lo: f32, hi: f32) -> Self {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if hi - lo <= f32::MIN_POSITIVE || !(hi - lo).is_finite() {
            return Self {
                scale: 1.0,
                zero: 0,
            };
        }
        let scale = (hi - lo) / 255.0;
        Self {
            scale,
            zero: (-lo / scale).round().clamp(0.0, 255.0) as u8,
        }
    }

    /// `x` rounded to the grid (as the kernels round it).
    pub fn round(&self, x: f32) -> u8 {
        x.mul_add(1.0 / self.scale, f32::from(self.zero))
            .round_ties_even()
            .clamp(0.0, 255.0) as u8
    }
}

/// Whether this CPU runs the 8-bit kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Output channel counts the kernel is built for (each keeps twelve sums in registers).
const COUTS: [usize; 2] = [3, 12];
/// The most input channels (three groups of four).
const MAX_CIN: usize = 12;

/// Rows of channels packed four to a 32-bit slot: `rows[r]` points at group 0 of row r, the
/// groups one [`RowLayout::stride`] apart.
#[derive(Clone, Copy)]
pub struct Packed<const R: usize> {
    pub rows: [*const u32; R],
    pub groups: usize,
}

/// Output rows of packed channels, as [`Packed`].
#[derive(Clone, Copy)]
pub struct PackedMut<const R: usize> {
    pub rows: [*mut u32; R],
    pub groups: usize,
}

/// Whether a set of `channels` packs its last channel as a triple ([`Pack`]).
fn has_triple(channels: usize) -> bool {
    channels % 4 == 1
}

/// How a set of channels is rounded and packed: channel 4g + i in byte i of group g. When
/// one channel is left over after whole groups (9 = 4 + 4 + 1), its plane holds at column x
/// the triple (x − 1, x, x + 1) in bytes 0, 1, 2: one slot then serves a 3×3 conv's three
/// taps of a row, and the conv's products for it need a third of the instructions.
pub struct Pack {
    inv_scale: Vec<f32>,
    zero: Vec<f32>,
    /// Per plane, the slot a real 0 packs to (padding channels are 0 bytes).
    zero_quads: Vec<u32>,
    triple: bool,
}

impl Pack {
    pub fn new(quant: &[Quant]) -> Self {
        let triple = has_triple(quant.len());
        let whole = if triple { quant.len() - 1 } else { quant.len() };
        let mut zero_quads: Vec<u32> = quant[..whole]
            .chunks(4)
            .map(|g| {
                g.iter()
                    .enumerate()
                    .fold(0u32, |z, (i, q)| z | (u32::from(q.zero) << (8 * i)))
            })
            .collect();
        if triple {
            zero_quads.push(u32::from(quant[whole].zero) * 0x01_01_01);
        }
        Self {
            inv_scale: quant.iter().map(|q| 1.0 / q.scale).collect(),
            zero: quant.iter().map(|q| f32::from(q.zero)).collect(),
            zero_quads,
            triple,
        }
    }

    /// Planes of packed slots a row takes: groups of four channels, and the triple's.
    pub fn groups(&self) -> usize {
        self.zero_quads.len()
    }

    /// Whole groups of four channels.
    fn whole(&self) -> usize {
        self.groups() - usize::from(self.triple)
    }

    /// Per group, the slot that holds 0 in every channel: the padding's value (rows outside
    /// the frame, and a row's slots outside its columns).
    pub fn zero_quads(&self) -> &[u32] {
        &self.zero_quads
    }
}

/// A 3×3 stride-1 "same" conv on u8 inputs and s8 weights: output channels before `first`
/// as f32 rows, the others rounded and packed for the next 8-bit conv where `pack` is given.
pub struct Conv3I8 {
    cout: usize,
    /// Whole groups of four input channels, and whether a last channel comes as a triple.
    groups: usize,
    triple: bool,
    /// [tap][group][cout]: four s8 weights (input channels 4g … 4g+3) to an i32; then for
    /// the triple, [dy][cout]: its three taps of row dy in bytes 0..3.
    w: Vec<i32>,
    /// Per output channel: what one unit of the integer sum is worth, and the bias less the
    /// zero points' share.
    scale: Vec<f32>,
    bias: Vec<f32>,
    /// The first packed output channel, and how they pack.
    packed: Option<(usize, Pack)>,
}

impl Conv3I8 {
    /// Whether the kernels run a `cin` → `cout` conv.
    pub fn fits(cin: usize, cout: usize) -> bool {
        (1..=MAX_CIN).contains(&cin) && COUTS.contains(&cout)
    }

    /// From weights `[cout, cin, 3, 3]` (row-major), bias `[cout]` and the input's rounding;
    /// `packed`: the output channels from `first` on, rounded by `quant` and packed.
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        quant: &[Quant],
        cout: usize,
        packed: Option<(usize, &[Quant])>,
    ) -> Self {
        let cin = quant.len();
        assert!(Self::fits(cin, cout), "an 8-bit conv {cin} → {cout}");
        assert_eq!(weight.len(), cout * cin * 9, "3×3 weights");
        assert_eq!(bias.len(), cout);
        if let Some((first, q)) = packed {
            assert_eq!(first + q.len(), cout, "packed outputs");
        }
        let triple = has_triple(cin);
        let groups = if triple { cin / 4 } else { cin.div_ceil(4) };
        let mut w = vec![0i32; 9 * groups * cout + 3 * cout * usize::from(triple)];
        let (mut scale, mut out_bias) = (vec![0.0; cout], vec![0.0; cout]);
        for co in 0..cout {
            // the weights as they act on q − zero
            let folded =
                |ci: usize, tap: usize| weight[(co * cin + ci) * 9 + tap] * quant[ci].scale;
            let most = (0..cin)
                .flat_map(|ci| (0..9).map(move |tap| (ci, tap)))
                .fold(0f32, |m, (ci, tap)| m.max(folded(ci, tap).abs()));
            let s = if most > 0.0 { most / 127.0 } else { 1.0 };
            let mut zero_share = 0i64;
            for (ci, input) in quant.iter().enumerate() {
                for tap in 0..9 {
                    let q = (folded(ci, tap) / s).round().clamp(-127.0, 127.0) as i8;
                    zero_share += i64::from(q) * i64::from(input.zero);
                    let (at, byte) = match triple && ci == cin - 1 {
                        true => (9 * groups * cout + tap / 3 * cout + co, tap % 3),
                        false => ((tap * groups + ci / 4) * cout + co, ci % 4),
                    };
                    w[at] |= i32::from(q as u8) << (8 * byte);
                }
            }
            scale[co] = s;
            out_bias[co] = bias[co] - s * zero_share as f32;
        }
        Self {
            cout,
            groups,
            triple,
            w,
            scale,
            bias: out_bias,
            packed: packed.map(|(first, q)| (first, Pack::new(q))),
        }
    }

    /// Planes of packed slots a row of its input takes ([`Pack::groups`]).
    pub fn groups(&self) -> usize {
        self.groups + usize::from(self.triple)
    }

    /// Output channels it writes as f32.
    pub fn f32_outputs(&self) -> usize {
        self.packed.as_ref().map_or(self.cout, |p| p.0)
    }
}

/// Rounds and packs four rows of f32 channels (`src`) into `dst`, in the vectors of tiles
/// `chunks` (a row's slots past its columns hold 0, which packs to the zero point); returns by
/// how many steps values of the rows `counted` (of the four) fell outside their channel's
/// range, summed (each value's at most 255).
///
/// # Safety
/// The CPU must run the 8-bit kernels ([`available`]); the rows must be valid for
/// [`RowLayout::stride`] floats (slots) per channel (group).
pub unsafe fn quantize(
    pack: &Pack,
    (lay, chunks): (RowLayout, Range<usize>),
    (src, dst): (Rows<TILE>, PackedMut<TILE>),
    counted: Range<usize>,
) -> u64 {
    assert_eq!(src.channels, pack.inv_scale.len());
    assert_eq!(dst.groups, pack.groups());
    assert!(!pack.triple, "quantize packs whole groups");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as the caller promised
    unsafe {
        quantize_avx512(pack, (lay, chunks), (src, dst), counted)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("the 8-bit kernels run on x86-64 only ({lay:?} {chunks:?})");
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_avx512(
    pack: &Pack,
    (lay, chunks): (RowLayout, Range<usize>),
    (src, dst): (Rows<TILE>, PackedMut<TILE>),
    counted: Range<usize>,
) -> u64 {
    use std::arch::x86_64::*;
    let stride = lay.stride();
    let cin = src.channels;
    let mut excess = _mm512_setzero_si512();
    for a in 0..TILE {
        let count: u16 = if counted.contains(&a) { !0 } else { 0 };
        for g in 0..dst.groups {
            let channels = 4 * g..(4 * g + 4).min(cin);
            for c in chunks.clone() {
                for p in 0..TILE {
                    let at = lay.phase(p) + c * N;
                    // SAFETY: the slots lie in the rows, as the caller promised
                    unsafe {
                        let mut quad = _mm512_setzero_si512();
                        for (byte, ci) in channels.clone().enumerate() {
                            let x = _mm512_loadu_ps(src.rows[a].add(ci * stride + at));
                            let (q, e) = round(x, pack.inv_scale[ci], pack.zero[ci]);
                            excess = _mm512_mask_add_epi32(excess, count, excess, e);
                            quad = shift_in(quad, q, byte);
                        }
                        _mm512_storeu_si512(dst.rows[a].add(g * stride + at).cast(), quad);
                    }
                }
            }
        }
    }
    total(excess)
}

/// `x` rounded to u8 (in 32-bit lanes): `x / scale + zero`, nearest, clamped; and by how many
/// steps each lane lay outside 0..=255 (at most 255).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn round(
    x: std::arch::x86_64::__m512,
    inv_scale: f32,
    zero: f32,
) -> (std::arch::x86_64::__m512i, std::arch::x86_64::__m512i) {
    use std::arch::x86_64::*;
    // SAFETY: the caller runs AVX-512F
    unsafe {
        let x = _mm512_fmadd_ps(x, _mm512_set1_ps(inv_scale), _mm512_set1_ps(zero));
        let q = _mm512_cvtps_epi32(x);
        let (lo, hi) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
        let clamped = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
        let excess = _mm512_abs_epi32(_mm512_sub_epi32(q, clamped));
        (clamped, _mm512_min_epi32(excess, hi))
    }
}

/// The sum of the lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn total(v: std::arch::x86_64::__m512i) -> u64 {
    // SAFETY: sixteen 32-bit lanes are 64 bytes either way
    let lanes: [u32; 16] = unsafe { std::mem::transmute(v) };
    lanes.iter().map(|&l| u64::from(l)).sum()
}

/// `quad` with the u8 lanes `q` in byte `byte` of each slot.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn shift_in(
    quad: std::arch::x86_64::__m512i,
    q: std::arch::x86_64::__m512i,
    byte: usize,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    // SAFETY: the caller runs AVX-512F
    unsafe {
        let shifted = match byte {
            0 => q,
            1 => _mm512_slli_epi32::<8>(q),
            2 => _mm512_slli_epi32::<16>(q),
            _ => _mm512_slli_epi32::<24>(q),
        };
        _mm512_or_si512(quad, shifted)
    }
}

/// Output rows 4k … 4k+3 of a 3×3 conv from packed u8 input rows 4k−1 … 4k+4 (`src`, in
/// order), with bias, then `act`, in the vectors of tiles `chunks`: the first
/// [`Conv3I8::f32_outputs`] channels into the f32 sets `dst`, the rest packed into `packed`;
/// returns by how many steps packed values of the rows `counted` (of the four: those the
/// output needs) fell outside their channel's range, summed.
///
/// # Safety
/// The CPU must run the 8-bit kernels ([`available`]); every row pointer must be valid for
/// [`RowLayout::stride`] floats (slots) per channel (group) of its set, and output rows must
/// not alias input rows.
pub unsafe fn conv3(
    k: &Conv3I8,
    (lay, chunks): (RowLayout, Range<usize>),
    (src, dst, packed): (Packed<SPAN>, &[RowsMut<TILE>], Option<PackedMut<TILE>>),
    (act, counted): (Act, Range<usize>),
) -> u64 {
    assert_eq!(src.groups, k.groups(), "input planes");
    assert_eq!(
        packed.map(|p| p.groups),
        k.packed.as_ref().map(|p| p.1.groups()),
        "packed output groups"
    );
    let io = Io::new(lay, &[], dst, None, (0, k.f32_outputs()));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU runs VNNI and the pointers are valid, as the caller promised
    unsafe {
        let at = (src, &io, packed);
        let lay = (lay, chunks);
        match (k.cout, k.groups, k.triple) {
            (3, 0, _) => vnni::<3, 4, 0, true>(k, lay, at, (act, counted.clone())),
            (3, 1, false) => vnni::<3, 4, 1, false>(k, lay, at, (act, counted.clone())),
            (3, 1, true) => vnni::<3, 4, 1, true>(k, lay, at, (act, counted.clone())),
            (3, 2, false) => vnni::<3, 4, 2, false>(k, lay, at, (act, counted.clone())),
            (3, 2, true) => vnni::<3, 4, 2, true>(k, lay, at, (act, counted.clone())),
            (3, _, _) => vnni::<3, 4, 3, false>(k, lay, at, (act, counted.clone())),
            (_, 0, _) => vnni::<12, 1, 0, true>(k, lay, at, (act, counted.clone())),
            (_, 1, false) => vnni::<12, 1, 1, false>(k, lay, at, (act, counted.clone())),
            (_, 1, true) => vnni::<12, 1, 1, true>(k, lay, at, (act, counted.clone())),
            (_, 2, false) => vnni::<12, 1, 2, false>(k, lay, at, (act, counted.clone())),
            (_, 2, true) => vnni::<12, 1, 2, true>(k, lay, at, (act, counted.clone())),
            _ => vnni::<12, 1, 3, false>(k, lay, at, (act, counted.clone())),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("the 8-bit kernels run on x86-64 only ({chunks:?} {act:?} {io:p})");
}

/// The conv: for each output row a and Q phases at a time, COUT × Q sums (twelve
/// registers), 9 taps × G groups of u8 quads each, and with T 3 rows of the triple.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni<const COUT: usize, const Q: usize, const G: usize, const T: bool>(
    k: &Conv3I8,
    (lay, chunks): (RowLayout, Range<usize>),
    (src, io, packed): (Packed<SPAN>, &Io<TILE>, Option<PackedMut<TILE>>),
    (act, counted): (Act, Range<usize>),
) -> u64 {
    use std::arch::x86_64::*;
    let mut excess = _mm512_setzero_si512();
    let stride = lay.stride();
    let phase: [usize; TILE] = std::array::from_fn(|p| lay.phase(p));
    assert_eq!(
        k.w.len(),
        (9 * G + 3 * usize::from(T)) * COUT,
        "the weights"
    );
    let w = k.w.as_ptr();
    let first = k.f32_outputs();
    let slope = _mm512_set1_ps(0.05);
    for chunk in chunks {
        let t0 = chunk * N;
        for a in 0..TILE {
            for q0 in (0..TILE).step_by(Q) {
                // where tap dx of output phase q0 + i reads: column 4t + p + dx − 1
                let at: [[usize; Q]; 3] = std::array::from_fn(|dx| {
                    std::array::from_fn(|i| {
                        let c = q0 + i + dx + 3;
                        phase[c % TILE] + t0 + c / TILE - 1
                    })
                });
                let mut acc = [[_mm512_setzero_si512(); COUT]; Q];
                for dy in 0..3 {
                    let row = src.rows[a + dy];
                    for (dx, at) in at.iter().enumerate() {
                        for g in 0..G {
                            let mut v = [_mm512_setzero_si512(); Q];
                            for i in 0..Q {
                                // SAFETY: the slot lies in the row (its zero slots included)
                                v[i] = unsafe {
                                    _mm512_loadu_si512(row.add(g * stride + at[i]).cast())
                                };
                            }
                            let wt = w.wrapping_add(((dy * 3 + dx) * G + g) * COUT);
                            // SAFETY: the weights hold G groups' 9 taps (asserted)
                            unsafe { dot::<COUT, Q>(&mut acc, v, wt) };
                        }
                    }
                    if T {
                        // the triple's plane: row dy's three taps in one slot, at column x
                        let row = row.wrapping_add(G * stride);
                        let mut v = [_mm512_setzero_si512(); Q];
                        for i in 0..Q {
                            // SAFETY: as above
                            v[i] = unsafe { _mm512_loadu_si512(row.add(at[1][i]).cast()) };
                        }
                        let wt = w.wrapping_add((9 * G + dy) * COUT);
                        // SAFETY: the weights hold the triple's 3 rows after the groups
                        unsafe { dot::<COUT, Q>(&mut acc, v, wt) };
                    }
                }
                for (i, acc) in acc.iter().enumerate() {
                    let p = q0 + i;
                    let mask = lay.mask(chunk, p);
                    let count = if counted.contains(&a) { mask } else { 0 };
                    let to = phase[p] + t0;
                    let y: [__m512; COUT] = std::array::from_fn(|co| {
                        let y = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(acc[co]),
                            _mm512_set1_ps(k.scale[co]),
                            _mm512_set1_ps(k.bias[co]),
                        );
                        match act {
                            Act::LRelu => _mm512_max_ps(y, _mm512_mul_ps(y, slope)),
                            _ => y,
                        }
                    });
                    for (co, &y) in y.iter().enumerate().take(first) {
                        // SAFETY: the rows hold the phase's slots, as the caller promised
                        unsafe {
                            _mm512_storeu_ps(io.dst()[co][a].add(to), _mm512_maskz_mov_ps(mask, y))
                        };
                    }
                    let (Some((_, pack)), Some(out)) = (&k.packed, packed) else {
                        continue;
                    };
                    // the channels of whole groups, then the triple's
                    let whole = pack.zero.len() - usize::from(pack.triple);
                    for (g, ys) in y[first..first + whole].chunks(4).enumerate() {
                        let mut quad = _mm512_setzero_si512();
                        for (byte, &y) in ys.iter().enumerate() {
                            let c = 4 * g + byte;
                            // SAFETY: AVX-512F runs
                            unsafe {
                                let (q, e) = round(y, pack.inv_scale[c], pack.zero[c]);
                                excess = _mm512_mask_add_epi32(excess, count, excess, e);
                                quad = shift_in(quad, q, byte);
                            }
                        }
                        let zero = _mm512_set1_epi32(pack.zero_quads[g] as i32);
                        // SAFETY: as above
                        unsafe {
                            _mm512_storeu_si512(
                                out.rows[a].add(g * stride + to).cast(),
                                _mm512_mask_blend_epi32(mask, zero, quad),
                            )
                        };
                    }
                    if pack.triple {
                        let c = whole;
                        // SAFETY: AVX-512F runs
                        let (q, e) =
                            unsafe { round(y[first + c], pack.inv_scale[c], pack.zero[c]) };
                        excess = _mm512_mask_add_epi32(excess, count, excess, e);
                        // past the row's columns: the zero point, the neighbours' padding
                        let zero = _mm512_set1_epi32(pack.zero[c] as i32);
                        let q = _mm512_mask_blend_epi32(mask, zero, q);
                        let plane = out.rows[a].wrapping_add(pack.whole() * stride);
                        // column x is byte 1 of its own slot, byte 0 of x + 1's and byte 2 of
                        // x − 1's (phase p ± 1 of the tile, or of the next or previous tile)
                        let right = match p {
                            3 => phase[0] + t0 + 1,
                            _ => phase[p + 1] + t0,
                        };
                        let left = match p {
                            0 => phase[3] + t0 - 1,
                            _ => phase[p - 1] + t0,
                        };
                        const BYTE0: u64 = 0x1111_1111_1111_1111;
                        // SAFETY: the slots lie in the row (a phase's zero slots included);
                        // the byte masks leave the slots' other bytes to their writers
                        unsafe {
                            _mm512_mask_storeu_epi8(
                                plane.add(to).cast(),
                                BYTE0 << 1,
                                _mm512_slli_epi32::<8>(q),
                            );
                            _mm512_mask_storeu_epi8(plane.add(right).cast(), BYTE0, q);
                            _mm512_mask_storeu_epi8(
                                plane.add(left).cast(),
                                BYTE0 << 2,
                                _mm512_slli_epi32::<16>(q),
                            );
                        }
                    }
                }
            }
        }
    }
    total(excess)
}

/// `acc[i][co] += v[i] · w[co]` (u8 quads by s8 quads) for COUT weights broadcast once each.
///
/// # Safety
/// `w` must point at COUT weights; the CPU must run VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn dot<const COUT: usize, const Q: usize>(
    acc: &mut [[std::arch::x86_64::__m512i; COUT]; Q],
    v: [std::arch::x86_64::__m512i; Q],
    w: *const i32,
) {
    use std::arch::x86_64::*;
    // each weight broadcast once for the Q phases' sums
    #[allow(clippy::needless_range_loop)]
    for co in 0..COUT {
        // SAFETY: as the caller promised
        let w = _mm512_set1_epi32(unsafe { *w.add(co) });
        for i in 0..Q {
            acc[i][co] = _mm512_dpbusd_epi32(acc[i][co], v[i], w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lanes::{Array, aligned_zeros, floats, floats_mut};

    fn value(i: usize) -> f32 {
        ((i * 7919 + 13) % 2001) as f32 / 1000.0 - 1.0
    }

    #[test]
    fn zero_rounds_to_the_zero_point_and_the_range_is_kept() {
        for (lo, hi) in [
            (-1.0, 3.0),
            (0.0, 5.0),
            (-2.0, 0.0),
            (0.5, 7.0),
            (-3.0, -1.0),
        ] {
            let q = Quant::from_range(lo, hi);
            assert_eq!(q.round(0.0), q.zero, "{lo} {hi}");
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let back = |x: f32| q.scale * (f32::from(q.round(x)) - f32::from(q.zero));
            assert!((back(lo) - lo).abs() <= q.scale / 2.0 + 1e-6, "{lo}");
            assert!((back(hi) - hi).abs() <= q.scale / 2.0 + 1e-6, "{hi}");
            // outside the range: clipped to its ends
            assert!(back(hi + 10.0) <= hi + q.scale);
        }
        assert_eq!(Quant::from_range(0.0, 0.0).round(0.0), 0);
    }

    fn words(buf: &[Array]) -> &[u32] {
        // SAFETY: an Array is 16 u32's worth of bytes
        unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), buf.len() * N) }
    }

    fn words_mut(buf: &mut [Array]) -> &mut [u32] {
        // SAFETY: as above
        unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), buf.len() * N) }
    }

    /// Where channel `c` of a packed set of `n` lies: its plane and byte (the triple's own
    /// column in byte 1).
    fn place(n: usize, c: usize) -> (usize, usize) {
        match has_triple(n) && c == n - 1 {
            true => (n / 4, 1),
            false => (c / 4, c % 4),
        }
    }

    /// Byte `byte` of plane `plane` at column `x` (`x` = −1 … padded width).
    fn byte_at(buf: &[Array], lay: RowLayout, (plane, byte): (usize, usize), x: isize) -> u8 {
        let slot = (lay.index((x + 4) as usize) as isize - 1) as usize;
        (words(buf)[plane * lay.stride() + slot] >> (8 * byte)) as u8
    }

    fn set_byte(buf: &mut [Array], lay: RowLayout, (plane, byte): (usize, usize), x: isize, v: u8) {
        let slot = (lay.index((x + 4) as usize) as isize - 1) as usize;
        let word = &mut words_mut(buf)[plane * lay.stride() + slot];
        *word = (*word & !(0xff << (8 * byte))) | (u32::from(v) << (8 * byte));
    }

    /// A row of `quant.len()` channels packed as the stream keeps it: every slot at the zero
    /// points, then each column's bytes, the triple's neighbours included.
    fn pack_row(
        lay: RowLayout,
        quant: &[Quant],
        value: impl Fn(usize, usize) -> f32,
    ) -> Vec<Array> {
        let (n, stride) = (quant.len(), lay.stride());
        let pack = Pack::new(quant);
        let mut buf = aligned_zeros(pack.groups() * stride);
        for (g, plane) in words_mut(&mut buf).chunks_exact_mut(stride).enumerate() {
            plane.fill(pack.zero_quads()[g]);
        }
        for (c, q) in quant.iter().enumerate() {
            for x in 0..lay.w as isize {
                let v = q.round(value(c, x as usize));
                let (plane, byte) = place(n, c);
                set_byte(&mut buf, lay, (plane, byte), x, v);
                if has_triple(n) && c == n - 1 {
                    set_byte(&mut buf, lay, (plane, 0), x + 1, v);
                    set_byte(&mut buf, lay, (plane, 2), x - 1, v);
                }
            }
        }
        buf
    }

    /// `quantize` packs f32 rows (their slots past the row's columns 0) as [`pack_row`] does.
    #[test]
    fn quantize_packs_rows_of_whole_groups() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        for (w, cin) in [(70, 12), (9, 7), (131, 3), (64, 8)] {
            let lay = RowLayout::new(w);
            let stride = lay.stride();
            let quant: Vec<Quant> = (0..cin)
                .map(|c| Quant::from_range(-0.3 - 0.1 * c as f32, 1.0 + 0.2 * c as f32))
                .collect();
            let pixel = |a: usize, c: usize, x: usize| 1.5 * value(a * 1000 + c * 100 + x) + 0.2;
            let rows: Vec<Vec<Array>> = (0..TILE)
                .map(|a| {
                    let mut buf = aligned_zeros(cin * stride);
                    for c in 0..cin {
                        for x in 0..w {
                            floats_mut(&mut buf)[c * stride + lay.index(x)] = pixel(a, c, x);
                        }
                    }
                    buf
                })
                .collect();
            let mut got: Vec<Vec<Array>> = (0..TILE)
                .map(|_| pack_row(lay, &quant, |_, _| 0.0))
                .collect();
            let src = Rows {
                rows: std::array::from_fn(|a| floats(&rows[a]).as_ptr()),
                channels: cin,
            };
            let pack = Pack::new(&quant);
            let dst = PackedMut {
                rows: std::array::from_fn(|a| got[a].as_mut_ptr().cast()),
                groups: pack.groups(),
            };
            // SAFETY: VNNI is there; the rows hold cin strides, the packed ones groups
            let run =
                |counted| unsafe { quantize(&pack, (lay, 0..lay.chunks()), (src, dst), counted) };
            // rows 1 and 2 only, then all four
            let clipped_inside = run(1..3);
            let clipped = run(0..TILE);
            let steps = |a: usize, c: usize, x: usize| {
                let q = &quant[c];
                let v = pixel(a, c, x).mul_add(1.0 / q.scale, f32::from(q.zero));
                let v = v.round_ties_even();
                (v - v.clamp(0.0, 255.0)).abs().min(255.0) as u64
            };
            let inside: u64 = (cin * w..3 * cin * w)
                .map(|i| steps(i / (cin * w), i / w % cin, i % w))
                .sum();
            assert_eq!(clipped_inside, inside, "the steps outside, rows 1 and 2");
            let excess: u64 = (0..TILE * cin * w)
                .map(|i| steps(i / (cin * w), i / w % cin, i % w))
                .sum();
            assert!(excess > 0, "some values lie outside their ranges");
            assert_eq!(clipped, excess, "the steps outside summed");
            for (a, got) in got.iter().enumerate() {
                let want = pack_row(lay, &quant, |c, x| pixel(a, c, x));
                assert!(words(got) == words(&want), "w {w}, {cin} channels, row {a}");
            }
        }
    }

    /// The kernel against a direct conv of the same rounded inputs and weights in f64 (the
    /// sums are exact, so only the f32 epilogue rounds); packed outputs within one step of
    /// the reference rounded, a triple's neighbours its neighbours' values; the slots past
    /// a row's columns 0 (f32) or the zero point (packed). Widths whose last vector is
    /// partial or whole, inputs with and without a triple, both output widths.
    #[test]
    fn the_8bit_conv_equals_a_direct_conv_of_its_rounded_values() {
        if !available() {
            eprintln!("no AVX-512 VNNI here: skipped");
            return;
        }
        for (w, cin, cout, first) in [
            (70, 12, 12, 3),
            (131, 9, 12, 3),
            (64, 9, 3, 3),
            (9, 5, 3, 2),
            (200, 9, 3, 0),
            (13, 1, 12, 0),
        ] {
            check(w, cin, cout, first);
        }
    }

    fn check(w: usize, cin: usize, cout: usize, first: usize) {
        let lay = RowLayout::new(w);
        let stride = lay.stride();
        let quant: Vec<Quant> = (0..cin)
            .map(|c| Quant::from_range(-0.3 - 0.1 * c as f32, 1.0 + 0.2 * c as f32))
            .collect();
        let out_quant: Vec<Quant> = (first..cout)
            .map(|c| Quant::from_range(-0.5, 2.0 + 0.1 * c as f32))
            .collect();
        let pixel = |r: usize, c: usize, x: usize| 1.5 * value(r * 1000 + c * 100 + x) + 0.2;
        let packed: Vec<Vec<Array>> = (0..SPAN)
            .map(|r| pack_row(lay, &quant, |c, x| pixel(r, c, x)))
            .collect();
        let weight: Vec<f32> = (0..cout * cin * 9)
            .map(|i| 0.3 * value(3 * i + 1))
            .collect();
        let bias: Vec<f32> = (0..cout).map(|i| value(11 * i)).collect();
        let packs = (first < cout).then_some((first, &out_quant[..]));
        let k = Conv3I8::new(&weight, &bias, &quant, cout, packs);
        let n = cout - first;
        let mut out: Vec<Vec<Array>> = (0..TILE).map(|_| aligned_zeros(first * stride)).collect();
        // the packed output as the stream keeps it, but its whole groups' slots hold a value
        // the kernel must overwrite
        let mut out_packed: Vec<Vec<Array>> = (0..TILE)
            .map(|_| {
                let mut buf = pack_row(lay, &out_quant, |_, _| 0.0);
                let whole = 4 * (n / 4) + if has_triple(n) { 0 } else { n % 4 };
                words_mut(&mut buf)[..whole.div_ceil(4) * stride].fill(0x0707_0707);
                buf
            })
            .collect();
        for o in &mut out {
            floats_mut(o).fill(7.0);
        }
        let src = Packed {
            rows: std::array::from_fn(|r| packed[r].as_ptr().cast()),
            groups: k.groups(),
        };
        let dst = [RowsMut {
            rows: std::array::from_fn(|a| floats_mut(&mut out[a]).as_mut_ptr()),
            channels: first,
        }];
        let dst_packed = (first < cout).then(|| PackedMut {
            rows: std::array::from_fn(|a| out_packed[a].as_mut_ptr().cast()),
            groups: Pack::new(&out_quant).groups(),
        });
        // SAFETY: VNNI is there; the rows hold their channels' (groups') strides
        let run = |counted: Range<usize>| unsafe {
            conv3(
                &k,
                (lay, 0..lay.chunks()),
                (src, &dst[..usize::from(first > 0)], dst_packed),
                (Act::LRelu, counted),
            )
        };
        // rows outside `counted` (outside the frame) do not count
        assert_eq!(run(2..2), 0, "no rows counted");
        let excess = run(0..TILE);
        let mut clipped = 0.0;
        // the reference: the weights as the kernel rounded them, on the rounded inputs
        let wq = |co: usize, ci: usize, tap: usize| -> f64 {
            let (at, byte) = match has_triple(cin) && ci == cin - 1 {
                true => (9 * k.groups * cout + tap / 3 * cout + co, tap % 3),
                false => ((tap * k.groups + ci / 4) * cout + co, ci % 4),
            };
            f64::from((k.w[at] >> (8 * byte)) as i8)
        };
        for co in 0..cout {
            for a in 0..TILE {
                for x in 0..lay.padded_width() {
                    let got = match co < first {
                        true => floats(&out[a])[co * stride + lay.index(x)],
                        false => {
                            let at = place(n, co - first);
                            f32::from(byte_at(&out_packed[a], lay, at, x as isize))
                        }
                    };
                    if x >= w {
                        let zero = match co < first {
                            true => 0.0,
                            false => f32::from(out_quant[co - first].zero),
                        };
                        assert_eq!(got, zero, "padding column {x} of channel {co}");
                        continue;
                    }
                    let mut sum = 0.0f64;
                    for (ci, input) in quant.iter().enumerate() {
                        for dy in 0..3 {
                            for dx in 0..3 {
                                let col = x as isize + dx as isize - 1;
                                let v = if (0..w as isize).contains(&col) {
                                    pixel(a + dy, ci, col as usize)
                                } else {
                                    0.0
                                };
                                let q = f64::from(input.round(v)) - f64::from(input.zero);
                                sum += wq(co, ci, dy * 3 + dx) * q;
                            }
                        }
                    }
                    let y = sum * f64::from(k.scale[co]) + f64::from(bias[co]);
                    let y = y.max(0.05 * y);
                    let at = format!("w {w} {cin}→{cout} channel {co} row {a} column {x}");
                    if co < first {
                        assert!(
                            (f64::from(got) - y).abs() < 1e-4 * (1.0 + y.abs()),
                            "{at}: {got} vs {y}"
                        );
                        continue;
                    }
                    let q = out_quant[co - first];
                    let want = (f64::from(q.zero) + y / f64::from(q.scale)).round();
                    clipped += (want - want.clamp(0.0, 255.0)).abs().min(255.0);
                    let want = want.clamp(0.0, 255.0);
                    assert!(
                        (f64::from(got) - want).abs() <= 1.0,
                        "{at}: {got} vs {want}"
                    );
                    if has_triple(n) && co == cout - 1 {
                        // the triple's neighbours: the columns beside, or the zero point
                        let (plane, x) = (n / 4, x as isize);
                        let own = |x: isize| match (0..w as isize).contains(&x) {
                            true => byte_at(&out_packed[a], lay, (plane, 1), x),
                            false => q.zero,
                        };
                        assert_eq!(
                            byte_at(&out_packed[a], lay, (plane, 0), x),
                            own(x - 1),
                            "{at}"
                        );
                        assert_eq!(
                            byte_at(&out_packed[a], lay, (plane, 2), x),
                            own(x + 1),
                            "{at}"
                        );
                    }
                }
            }
        }
        // each value clipped may round a step apart in f32
        let off = (excess as f64 - clipped).abs();
        assert!(
            off <= clipped / 100.0 + 2.0,
            "excess {excess}, reference {clipped}"
        );
    }

    /// The rounded weights act like the f32 ones: each within half a step of its grid.
    #[test]
    fn weights_round_to_within_half_a_step() {
        let quant = vec![Quant::from_range(-1.0, 1.0); 4];
        let weight: Vec<f32> = (0..3 * 4 * 9).map(|i| value(5 * i)).collect();
        let k = Conv3I8::new(&weight, &[0.0; 3], &quant, 3, None);
        for co in 0..3 {
            let step = k.scale[co] / quant[0].scale;
            for ci in 0..4 {
                for tap in 0..9 {
                    let packed = k.w[(tap * k.groups()) * 3 + co];
                    let q = f32::from((packed >> (8 * ci)) as i8);
                    let w = weight[(co * 4 + ci) * 9 + tap];
                    assert!((q * step - w).abs() <= step / 2.0 + 1e-6, "{co} {ci} {tap}");
                }
            }
        }
    }
}
