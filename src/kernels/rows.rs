//! What the row kernels ([`rowconv`](super::rowconv)) share: the row layout in four column
//! phases, the row pointers a conv call takes and the per-channel table it builds from them,
//! and the instruction set a call runs on.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::lanes::{self, N};

/// The most channels a conv here reads or writes (IMDN_RTC ×4's upsampler writes 48).
pub const MAX_CHANNELS: usize = 64;

/// Output rows (and columns) of one tile: the rows a conv writes per call.
pub const TILE: usize = 4;
/// Input rows of one tile.
pub const SPAN: usize = TILE + 2;
/// Transform positions of a tile.
pub const POS: usize = SPAN * SPAN;

/// Where a row's columns lie: column x at `phase(x % 4) + x / 4`; each phase is a run of
/// `slots` values with one zero slot before and after (column −1 is phase 3's slot −1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowLayout {
    pub w: usize,
    /// Vectors of 16 tiles per row.
    pub(super) chunks: usize,
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
    pub(super) fn phase(&self, p: usize) -> usize {
        N + p * (self.slots() + N)
    }

    /// Vectors of tiles per row: a conv call computes any range of them.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Columns of the row that chunks `c` cover.
    pub fn columns(&self, c: Range<usize>) -> Range<usize> {
        (c.start * N * TILE).min(self.w)..(c.end * N * TILE).min(self.w)
    }

    /// Index of column `x`.
    pub fn index(&self, x: usize) -> usize {
        self.phase(x % TILE) + x / TILE
    }

    /// The last vector of tiles, when it holds eight tiles or fewer: the AVX-512 kernels run
    /// it on half registers.
    pub(super) fn half_vector(&self) -> Option<usize> {
        let last = self.chunks - 1;
        (self.w.div_ceil(TILE) <= last * N + N / 2).then_some(last)
    }

    /// What computing a row costs on `isa`, in half vectors of tiles.
    pub fn cost(&self, isa: Isa) -> usize {
        2 * self.chunks - usize::from(isa == Isa::Avx512 && self.half_vector().is_some())
    }

    /// Columns `cols` of the channel rows `src` (one per `j`), interleaved into `dst`:
    /// `dst[(x − cols.start)·S + j]` = column x of `src[j]` (the pixel shuffle's order), on
    /// `isa` at most.
    pub fn interleave_columns<const S: usize>(
        &self,
        isa: Isa,
        cols: Range<usize>,
        src: [&[f32]; S],
        dst: &mut [f32],
    ) {
        assert!(cols.end <= self.w && dst.len() == cols.len() * S);
        let one = |x: usize, dst: &mut [f32]| {
            let o = &mut dst[(x - cols.start) * S..][..S];
            for (o, s) in o.iter_mut().zip(src) {
                *o = s[self.index(x)];
            }
        };
        let first = cols.start.next_multiple_of(TILE).min(cols.end);
        for x in cols.start..first {
            one(x, dst);
        }
        let (t0, tiles) = (first / TILE, (cols.end - first) / TILE);
        let ph: [usize; TILE] = std::array::from_fn(|p| self.phase(p));
        for s in src {
            assert!(ph[TILE - 1] + t0 + tiles <= s.len());
        }
        let whole = &mut dst[(first - cols.start) * S..][..tiles * TILE * S];
        // whole vectors of tiles by permutes where they run, then tile by tile
        let done = match S == 2 && isa.up_to() == Isa::Avx512 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F runs; the slots lie in the rows (asserted above)
            true => unsafe { interleave2_avx512([src[0], src[1]], ph, (t0, tiles), whole) },
            _ => 0,
        };
        for (k, o) in whole.chunks_exact_mut(TILE * S).enumerate().skip(done) {
            for (o, p) in o.chunks_exact_mut(S).zip(ph) {
                for j in 0..S {
                    // SAFETY: phase p's slot t lies in every row (asserted above)
                    o[j] = unsafe { *src[j].get_unchecked(p + t0 + k) };
                }
            }
        }
        for x in first + TILE * tiles..cols.end {
            one(x, dst);
        }
    }

    /// `src`, the values of columns `cols`, into their places in the channel row `dst`.
    pub fn scatter_columns(&self, cols: Range<usize>, src: &[f32], dst: &mut [f32]) {
        assert!(cols.end <= self.w && src.len() == cols.len());
        let mut x = cols.start;
        let mut vals = src.iter();
        while x < cols.end && !x.is_multiple_of(TILE) {
            dst[self.index(x)] = *vals.next().expect("sized");
            x += 1;
        }
        let (t0, tiles) = (x / TILE, (cols.end - x) / TILE);
        let ph: [usize; TILE] = std::array::from_fn(|p| self.phase(p));
        assert!(ph[TILE - 1] + t0 + tiles <= dst.len());
        let whole = &src[x - cols.start..][..TILE * tiles];
        for (t, v) in (t0..).zip(whole.chunks_exact(TILE)) {
            for (p, &v) in ph.iter().zip(v) {
                // SAFETY: phase p's slot t lies in the row (asserted above)
                unsafe { *dst.get_unchecked_mut(p + t) = v };
            }
        }
        x += TILE * tiles;
        for v in &src[x - cols.start..] {
            dst[self.index(x)] = *v;
            x += 1;
        }
    }

    /// The lanes of chunk `c` of phase `p` that hold columns of the row.
    pub(super) fn mask(&self, c: usize, p: usize) -> u16 {
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

/// The instruction sets the kernels are compiled for, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The widest this CPU runs that is no wider than `self`.
    pub fn up_to(self) -> Self {
        if self <= Isa::Avx512 && lanes::avx512() {
            Isa::Avx512
        } else if self <= Isa::Avx2 && super::simd::available() {
            Isa::Avx2
        } else {
            Isa::Portable
        }
    }

    /// Those this CPU runs, widest first.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Self> {
        let mut out: Vec<Self> = [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .map(Isa::up_to)
            .to_vec();
        out.dedup();
        out
    }
}

