//! MATLAB-style bicubic `imresize`: the per-axis weight tables, the two passes in MATLAB's
//! order, and a [`Resizer`] that keeps its tables and buffers between frames.

use super::check_len;
use crate::{Error, Result};

/// Keys' cubic kernel with a = -0.5, written term by term as MATLAB's `cubic` so the weights
/// match to the last bit.
fn cubic(x: f64) -> f64 {
    let ax = x.abs();
    let ax2 = ax * ax;
    let ax3 = ax2 * ax;
    if ax <= 1.0 {
        1.5 * ax3 - 2.5 * ax2 + 1.0
    } else if ax <= 2.0 {
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    } else {
        0.0
    }
}

/// MATLAB's `symmetric` padding of a 0-based index into `0..len` (… 1 0 | 0 1 … n-1 | n-1 …).
/// `len` must be non-zero.
pub(crate) fn mirror_index(i: i64, len: usize) -> usize {
    let n = len as i64;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Largest `out_len * taps` a [`ResizeTable`] accepts (about 1 GiB of indices and weights).
const MAX_TABLE_ENTRIES: usize = 1 << 26;

/// Precomputed weights of a 1-D MATLAB bicubic resize from `in_len` to `out_len` samples.
///
/// Every output sample is `sum(weights[k] * input[indices[k]])` over `taps()` entries; build it
/// once per frame size and reuse it for every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ResizeTable {
    in_len: usize,
    out_len: usize,
    scale: f64,
    taps: usize,
    /// `out_len * taps` 0-based input indices, already mirrored into range.
    indices: Vec<usize>,
    /// `out_len * taps` weights, each row summing to 1.
    weights: Vec<f64>,
}

impl ResizeTable {
    /// Table for resizing `in_len` samples to `out_len`, with scale `out_len / in_len` (as MATLAB
    /// does when given an output size).
    pub fn new(in_len: usize, out_len: usize) -> Result<Self> {
        Self::with_scale(in_len, out_len, out_len as f64 / in_len as f64)
    }

    /// Table with an explicit scale factor (MATLAB's `imresize(img, scale)`), e.g. `1.0 / 3.0`.
    /// The output length is still `out_len`; MATLAB's would be `ceil(in_len * scale)`.
    pub fn with_scale(in_len: usize, out_len: usize, scale: f64) -> Result<Self> {
        if in_len == 0 || out_len == 0 {
            return Err(Error::InvalidInput(format!(
                "resize from {in_len} to {out_len} samples"
            )));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidInput(format!("resize scale {scale}")));
        }
        // Downscaling stretches the kernel by 1/scale: that is MATLAB's antialiasing.
        let kernel_width = if scale < 1.0 { 4.0 / scale } else { 4.0 };
        let p = (kernel_width.ceil() as usize).saturating_add(2);
        // Absurd sizes or scales would need gigabytes of taps: refuse instead of aborting.
        if p.checked_mul(out_len).is_none_or(|n| n > MAX_TABLE_ENTRIES) {
            return Err(Error::InvalidInput(format!(
                "resize from {in_len} to {out_len} samples at scale {scale} needs too many taps"
            )));
        }
        let (indices, weights) = Self::raw_rows(out_len, scale, kernel_width, p);
        let keep = Self::nonzero_columns(&weights, p);
        if keep.is_empty() {
            return Err(Error::InvalidInput(format!(
                "resize scale {scale}: all weights are zero"
            )));
        }
        let mut table = ResizeTable {
            in_len,
            out_len,
            scale,
            taps: keep.len(),
            indices: Vec::with_capacity(out_len * keep.len()),
            weights: Vec::with_capacity(out_len * keep.len()),
        };
        for row in 0..out_len {
            for &k in &keep {
                table
                    .indices
                    .push(mirror_index(indices[row * p + k], in_len));
                table.weights.push(weights[row * p + k]);
            }
        }
        Ok(table)
    }

    /// MATLAB's `contributions`: 1-based sample positions, `p` candidate inputs per output,
    /// normalised weights. Returns 0-based unmirrored indices and weights, `out_len * p` each.
    fn raw_rows(out_len: usize, scale: f64, kernel_width: f64, p: usize) -> (Vec<i64>, Vec<f64>) {
        let mut indices = Vec::with_capacity(out_len * p);
        let mut weights = Vec::with_capacity(out_len * p);
        for x in 1..=out_len {
            let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
            let left = (u - kernel_width / 2.0).floor();
            let start = weights.len();
            for k in 0..p {
                let idx = left + k as f64;
                let d = u - idx;
                let w = if scale < 1.0 {
                    scale * cubic(scale * d)
                } else {
                    cubic(d)
                };
                indices.push(idx as i64 - 1);
                weights.push(w);
            }
            let row = &mut weights[start..];
            let sum: f64 = row.iter().sum();
            row.iter_mut().for_each(|w| *w /= sum);
        }
        (indices, weights)
    }

    /// Tap columns that carry a non-zero weight for some output (MATLAB drops the others).
    fn nonzero_columns(weights: &[f64], p: usize) -> Vec<usize> {
        (0..p)
            .filter(|&k| weights.chunks_exact(p).any(|row| row[k] != 0.0))
            .collect()
    }

    pub fn in_len(&self) -> usize {
        self.in_len
    }

    pub fn out_len(&self) -> usize {
        self.out_len
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Number of input samples contributing to each output sample.
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// Input indices (0-based, in range) and weights of output sample `i`; `None` past the end.
    pub fn row(&self, i: usize) -> Option<(&[usize], &[f64])> {
        let r = i.checked_mul(self.taps)?..i.checked_add(1)?.checked_mul(self.taps)?;
        Some((self.indices.get(r.clone())?, self.weights.get(r)?))
    }

    /// `(indices, weights)` of every output sample in order.
    fn rows(&self) -> impl Iterator<Item = (&[usize], &[f64])> {
        // `taps >= 1`: `with_scale` refuses tables without a non-zero weight.
        self.indices
            .chunks_exact(self.taps)
            .zip(self.weights.chunks_exact(self.taps))
    }
}

