//! Convolutions on four rows at a time, for the streaming executor ([`crate::cpu::stream`]),
//! which keeps only the few rows of each activation its next layers still need.
//!
//! A row of one channel is stored in four phases ([`RowLayout`]): columns 4j, then 4j+1, 4j+2
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

use super::lanes::{self, Array, Lanes, N, prefetch};
use super::transform::kernel4;
use super::types::Act;

/// The most channels a conv here reads or writes (IMDN_RTC ×4's upsampler writes 48).
pub const MAX_CHANNELS: usize = 64;

/// Output rows (and columns) of one tile: the rows a conv writes per call.
pub const TILE: usize = 4;
/// Input rows of one tile.
const SPAN: usize = TILE + 2;
/// Transform positions of a tile.
const POS: usize = SPAN * SPAN;

/// Where a row's columns lie: column x at `phase(x % 4) + x / 4`; each phase is a run of
/// `slots` values with one zero slot before and after (column −1 is phase 3's slot −1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowLayout {
    pub w: usize,
    /// Vectors of 16 tiles per row.
    chunks: usize,
}

impl RowLayout {
    pub fn new(w: usize) -> Self {
        Self {
            w,
            chunks: w.div_ceil(TILE).div_ceil(N).max(1),
        }
    }

    /// Tile slots per phase, a multiple of 16.
    fn slots(&self) -> usize {
        self.chunks * N
    }

    /// Columns the kernels compute per row: the row rounded up to whole vectors of tiles.
    pub fn padded_width(&self) -> usize {
        self.slots() * TILE
    }

    /// Floats per channel row.
    pub fn stride(&self) -> usize {
        TILE * (self.slots() + N) + N
    }

    /// Index of the first column of phase `p`.
    fn phase(&self, p: usize) -> usize {
        N + p * (self.slots() + N)
    }

    /// Index of column `x`.
    pub fn index(&self, x: usize) -> usize {
        self.phase(x % TILE) + x / TILE
    }

    /// The lanes of chunk `c` of phase `p` that hold columns of the row.
    fn mask(&self, c: usize, p: usize) -> u16 {
        let valid = self.w.saturating_sub(p).div_ceil(TILE);
        let n = valid.saturating_sub(c * N).min(N);
        ((1u32 << n) - 1) as u16
    }
}

/// Rows of a set of channels: `rows[r]` points at channel 0 of row r, the channels one
/// [`RowLayout::stride`] apart.
#[derive(Clone, Copy)]
pub struct Rows<const R: usize> {
    pub rows: [*const f32; R],
    pub channels: usize,
}

/// Output rows of a set of channels, as [`Rows`].
#[derive(Clone, Copy)]
pub struct RowsMut<const R: usize> {
    pub rows: [*mut f32; R],
    pub channels: usize,
}

/// Output channels in groups of accumulators: sizes 4, 8, 12 or 16, the weights padded to
/// a multiple of 4 channels.
fn groups(cout: usize) -> (usize, Vec<(usize, usize)>) {
    let padded = cout.next_multiple_of(4);
    let groups = (0..padded)
        .step_by(16)
        .map(|c0| (c0, (padded - c0).min(16)))
        .collect();
    (padded, groups)
}

/// A 3×3 stride-1 "same" conv by F(2×2, 3×3).
pub struct Conv3 {
    cin: usize,
    cout: usize,
    padded: usize,
    groups: Vec<(usize, usize)>,
    /// [POS][cin][padded]
    u: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv3 {
    /// From weights [cout, cin, 3, 3] (row-major) and bias [cout].
    pub fn new(weight: &[f32], bias: &[f32], cin: usize, cout: usize) -> Self {
        assert_eq!(weight.len(), cout * cin * 9, "3×3 weights");
        assert!(cin <= MAX_CHANNELS && cout <= MAX_CHANNELS);
        let (padded, groups) = groups(cout);
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
            groups,
            u,
            bias: bias.to_vec(),
        }
    }

    pub fn cout(&self) -> usize {
        self.cout
    }
}

/// A 1×1 conv.
pub struct Conv1 {
    cin: usize,
    cout: usize,
    padded: usize,
    groups: Vec<(usize, usize)>,
    /// [cin][padded]
    w: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv1 {
    /// From weights [cout, cin] (row-major) and bias [cout].
    pub fn new(weight: &[f32], bias: &[f32], cin: usize, cout: usize) -> Self {
        assert_eq!(weight.len(), cout * cin, "1×1 weights");
        assert!(cin <= MAX_CHANNELS && cout <= MAX_CHANNELS);
        let (padded, groups) = groups(cout);
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
            groups,
            w,
            bias: bias.to_vec(),
        }
    }

    pub fn cout(&self) -> usize {
        self.cout
    }
}