impl std::str::FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "avx512" => Ok(Isa::Avx512),
            "avx2" => Ok(Isa::Avx2),
            "portable" => Ok(Isa::Portable),
            _ => Err(format!("{s}: one of avx512, avx2, portable")),
        }
    }
}

/// Output channels in groups of accumulators, `most` at a time (a multiple of 4), over weights
/// padded to a multiple of 4 channels: groups of 4, 8, 12 or 16.
pub(super) fn groups(padded: usize, most: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..padded)
        .step_by(most)
        .map(move |c0| (c0, (padded - c0).min(most)))
}

/// One channel pointer per channel of `sets`, each set's channels a stride apart, into the
/// first entries of `table`; returns how many.
fn channel_table<T: Copy, const R: usize>(
    sets: impl Iterator<Item = ([T; R], usize)>,
    stride: usize,
    advance: impl Fn(T, usize) -> T,
    table: &mut [MaybeUninit<[T; R]>; MAX_CHANNELS],
) -> usize {
    let mut n = 0;
    for (rows, channels) in sets {
        for c in 0..channels {
            table[n].write(rows.map(|r| advance(r, c * stride)));
            n += 1;
        }
    }
    n
}

/// The first `n` entries of a table `channel_table` filled.
///
/// # Safety
/// `channel_table` must have written at least `n` entries.
unsafe fn written<T>(table: &[MaybeUninit<T>], n: usize) -> &[T] {
    // SAFETY: the first n entries are initialised; MaybeUninit<T> has T's layout
    unsafe { std::slice::from_raw_parts(table.as_ptr().cast(), n) }
}

/// What one call of a conv reads and writes, per channel (left uninitialised past the
/// channels used: this is built for every call).
pub(super) struct Io<const R: usize> {
    src: [MaybeUninit<[*const f32; R]>; MAX_CHANNELS],
    dst: [MaybeUninit<[*mut f32; TILE]>; MAX_CHANNELS],
    res: [MaybeUninit<[*const f32; TILE]>; MAX_CHANNELS],
    cin: usize,
    cout: usize,
    with_res: bool,
}

impl<const R: usize> Io<R> {
    pub(super) fn new(
        lay: RowLayout,
        src: &[Rows<R>],
        dst: &[RowsMut<TILE>],
        res: Option<Rows<TILE>>,
        (cin, cout): (usize, usize),
    ) -> Self {
        let stride = lay.stride();
        let mut io = Self {
            src: [const { MaybeUninit::uninit() }; MAX_CHANNELS],
            dst: [const { MaybeUninit::uninit() }; MAX_CHANNELS],
            res: [const { MaybeUninit::uninit() }; MAX_CHANNELS],
            cin,
            cout,
            with_res: res.is_some(),
        };
        let add = |p: *const f32, o: usize| p.wrapping_add(o);
        let sets = src.iter().map(|s| (s.rows, s.channels));
        assert_eq!(
            channel_table(sets, stride, add, &mut io.src),
            cin,
            "input channels"
        );
        let sets = dst.iter().map(|d| (d.rows, d.channels));
        let add_mut = |p: *mut f32, o: usize| p.wrapping_add(o);
        assert_eq!(
            channel_table(sets, stride, add_mut, &mut io.dst),
            cout,
            "output channels"
        );
        if let Some(r) = res {
            assert_eq!(r.channels, cout, "residual channels");
            channel_table(std::iter::once((r.rows, cout)), stride, add, &mut io.res);
        }
        io
    }

    /// Each input channel's rows.
    pub(super) fn src(&self) -> &[[*const f32; R]] {
        // SAFETY: `new` wrote cin entries
        unsafe { written(&self.src, self.cin) }
    }