/// MATLAB's rounding of a resized uint8 sample: clip, then round half up.
#[inline]
fn round_u8(v: f64) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5).floor() as u8
}

/// Resizes along axis 0 (rows): `src` is `rows` rows of `row_len` values each.
/// Sums in tap order into a row accumulator; the result has `table.out_len()` rows.
fn resize_rows<T: Copy + Into<f64>>(src: &[T], row_len: usize, table: &ResizeTable) -> Vec<f64> {
    let mut out = Vec::new();
    resize_rows_into(src, row_len, table, &mut out);
    out
}

/// [`resize_rows`] into `out` (resized to fit).
fn resize_rows_into<T: Copy + Into<f64>>(
    src: &[T],
    row_len: usize,
    table: &ResizeTable,
    out: &mut Vec<f64>,
) {
    out.clear();
    out.resize(table.out_len * row_len, 0.0);
    for (acc, (idx, wts)) in out.chunks_exact_mut(row_len.max(1)).zip(table.rows()) {
        for (&i, &w) in idx.iter().zip(wts) {
            let line = &src[i * row_len..(i + 1) * row_len];
            for (a, &v) in acc.iter_mut().zip(line) {
                *a += w * v.into();
            }
        }
    }
}

/// Resizes along axis 1 (columns) of `rows` rows of `in_len * channels` interleaved values.
fn resize_cols<T: Copy + Into<f64>>(
    src: &[T],
    rows: usize,
    channels: usize,
    table: &ResizeTable,
) -> Vec<f64> {
    let mut out = Vec::new();
    resize_cols_into(src, rows, channels, table, &mut out);
    out
}

/// [`resize_cols`] into `out` (resized to fit).
fn resize_cols_into<T: Copy + Into<f64>>(
    src: &[T],
    rows: usize,
    channels: usize,
    table: &ResizeTable,
    out: &mut Vec<f64>,
) {
    let (in_row, out_row) = (table.in_len * channels, table.out_len * channels);
    out.clear();
    out.resize(rows * out_row, 0.0);
    for (line, dst) in src.chunks_exact(in_row).zip(out.chunks_exact_mut(out_row)) {
        for (px, (idx, wts)) in dst.chunks_exact_mut(channels).zip(table.rows()) {
            for (c, a) in px.iter_mut().enumerate() {
                for (&i, &w) in idx.iter().zip(wts) {
                    *a += w * line[i * channels + c].into();
                }
            }
        }
    }
}