/// Per-thread scratch of the 3×3 conv: the transformed input and the GEMM results of one
/// vector of tiles.
#[derive(Default)]
pub struct Scratch {
    v: Vec<Array>,
    m: Vec<Array>,
}

/// One channel pointer per channel of `sets`, each set's channels a stride apart.
fn channel_table<T: Copy, const R: usize>(
    sets: impl Iterator<Item = ([T; R], usize)>,
    stride: usize,
    advance: impl Fn(T, usize) -> T,
    table: &mut [[T; R]; MAX_CHANNELS],
) -> usize {
    let mut n = 0;
    for (rows, channels) in sets {
        for c in 0..channels {
            table[n] = rows.map(|r| advance(r, c * stride));
            n += 1;
        }
    }
    n
}

/// What one call of a conv reads and writes, per channel.
struct Io<const R: usize> {
    src: [[*const f32; R]; MAX_CHANNELS],
    dst: [[*mut f32; TILE]; MAX_CHANNELS],
    res: Option<[[*const f32; TILE]; MAX_CHANNELS]>,
}

impl<const R: usize> Io<R> {
    fn new(
        lay: RowLayout,
        src: &[Rows<R>],
        dst: &[RowsMut<TILE>],
        res: Option<Rows<TILE>>,
        (cin, cout): (usize, usize),
    ) -> Self {
        let stride = lay.stride();
        let mut io = Self {
            src: [[std::ptr::null(); R]; MAX_CHANNELS],
            dst: [[std::ptr::null_mut(); TILE]; MAX_CHANNELS],
            res: None,
        };
        let add = |p: *const f32, o: usize| p.wrapping_add(o);
        let n = channel_table(
            src.iter().map(|s| (s.rows, s.channels)),
            stride,
            add,
            &mut io.src,
        );
        assert_eq!(n, cin, "input channels");
        let n = channel_table(
            dst.iter().map(|d| (d.rows, d.channels)),
            stride,
            |p: *mut f32, o| p.wrapping_add(o),
            &mut io.dst,
        );
        assert_eq!(n, cout, "output channels");
        io.res = res.map(|r| {
            assert_eq!(r.channels, cout, "residual channels");
            let mut t = [[std::ptr::null(); TILE]; MAX_CHANNELS];
            channel_table(std::iter::once((r.rows, cout)), stride, add, &mut t);
            t
        });
        io
    }
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
/// bias, then the residual `res`, then `act`.
///
/// # Safety
/// Every row pointer must be valid for [`RowLayout::stride`] floats per channel of its set,
/// and output rows must not alias input or residual rows.
pub unsafe fn conv3(
    k: &Conv3,
    lay: RowLayout,
    src: &[Rows<SPAN>],
    dst: &[RowsMut<TILE>],
    res: Option<Rows<TILE>>,
    act: Act,
    s: &mut Scratch,
) {
    let io = Io::new(lay, src, dst, res, (k.cin, k.cout));
    s.v.resize(POS * k.cin, Array([0.0; N]));
    s.m.resize(POS * k.padded, Array([0.0; N]));
    let (v, m) = (s.v.as_mut_ptr().cast(), s.m.as_mut_ptr().cast());
    #[cfg(target_arch = "x86_64")]
    {
        if lanes::avx512() {
            // SAFETY: AVX-512F is present; the pointers are valid as the caller promised
            return unsafe { conv3_avx512(k, lay, &io, act, (v, m)) };
        }
        if super::simd::available() {
            // SAFETY: AVX2 and FMA are present
            return unsafe { conv3_avx2(k, lay, &io, act, (v, m)) };
        }
    }
    // SAFETY: as the caller promised
    unsafe { conv3_lanes::<Array>(k, lay, &io, act, (v, m)) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn conv3_avx512(
    k: &Conv3,
    lay: RowLayout,
    io: &Io<SPAN>,
    act: Act,
    s: (*mut f32, *mut f32),
) {
    unsafe { conv3_lanes::<lanes::Zmm>(k, lay, io, act, s) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv3_avx2(k: &Conv3, lay: RowLayout, io: &Io<SPAN>, act: Act, s: (*mut f32, *mut f32)) {
    unsafe { conv3_lanes::<Array>(k, lay, io, act, s) }
}

#[inline(always)]
unsafe fn conv3_lanes<L: Lanes>(
    k: &Conv3,
    lay: RowLayout,
    io: &Io<SPAN>,
    act: Act,
    (v, m): (*mut f32, *mut f32),
) {
    let (cin, padded) = (k.cin, k.padded);
    let phase: [usize; TILE] = from_fn(|p| lay.phase(p));
    for chunk in 0..lay.chunks {
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
            for (ci, rows) in io.src[..cin].iter().enumerate() {
                // the next vector's input, from L3 mostly (written one step ago)
                for row in rows {
                    for p in phase {
                        prefetch(row.wrapping_add(p + t0 + N));
                    }
                }
                let d: [[L; SPAN]; SPAN] = from_fn(|r| bt(runs.map(|at| L::load(rows[r].add(at)))));
                for j in 0..SPAN {
                    let col = bt(from_fn(|r| d[r][j]));
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
                for &(c0, g) in &k.groups {
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
                let mm = |i: usize, j: usize| L::load(m.add(((i * SPAN + j) * padded + co) * N));
                // Aᵀ M: per column j the four output rows
                let r: [[L; TILE]; SPAN] = from_fn(|j| at(from_fn(|i| mm(i, j))));
                let b = L::splat(k.bias[co]);
                for a in 0..TILE {
                    let y = at(from_fn(|j| r[j][a]));
                    for (x, mut y) in y.into_iter().enumerate() {
                        let to = phase[x] + t0;
                        y = y + b;
                        if let Some(res) = &io.res {
                            y = y + L::load(res[co][a].add(to));
                        }
                        if act == Act::LRelu {
                            y = y.lrelu();
                        }
                        y.keep(masks[x]).store(io.dst[co][a].add(to));
                    }
                }
            }
        }
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
    k: &Conv1,
    lay: RowLayout,
    src: &[Rows<TILE>],
    dst: &[RowsMut<TILE>],
    res: Option<Rows<TILE>>,
    act: Act,
) {
    let io = Io::new(lay, src, dst, res, (k.cin, k.cout));
    #[cfg(target_arch = "x86_64")]
    {
        if lanes::avx512() {
            // SAFETY: AVX-512F is present; the pointers are valid as the caller promised
            return unsafe { conv1_avx512(k, lay, &io, act) };
        }
        if super::simd::available() {
            // SAFETY: AVX2 and FMA are present
            return unsafe { conv1_avx2(k, lay, &io, act) };
        }
    }
    // SAFETY: as the caller promised
    unsafe { conv1_lanes::<Array>(k, lay, &io, act) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn conv1_avx512(k: &Conv1, lay: RowLayout, io: &Io<TILE>, act: Act) {
    unsafe { conv1_lanes::<lanes::Zmm>(k, lay, io, act) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv1_avx2(k: &Conv1, lay: RowLayout, io: &Io<TILE>, act: Act) {
    unsafe { conv1_lanes::<Array>(k, lay, io, act) }
}

#[inline(always)]
unsafe fn conv1_lanes<L: Lanes>(k: &Conv1, lay: RowLayout, io: &Io<TILE>, act: Act) {
    for a in 0..TILE {
        for chunk in 0..lay.chunks {
            let t0 = chunk * N;
            for p in 0..TILE {
                let (at, mask) = (lay.phase(p) + t0, lay.mask(chunk, p));
                for &(c0, g) in &k.groups {
                    let run = Pointwise {
                        k,
                        io,
                        a,
                        at,
                        mask,
                        c0,
                        act,
                    };
                    // SAFETY: as conv1's caller promised
                    unsafe {
                        match g {
                            4 => run.group::<L, 4>(),
                            8 => run.group::<L, 8>(),
                            12 => run.group::<L, 12>(),
                            _ => run.group::<L, 16>(),
                        }
                    }
                }
            }
        }
    }
}

/// One vector of pixels of one row and one group of output channels of a 1×1 conv.
struct Pointwise<'a> {
    k: &'a Conv1,
    io: &'a Io<TILE>,
    /// Row of the tile.
    a: usize,
    /// Index of the vector in each channel row.
    at: usize,
    mask: u16,
    c0: usize,
    act: Act,
}

impl Pointwise<'_> {
    #[inline(always)]
    unsafe fn group<L: Lanes, const G: usize>(&self) {
        let Self {
            k, io, a, at, c0, ..
        } = *self;
        let mut acc: [L; G] = from_fn(|g| L::splat(k.bias.get(c0 + g).copied().unwrap_or(0.0)));
        // SAFETY: as conv1's caller promised; the weights hold cin rows of `padded`
        unsafe {
            if let Some(res) = &io.res {
                for r in &res[c0..k.cout.min(c0 + G)] {
                    prefetch(r[a].wrapping_add(at + N));
                }
            }
            for ci in 0..k.cin {
                prefetch(io.src[ci][a].wrapping_add(at + N));
                let x = L::load(io.src[ci][a].add(at));
                let w = k.w.as_ptr().add(ci * k.padded + c0);
                for (g, acc) in acc.iter_mut().enumerate() {
                    *acc = acc.mul_add(L::splat(*w.add(g)), x);
                }
            }
            for (g, mut y) in acc.into_iter().enumerate() {
                let co = c0 + g;
                if co >= k.cout {
                    break;
                }
                if let Some(res) = &io.res {
                    y = y + L::load(res[co][a].add(at));
                }
                if self.act == Act::LRelu {
                    y = y.lrelu();
                }
                y.keep(self.mask).store(io.dst[co][a].add(at));
            }
        }
    }
}