    /// Each output channel's rows.
    pub(super) fn dst(&self) -> &[[*mut f32; TILE]] {
        // SAFETY: `new` wrote cout entries
        unsafe { written(&self.dst, self.cout) }
    }

    /// Each output channel's residual rows, if any.
    pub(super) fn res(&self) -> Option<&[[*const f32; TILE]]> {
        // SAFETY: `new` wrote cout entries when there is a residual
        self.with_res
            .then(|| unsafe { written(&self.res, self.cout) })
    }
}

/// [`RowLayout::interleave_columns`] of two rows (the ×2 shuffle) for whole vectors of 16
/// tiles from tile `t0` (of `tiles`) into `out` (eight floats a tile): per phase, each tile's
/// pair of values, then per tile its four phases' pairs, by permutes. Returns the tiles done.
///
/// # Safety
/// AVX-512F must run; phase p's slots t0 … t0 + tiles must lie in both rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn interleave2_avx512(
    src: [&[f32]; 2],
    ph: [usize; TILE],
    (t0, tiles): (usize, usize),
    out: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    let groups = tiles / N;
    assert!(out.len() >= groups * N * TILE * 2);
    // the two rows' values of tiles 0..8 (8..16) of a phase, paired
    let pair = [
        _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
    ];
    // pairs (64 bits) of two phases, tiles 0..4 (4..8), interleaved
    let two_phases = [
        _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11),
        _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15),
    ];
    // the four phases' pairs of two tiles
    let two_tiles = [
        _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11),
        _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15),
    ];
    for g in 0..groups {
        let t = t0 + g * N;
        // SAFETY: the slots lie in the rows, as the caller promised
        let pairs: [[__m512d; 2]; TILE] = std::array::from_fn(|p| unsafe {
            let a = _mm512_loadu_ps(src[0].as_ptr().add(ph[p] + t));
            let b = _mm512_loadu_ps(src[1].as_ptr().add(ph[p] + t));
            pair.map(|i| _mm512_castps_pd(_mm512_permutex2var_ps(a, i, b)))
        });
        for half in 0..2 {
            let [p0, p1, p2, p3] = pairs.map(|p| p[half]);
            let p01 = two_phases.map(|i| _mm512_permutex2var_pd(p0, i, p1));
            let p23 = two_phases.map(|i| _mm512_permutex2var_pd(p2, i, p3));
            for (q, (p01, p23)) in p01.into_iter().zip(p23).enumerate() {
                for (r, i) in two_tiles.into_iter().enumerate() {
                    let tile = g * N + 8 * half + 4 * q + 2 * r;
                    let v = _mm512_permutex2var_pd(p01, i, p23);
                    // SAFETY: the output holds the group's tiles (asserted)
                    unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(tile * TILE * 2).cast(), v) };
                }
            }
        }
    }
    groups * N
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column range of a few widths: the tile loops equal column-by-column indexing.
    #[test]
    fn columns_move_to_and_from_their_places_as_index_says() {
        for w in [1, 3, 4, 9, 64, 70, 131, 300] {
            let lay = RowLayout::new(w);
            let rows: [Vec<f32>; 3] =
                std::array::from_fn(|j| (0..lay.stride()).map(|i| (i * 3 + j) as f32).collect());
            for start in 0..w.min(9) {
                for end in (start..=w).rev().take(9) {
                    let cols = start..end;
                    let mut got = vec![-1.0; cols.len() * 3];
                    let three = [&rows[0][..], &rows[1], &rows[2]];
                    lay.interleave_columns(Isa::Avx512, cols.clone(), three, &mut got);
                    let want: Vec<f32> = cols
                        .clone()
                        .flat_map(|x| rows.iter().map(move |r| r[lay.index(x)]))
                        .collect();
                    assert_eq!(got, want, "w {w} {cols:?}");
                    // two rows (the ×2 shuffle, by permutes on AVX-512)
                    let want: Vec<f32> = cols
                        .clone()
                        .flat_map(|x| rows[..2].iter().map(move |r| r[lay.index(x)]))
                        .collect();
                    for isa in Isa::available() {
                        let mut got = vec![-1.0; cols.len() * 2];
                        lay.interleave_columns(isa, cols.clone(), [&rows[0], &rows[1]], &mut got);
                        assert_eq!(got, want, "w {w} {cols:?}, two rows on {isa:?}");
                    }
                    let vals: Vec<f32> = cols.clone().map(|x| x as f32 + 0.5).collect();
                    let mut row = vec![-1.0; lay.stride()];
                    lay.scatter_columns(cols.clone(), &vals, &mut row);
                    for x in 0..w {
                        let want = if cols.contains(&x) {
                            x as f32 + 0.5
                        } else {
                            -1.0
                        };
                        assert_eq!(row[lay.index(x)], want, "w {w} {cols:?} column {x}");
                    }
                    assert_eq!(row.iter().filter(|&&v| v != -1.0).count(), cols.len());
                }
            }
        }
    }
}