/// MATLAB resizes the dimension with the smaller scale first (height first on a tie, which is
/// the Set5 case); the order matters for uint8 because of the rounding between passes.
fn height_first(rows: &ResizeTable, cols: &ResizeTable) -> bool {
    rows.scale <= cols.scale
}

fn check_tables(width: usize, height: usize, rows: &ResizeTable, cols: &ResizeTable) -> Result<()> {
    if rows.in_len != height || cols.in_len != width {
        return Err(Error::InvalidInput(format!(
            "resize tables are for {}x{} input, image is {width}x{height}",
            cols.in_len, rows.in_len
        )));
    }
    Ok(())
}

/// Bicubic resize of an interleaved u8 image with precomputed tables (`rows`: height,
/// `cols`: width), rounding to u8 after each pass as MATLAB does for uint8 images.
pub fn imresize_u8_with(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    rows: &ResizeTable,
    cols: &ResizeTable,
) -> Result<Vec<u8>> {
    check_tables(width, height, rows, cols)?;
    if channels == 0 {
        return Err(Error::InvalidInput("imresize_u8: 0 channels".into()));
    }
    check_len(src.len(), width, height, channels, "imresize_u8")?;
    let src = &src[..width * height * channels];
    let to_u8 = |v: Vec<f64>| -> Vec<u8> { v.into_iter().map(round_u8).collect() };
    let out = if height_first(rows, cols) {
        let mid = to_u8(resize_rows(src, width * channels, rows));
        resize_cols(&mid, rows.out_len, channels, cols)
    } else {
        let mid = to_u8(resize_cols(src, height, channels, cols));
        resize_rows(&mid, cols.out_len * channels, rows)
    };
    Ok(to_u8(out))
}

/// MATLAB `imresize(img, [out_height out_width], 'bicubic')` of an interleaved u8 image; the
/// scale per axis is `out / in` (so `in / s` gives exactly `1 / s`).
///
/// Panic-free contract: returns an empty `Vec` if any size is 0 or `src` is shorter than
/// `width * height * channels`. [`try_imresize_u8`] reports why instead.
pub fn imresize_u8(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out_width: usize,
    out_height: usize,
) -> Vec<u8> {
    try_imresize_u8(src, width, height, channels, out_width, out_height).unwrap_or_default()
}

/// [`imresize_u8`] that reports invalid sizes.
pub fn try_imresize_u8(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out_width: usize,
    out_height: usize,
) -> Result<Vec<u8>> {
    let rows = ResizeTable::new(height, out_height)?;
    let cols = ResizeTable::new(width, out_width)?;
    imresize_u8_with(src, width, height, channels, &rows, &cols)
}

/// Bicubic resize of `planes` planar f32 planes with precomputed tables, in f64 throughout with
/// no rounding between passes.
pub fn imresize_f32_chw_with(
    src: &[f32],
    width: usize,
    height: usize,
    planes: usize,
    rows: &ResizeTable,
    cols: &ResizeTable,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let mut scratch = ResizeScratch::default();
    imresize_f32_chw_into(
        src,
        (width, height),
        planes,
        (rows, cols),
        &mut scratch,
        &mut out,
    )?;
    Ok(out)
}

/// The intermediate rows of [`imresize_f32_chw_into`], kept between frames.
#[derive(Default, Debug)]
pub struct ResizeScratch {
    mid: Vec<f64>,
    res: Vec<f64>,
}

/// [`imresize_f32_chw_with`] into `out` (resized to fit), with its intermediates in `scratch`:
/// no allocation once the buffers have grown to the frame size.
pub fn imresize_f32_chw_into(
    src: &[f32],
    (width, height): (usize, usize),
    planes: usize,
    (rows, cols): (&ResizeTable, &ResizeTable),
    scratch: &mut ResizeScratch,
    out: &mut Vec<f32>,
) -> Result<()> {
    check_tables(width, height, rows, cols)?;
    check_len(src.len(), width, height, planes, "imresize_f32_chw")?;
    let (ow, oh) = (cols.out_len, rows.out_len);
    out.clear();
    out.reserve(ow * oh * planes);
    let ResizeScratch { mid, res } = scratch;
    for plane in src.chunks_exact(width * height).take(planes) {
        if height_first(rows, cols) {
            resize_rows_into(plane, width, rows, mid);
            resize_cols_into(mid, oh, 1, cols, res);
        } else {
            resize_cols_into(plane, height, 1, cols, mid);
            resize_rows_into(mid, ow, rows, res);
        }
        out.extend(res.iter().map(|&v| v as f32));
    }
    Ok(())
}

