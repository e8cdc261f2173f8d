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
    /// `dst[(x − cols.start)·S + j]` = column x of `src[j]` (the pixel shuffle's order).
    pub fn interleave_columns<const S: usize>(
        &self,
        cols: Range<usize>,
        src: [&[f32]; S],
        dst: &mut [f32],
    ) {
        assert!(cols.end <= self.w && dst.len() == cols.len() * S);
        let mut x = cols.start;
        let mut out = dst.chunks_exact_mut(S);
        let one = |x: usize, o: &mut [f32]| {
            for (o, s) in o.iter_mut().zip(src) {
                *o = s[self.index(x)];
            }
        };
        while x < cols.end && !x.is_multiple_of(TILE) {
            one(x, out.next().expect("sized"));
            x += 1;
        }
        let (t0, tiles) = (x / TILE, (cols.end - x) / TILE);
        let ph: [usize; TILE] = std::array::from_fn(|p| self.phase(p));
        for s in src {
            assert!(ph[TILE - 1] + t0 + tiles <= s.len());
        }
        for t in t0..t0 + tiles {
            for p in ph {
                let o = out.next().expect("sized");
                for j in 0..S {
                    // SAFETY: phase p's slot t lies in every row (asserted above)
                    o[j] = unsafe { *src[j].get_unchecked(p + t) };
                }
            }
        }
        x += TILE * tiles;
        while x < cols.end {
            one(x, out.next().expect("sized"));
            x += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column range of a few widths: the tile loops equal column-by-column indexing.
    #[test]
    fn columns_move_to_and_from_their_places_as_index_says() {
        for w in [1, 3, 4, 9, 64, 70, 131] {
            let lay = RowLayout::new(w);
            let rows: [Vec<f32>; 3] =
                std::array::from_fn(|j| (0..lay.stride()).map(|i| (i * 3 + j) as f32).collect());
            for start in 0..w.min(9) {
                for end in (start..=w).rev().take(9) {
                    let cols = start..end;
                    let mut got = vec![-1.0; cols.len() * 3];
                    lay.interleave_columns(cols.clone(), [&rows[0], &rows[1], &rows[2]], &mut got);
                    let want: Vec<f32> = cols
                        .clone()
                        .flat_map(|x| rows.iter().map(move |r| r[lay.index(x)]))
                        .collect();
                    assert_eq!(got, want, "w {w} {cols:?}");
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