/// Bicubic resize of planar f32 planes (e.g. a CHW frame) to `out_width × out_height`.
///
/// Panic-free contract: returns an empty `Vec` if any size is 0 or `src` is shorter than
/// `width * height * planes`. [`try_imresize_f32_chw`] reports why instead.
pub fn imresize_f32_chw(
    src: &[f32],
    width: usize,
    height: usize,
    planes: usize,
    out_width: usize,
    out_height: usize,
) -> Vec<f32> {
    try_imresize_f32_chw(src, width, height, planes, out_width, out_height).unwrap_or_default()
}

/// [`imresize_f32_chw`] that reports invalid sizes.
pub fn try_imresize_f32_chw(
    src: &[f32],
    width: usize,
    height: usize,
    planes: usize,
    out_width: usize,
    out_height: usize,
) -> Result<Vec<f32>> {
    let rows = ResizeTable::new(height, out_height)?;
    let cols = ResizeTable::new(width, out_width)?;
    imresize_f32_chw_with(src, width, height, planes, &rows, &cols)
}

/// (input width, input height, output width, output height).
type Sizes = (usize, usize, usize, usize);

/// A resize's (from, to) sizes, each (width, height).
pub type Span = ((usize, usize), (usize, usize));

/// A bicubic resize between two fixed sizes, its tables kept while the sizes hold.
#[derive(Default)]
pub struct Resizer {
    tables: Option<(Sizes, ResizeTable, ResizeTable)>,
    scratch: ResizeScratch,
}

impl Resizer {
    /// Resizes planar RGB `input` from `w`×`h` to `ow`×`oh` into `out`.
    pub fn resize_into(&mut self, input: &[f32], span: Span, out: &mut Vec<f32>) -> Result<()> {
        let ((w, h), (ow, oh)) = span;
        let key = (w, h, ow, oh);
        let (_, rows, cols) = match self.tables.take() {
            Some(kept) if kept.0 == key => self.tables.insert(kept),
            _ => self
                .tables
                .insert((key, ResizeTable::new(h, oh)?, ResizeTable::new(w, ow)?)),
        };
        imresize_f32_chw_into(input, (w, h), 3, (rows, cols), &mut self.scratch, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizer_keeps_flat_planes_and_reuses_tables() {
        let mut r = Resizer::default();
        let flat = vec![0.25f32; 3 * 4 * 3];
        let mut out = Vec::new();
        for _ in 0..2 {
            r.resize_into(&flat, ((4, 3), (10, 7)), &mut out).unwrap();
            assert_eq!(out.len(), 3 * 10 * 7);
            assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-6));
        }
        assert!(
            r.tables
                .as_ref()
                .is_some_and(|(k, _, _)| *k == (4, 3, 10, 7))
        );
    }

    #[test]
    fn resizer_reusing_its_buffers_gives_what_a_fresh_resize_gives() {
        let mut r = Resizer::default();
        let mut out = Vec::new();
        let frame = |w: usize, h: usize| -> Vec<f32> {
            (0..3 * w * h)
                .map(|i| ((i * 37) % 101) as f32 / 100.0)
                .collect()
        };
        // up, down, then up again through the same scratch and output buffers
        for ((w, h), (ow, oh)) in [((5, 4), (11, 9)), ((9, 7), (4, 3)), ((5, 4), (11, 9))] {
            let input = frame(w, h);
            r.resize_into(&input, ((w, h), (ow, oh)), &mut out).unwrap();
            let fresh = imresize_f32_chw(&input, w, h, 3, ow, oh);
            assert_eq!(out, fresh, "{w}×{h} → {ow}×{oh}");
        }
    }
}
