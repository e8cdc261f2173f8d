//! The Y'CbCr / gray path: layouts, Y'CbCr ↔ R'G'B' constants, sample access, reader, writer.

use gst_video::prelude::*;
use gst_video::{VideoChromaSite, VideoColorMatrix, VideoColorRange, VideoInfo};
use imdn::cuda::args::{YuvComp, YuvInArgs, YuvOutArgs};

use super::{
    ChromaKey, Frame, FrameMut, Scratch, Tap, bilinear_axis, plane_mut, plane_of, reuse, row,
    row_mut,
};

/// Where one Y'CbCr component's samples are: sample `i` of a row starts at byte
/// `offset + i × step` of that row of `plane`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Comp {
    pub(super) plane: usize,
    pub(super) offset: usize,
    pub(super) step: usize,
}

impl Comp {
    /// Bytes a row of `n` samples spans.
    pub(super) fn row_len(&self, n: usize, bytes: usize) -> usize {
        self.offset + (n.max(1) - 1) * self.step + bytes
    }
}

/// A Y'CbCr or gray format's layout, from GStreamer's format info.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct YuvLayout {
    /// Y, U, V (U and V unused when `gray`).
    pub(super) comps: [Comp; 3],
    pub(super) gray: bool,
    /// Bits per sample (8 or 10).
    pub(super) depth: u32,
    /// 16-bit little-endian samples (the value in bits `shift..shift + depth`), else bytes.
    pub(super) wide: bool,
    pub(super) shift: u32,
    /// log2 of the chroma subsampling, horizontally and vertically.
    pub(super) sub: (u32, u32),
}

impl YuvLayout {
    pub(super) fn from_info(finfo: &gst_video::VideoFormatInfo) -> Result<Self, String> {
        let unsupported = || format!("unsupported layout of {:?}", finfo.format());
        let n: usize = if finfo.is_gray() { 1 } else { 3 };
        if (finfo.n_components() as usize) < n {
            return Err(unsupported());
        }
        let (depth, shift, bits) = (finfo.depth()[0], finfo.shift()[0], finfo.bits());
        let wide = bits > 8;
        if !(8..=16).contains(&depth)
            || bits > 16
            || (wide && !finfo.is_le())
            || shift + depth > bits.max(8)
        {
            return Err(unsupported());
        }
        let mut comps = [Comp {
            plane: 0,
            offset: 0,
            step: 1,
        }; 3];
        for (c, comp) in comps.iter_mut().enumerate().take(n) {
            if finfo.depth()[c] != depth || finfo.shift()[c] != shift {
                return Err(unsupported());
            }
            let mut offset = finfo.poffset()[c] as usize;
            // 16-bit samples start at even bytes: GStreamer 1.22 gives P010_10LE's V offset
            // as 1 (a count of samples, where the pack functions use byte 2)
            if wide && offset % 2 == 1 {
                offset *= 2;
            }
            *comp = Comp {
                plane: finfo.plane()[c] as usize,
                offset,
                step: usize::try_from(finfo.pixel_stride()[c]).map_err(|_| unsupported())?,
            };
        }
        let sub = if n == 3 {
            let (ws, hs) = (finfo.w_sub(), finfo.h_sub());
            if ws[0] != 0
                || hs[0] != 0
                || ws[1] != ws[2]
                || hs[1] != hs[2]
                || ws[1] > 1
                || hs[1] > 1
            {
                return Err(unsupported());
            }
            (ws[1], hs[1])
        } else {
            (0, 0)
        };
        Ok(YuvLayout {
            comps,
            gray: n == 1,
            depth,
            wide,
            shift,
            sub,
        })
    }

    pub(super) fn bytes(&self) -> usize {
        if self.wide { 2 } else { 1 }
    }

    pub(super) fn mask(&self) -> u16 {
        ((1u32 << self.depth) - 1) as u16
    }

    /// Chroma samples per row and rows of chroma for a `w`×`h` frame.
    pub(super) fn chroma_size(&self, w: usize, h: usize) -> (usize, usize) {
        (w.div_ceil(1 << self.sub.0), h.div_ceil(1 << self.sub.1))
    }

    /// Luma samples a row of a `w`-wide frame holds: `w`, but a packed 4:2:2 row holds two
    /// for each chroma pair, also past an odd width (the last pixel's luma repeated there).
    pub(super) fn luma_per_row(&self, w: usize) -> usize {
        match !self.gray && self.comps[1].plane == self.comps[0].plane {
            true => self.chroma_size(w, 1).0 << self.sub.0,
            false => w,
        }
    }
}
/// Y'CbCr ↔ R'G'B' constants for samples of one depth: codes on one side, [0, 1] R'G'B' and
/// normalised luma/chroma on the other.
#[derive(Clone, Copy, Debug)]
pub(super) struct Yuv {
    kr: f32,
    kb: f32,
    y_off: f32,
    y_scale: f32,
    c_off: f32,
    c_scale: f32,
    /// The largest code, 2^depth − 1.
    max: f32,
}

impl Yuv {
    /// Limited range: Y 16·2^(d−8)..235·2^(d−8), chroma centred at 2^(d−1) over 224·2^(d−8);
    /// full range: 0..2^d − 1 for both (GStreamer's `gst_video_color_range_offsets`).
    fn new(kr: f32, kb: f32, full: bool, depth: u32) -> Self {
        let unit = (1u32 << depth.saturating_sub(8)) as f32;
        let max = ((1u32 << depth) - 1) as f32;
        Yuv {
            kr,
            kb,
            y_off: if full { 0.0 } else { 16.0 * unit },
            y_scale: if full { max } else { 219.0 * unit },
            c_off: (1u32 << (depth - 1)) as f32,
            c_scale: if full { max } else { 224.0 * unit },
            max,
        }
    }

    pub(super) fn for_info(info: &VideoInfo, depth: u32) -> Self {
        let colorimetry = info.colorimetry();
        // RGB/unknown matrices on YUV caps: GStreamer's own default for SD is BT.601
        let (kr, kb) = match colorimetry.matrix() {
            VideoColorMatrix::Rgb | VideoColorMatrix::Unknown => (0.299, 0.114),
            m => m.kr_kb().unwrap_or((0.299, 0.114)),
        };
        let full = colorimetry.range() == VideoColorRange::Range0_255;
        Yuv::new(kr as f32, kb as f32, full, depth)
    }

    /// R'G'B' in [0, 1] of a luma code and chroma codes (chroma interpolated, hence f32).
    #[inline]
    pub(super) fn rgb(&self, y: f32, cb: f32, cr: f32) -> [f32; 3] {
        self.rgb_unclamped(y, cb, cr).map(|c| c.clamp(0.0, 1.0))
    }

    #[inline]
    fn rgb_unclamped(&self, y: f32, cb: f32, cr: f32) -> [f32; 3] {
        let y = (y - self.y_off) / self.y_scale;
        let cb = (cb - self.c_off) / self.c_scale;
        let cr = (cr - self.c_off) / self.c_scale;
        let r = y + 2.0 * (1.0 - self.kr) * cr;
        let b = y + 2.0 * (1.0 - self.kb) * cb;
        let g = (y - self.kr * r - self.kb * b) / (1.0 - self.kr - self.kb);
        [r, g, b]
    }

    /// Normalised luma in [0, 1] of a gray code.
    #[inline]
    pub(super) fn gray(&self, y: f32) -> f32 {
        ((y - self.y_off) / self.y_scale).clamp(0.0, 1.0)
    }

    #[inline]
    pub(super) fn luma(&self, r: f32, g: f32, b: f32) -> f32 {
        self.kr * r + (1.0 - self.kr - self.kb) * g + self.kb * b
    }

    /// Normalised (Cb, Cr) of a pixel with luma `y`.
    #[inline]
    pub(super) fn chroma(&self, y: f32, r: f32, b: f32) -> (f32, f32) {
        (
            (b - y) / (2.0 * (1.0 - self.kb)),
            (r - y) / (2.0 * (1.0 - self.kr)),
        )
    }

    #[inline]
    pub(super) fn y_code(&self, y: f32) -> u16 {
        self.code(self.y_off + y * self.y_scale)
    }

    #[inline]
    pub(super) fn c_code(&self, c: f32) -> u16 {
        self.code(self.c_off + c * self.c_scale)
    }

    #[inline]
    fn code(&self, v: f32) -> u16 {
        // Round half up of the clamped value, as `(v.clamp(0, max) + 0.5) as u16` (NaN → 0):
        // max/min turn NaN into 0.0 first; the floor and the conversion are float additions
        // and a look at the bits (2^23 + k holds k in its low mantissa bits), which the
        // compiler vectorises, where a saturating `as` stays scalar.
        const ROUND: f32 = 8_388_608.0;
        let x = v.max(0.0).min(self.max) + 0.5;
        let nearest = (x + ROUND) - ROUND;
        let floor = if nearest > x { nearest - 1.0 } else { nearest };
        ((floor + ROUND).to_bits() & 0xffff) as u16
    }
}

/// Sample code at byte `at` of a row: a byte, or (`WIDE`) 16 bits little-endian, shifted down
/// and masked to the depth.
#[inline(always)]
pub(super) fn get<const WIDE: bool>(line: &[u8], at: usize, shift: u32, mask: u16) -> u16 {
    if WIDE {
        (u16::from_le_bytes([line[at], line[at + 1]]) >> shift) & mask
    } else {
        u16::from(line[at])
    }
}

/// Writes a code at byte `at` of a row (`WIDE`: shifted up, 16 bits little-endian, the bits
/// outside the code 0).
#[inline(always)]
pub(super) fn put<const WIDE: bool>(line: &mut [u8], at: usize, shift: u32, v: u16) {
    if WIDE {
        line[at..at + 2].copy_from_slice(&(v << shift).to_le_bytes());
    } else {
        line[at] = v as u8;
    }
}

/// Row buffers of the Y'CbCr reader and writer, kept between frames: once the frame size
/// stays, a frame allocates nothing.
#[derive(Default)]
pub(super) struct Rows {
    /// One row of luma codes (read).
    luma: Vec<f32>,
    /// One row of chroma codes at chroma resolution (read).
    chroma: Vec<f32>,
    /// Two chroma rows upsampled horizontally to the luma width (read), each with the chroma
    /// row it holds: consecutive output rows share them.
    up: [Upsampled; 2],
    /// One row's normalised Cb and Cr per pixel (write).
    u: Vec<f32>,
    v: Vec<f32>,
    /// A chroma row's Cb and Cr sums over its subsampling block (write).
    cb_sum: Vec<f32>,
    cr_sum: Vec<f32>,
    /// One row of output codes (write).
    codes: Vec<u16>,
}

#[derive(Default)]
struct Upsampled {
    row: Option<usize>,
    cb: Vec<f32>,
    cr: Vec<f32>,
}

/// A row's `out.len()` sample codes of `comp` as f32 (`line` holds at least that many).
#[inline]
fn load_row<const WIDE: bool>(line: &[u8], comp: Comp, shift: u32, mask: u16, out: &mut [f32]) {
    let from = line.get(comp.offset..).unwrap_or_default();
    if WIDE {
        for (o, s) in out.iter_mut().zip(from.chunks(comp.step)) {
            *o = f32::from(get::<true>(s, 0, shift, mask));
        }
    } else if comp.step == 1 {
        // the planar case: a plain widening loop the compiler vectorises
        for (o, &s) in out.iter_mut().zip(from) {
            *o = f32::from(s);
        }
    } else {
        for (o, &s) in out.iter_mut().zip(from.iter().step_by(comp.step)) {
            *o = f32::from(s);
        }
    }
}

/// Writes `codes` as the samples of `comp` into a row (`line` holds at least that many).
#[inline]
fn store_row<const WIDE: bool>(line: &mut [u8], comp: Comp, shift: u32, codes: &[u16]) {
    let Some(to) = line.get_mut(comp.offset..) else {
        return;
    };
    if WIDE {
        for (d, &c) in to.chunks_mut(comp.step).zip(codes) {
            put::<true>(d, 0, shift, c);
        }
    } else if comp.step == 1 {
        for (d, &c) in to.iter_mut().zip(codes) {
            *d = c as u8;
        }
    } else {
        for (d, &c) in to.iter_mut().step_by(comp.step).zip(codes) {
            *d = c as u8;
        }
    }
}

/// One chroma row upsampled horizontally: the same two-tap lerp as the old per-pixel reader.
#[inline]
fn upsample_row(src: &[f32], xs: &[Tap], out: &mut [f32]) {
    for (o, &(i0, i1, fx)) in out.iter_mut().zip(xs) {
        let (a, b) = (src[i0], src[i1]);
        *o = a + (b - a) * fx;
    }
}

/// R'G'B' of one row: luma codes plus chroma lerped vertically between two upsampled rows by
/// `fy` (horizontal first, then vertical: the old order, so the result is bit-identical).
#[inline]
fn rgb_row(yuv: &Yuv, fy: f32, luma: &[f32], top: &Upsampled, bottom: &Upsampled, out: RowsMut) {
    let [r, g, b] = out;
    let n = r.len();
    let (g, b, luma) = (&mut g[..n], &mut b[..n], &luma[..n]);
    let (cb0, cb1, cr0, cr1) = (&top.cb[..n], &bottom.cb[..n], &top.cr[..n], &bottom.cr[..n]);
    for i in 0..n {
        let cb = cb0[i] + (cb1[i] - cb0[i]) * fy;
        let cr = cr0[i] + (cr1[i] - cr0[i]) * fy;
        [r[i], g[i], b[i]] = yuv.rgb(luma[i], cb, cr);
    }
}

/// One row of each of the three output planes.
type RowsMut<'a> = [&'a mut [f32]; 3];
type RowsRef<'a> = [&'a [f32]; 3];

/// Row `y` of the three planes of `w`-wide planar RGB.
fn rgb_rows_mut(rgb: &mut [f32], n: usize, w: usize, y: usize) -> RowsMut<'_> {
    let (r, rest) = rgb.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    [
        &mut r[y * w..][..w],
        &mut g[y * w..][..w],
        &mut b[y * w..][..w],
    ]
}

fn rgb_rows(rgb: &[f32], n: usize, w: usize, y: usize) -> RowsRef<'_> {
    let (r, rest) = rgb.split_at(n);
    let (g, b) = rest.split_at(n);
    [&r[y * w..][..w], &g[y * w..][..w], &b[y * w..][..w]]
}

/// The Y'CbCr / gray reader, row by row: each chroma row is read and upsampled horizontally
/// once (two kept, as consecutive output rows share them), then each output row lerps them
/// vertically and converts with its luma row.
pub(super) fn read_yuv<const WIDE: bool>(
    frame: &Frame<'_>,
    info: &VideoInfo,
    yl: &YuvLayout,
    yuv: &Yuv,
    rgb: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    if n == 0 {
        return Ok(());
    }
    let (shift, mask, bytes) = (yl.shift, yl.mask(), yl.bytes());
    let yc = yl.comps[0];
    let (y_data, y_stride) = plane_of(frame, yc.plane)?;
    let y_len = yc.row_len(w, bytes);
    if yl.gray {
        let luma = reuse(&mut scratch.rows.luma, w, false);
        for y in 0..h {
            load_row::<WIDE>(row(y_data, y_stride, y, y_len)?, yc, shift, mask, luma);
            let [r, g, b] = rgb_rows_mut(rgb, n, w, y);
            for (o, &l) in r.iter_mut().zip(&*luma) {
                *o = yuv.gray(l);
            }
            g.copy_from_slice(r);
            b.copy_from_slice(r);
        }
        return Ok(());
    }
    let (cw, _) = yl.chroma_size(w, h);
    let Scratch {
        rows, chroma_axes, ..
    } = scratch;
    let (xs, ys) = chroma_axes_for(chroma_axes, info, yl, (w, h));
    let Rows {
        luma, chroma, up, ..
    } = rows;
    let luma = reuse(luma, w, false);
    let chroma = reuse(chroma, cw, false);
    for u in up.iter_mut() {
        // this frame's rows, not the last frame's
        u.row = None;
        reuse(&mut u.cb, w, false);
        reuse(&mut u.cr, w, false);
    }
    let (cb_c, cr_c) = (yl.comps[1], yl.comps[2]);
    let (cb_plane, cr_plane) = (plane_of(frame, cb_c.plane)?, plane_of(frame, cr_c.plane)?);
    let c_len = |c: Comp| c.row_len(cw, bytes);
    for (y, &(j0, j1, fy)) in ys.iter().enumerate() {
        // Fill the slots with chroma rows j0 and j1, keeping one that holds either.
        let mut fill = |slot: &mut Upsampled, j: usize| -> Result<(), String> {
            if slot.row != Some(j) {
                load_row::<WIDE>(
                    row(cb_plane.0, cb_plane.1, j, c_len(cb_c))?,
                    cb_c,
                    shift,
                    mask,
                    chroma,
                );
                upsample_row(chroma, xs, &mut slot.cb);
                load_row::<WIDE>(
                    row(cr_plane.0, cr_plane.1, j, c_len(cr_c))?,
                    cr_c,
                    shift,
                    mask,
                    chroma,
                );
                upsample_row(chroma, xs, &mut slot.cr);
                slot.row = Some(j);
            }
            Ok(())
        };
        let [a, b] = up;
        let (top, bottom) = if a.row == Some(j1) || b.row == Some(j0) {
            (b, a)
        } else {
            (a, b)
        };
        fill(top, j0)?;
        fill(bottom, j1)?;
        load_row::<WIDE>(row(y_data, y_stride, y, y_len)?, yc, shift, mask, luma);
        rgb_row(yuv, fy, luma, top, bottom, rgb_rows_mut(rgb, n, w, y));
    }
    Ok(())
}

/// The chroma upsampling axes for a `(w, h)` frame of `yl` at `info`'s chroma siting, built
/// when the geometry changes.
pub(super) fn chroma_axes_for<'a>(
    axes: &'a mut Option<(ChromaKey, Vec<Tap>, Vec<Tap>)>,
    info: &VideoInfo,
    yl: &YuvLayout,
    (w, h): (usize, usize),
) -> (&'a [Tap], &'a [Tap]) {
    let (sx, sy) = yl.sub;
    let (cw, ch) = yl.chroma_size(w, h);
    // Chroma sample j sits at luma s·j (co-sited) or s·j + (s − 1)/2 (centred), s the
    // subsampling along that axis: offsets only along subsampled axes.
    let site = info.chroma_site();
    let offset = |s: u32, cosited: bool| -> f32 {
        if cosited {
            0.0
        } else {
            ((1u32 << s) - 1) as f32 / 2.0
        }
    };
    let h_off = offset(sx, site.contains(VideoChromaSite::H_COSITED));
    let v_off = offset(sy, site.contains(VideoChromaSite::V_COSITED));
    let key = (w, h, sx, sy, h_off.to_bits(), v_off.to_bits());
    if axes.as_ref().is_none_or(|(k, ..)| *k != key) {
        let (fx, fy) = ((1u32 << sx) as f32, (1u32 << sy) as f32);
        let xs = bilinear_axis(w, cw, |x| (x as f32 - h_off) / fx);
        let ys = bilinear_axis(h, ch, |y| (y as f32 - v_off) / fy);
        *axes = Some((key, xs, ys));
    }
    match axes {
        Some((_, xs, ys)) => (xs, ys),
        None => (&[], &[]),
    }
}

/// Luma codes and normalised chroma of one row (R'G'B' clamped to [0, 1] first).
#[inline]
fn yuv_row(yuv: &Yuv, [r, g, b]: RowsRef<'_>, codes: &mut [u16], u: &mut [f32], v: &mut [f32]) {
    let n = r.len();
    let (g, b, codes, u, v) = (&g[..n], &b[..n], &mut codes[..n], &mut u[..n], &mut v[..n]);
    for i in 0..n {
        let (r, g, b) = (
            r[i].clamp(0.0, 1.0),
            g[i].clamp(0.0, 1.0),
            b[i].clamp(0.0, 1.0),
        );
        let yv = yuv.luma(r, g, b);
        codes[i] = yuv.y_code(yv);
        (u[i], v[i]) = yuv.chroma(yv, r, b);
    }
}

/// Luma codes of one gray row.
#[inline]
fn gray_row(yuv: &Yuv, [r, g, b]: RowsRef<'_>, codes: &mut [u16]) {
    let n = r.len();
    let (g, b, codes) = (&g[..n], &b[..n], &mut codes[..n]);
    for i in 0..n {
        let (r, g, b) = (
            r[i].clamp(0.0, 1.0),
            g[i].clamp(0.0, 1.0),
            b[i].clamp(0.0, 1.0),
        );
        codes[i] = yuv.y_code(yuv.luma(r, g, b));
    }
}

/// Adds one row's chroma to its block's sums: left sample first, as the old per-pixel
/// writer did, so the sums are bit-identical.
#[inline]
fn accumulate(sums: &mut [f32], vals: &[f32], sx: u32) {
    if sx == 0 {
        for (s, &v) in sums.iter_mut().zip(vals) {
            *s += v;
        }
        return;
    }
    let pairs = vals.chunks_exact(2);
    let tail = pairs.remainder();
    for (s, p) in sums.iter_mut().zip(pairs) {
        *s = *s + p[0] + p[1];
    }
    // an odd width: the last block holds one column
    if let ([t], Some(s)) = (tail, sums.last_mut()) {
        *s += *t;
    }
}

/// Codes of a chroma row's block means: `rows` rows summed, blocks `1 << sx` wide except a
/// one-column last block at an odd width. Blocks hold 1, 2 or 4 samples: multiplying by the
/// reciprocal of a power of two is exact, so this equals the old division by the count.
#[inline]
fn mean_codes(yuv: &Yuv, sums: &[f32], (sx, w): (u32, usize), rows: usize, codes: &mut [u16]) {
    let full = 1.0 / ((rows << sx) as f32);
    for (c, &s) in codes.iter_mut().zip(sums) {
        *c = yuv.c_code(s * full);
    }
    if sx == 1
        && w % 2 == 1
        && let (Some(c), Some(&s)) = (codes.last_mut(), sums.last())
    {
        *c = yuv.c_code(s * (1.0 / rows as f32));
    }
}

/// The Y'CbCr / gray writer, row by row: luma straight into its plane; chroma summed over the
/// rows of a subsampling block and written as the block means (clipped at odd edges) once
/// the block's last row is in.
pub(super) fn write_yuv<const WIDE: bool>(
    frame: &mut FrameMut<'_>,
    yl: &YuvLayout,
    yuv: &Yuv,
    rgb: &[f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    if n == 0 {
        return Ok(());
    }
    let (shift, bytes) = (yl.shift, yl.bytes());
    let (sx, sy) = yl.sub;
    let (cw, _) = yl.chroma_size(w, h);
    let yc = yl.comps[0];
    let y_count = yl.luma_per_row(w);
    let y_len = yc.row_len(y_count, bytes);
    let Rows {
        u,
        v,
        cb_sum,
        cr_sum,
        codes,
        ..
    } = &mut scratch.rows;
    let codes = reuse(codes, y_count.max(cw), false);
    let (u, v) = (reuse(u, w, false), reuse(v, w, false));
    let (cb_sum, cr_sum) = (reuse(cb_sum, cw, false), reuse(cr_sum, cw, false));
    for y in 0..h {
        let rows = rgb_rows(rgb, n, w, y);
        if yl.gray {
            gray_row(yuv, rows, &mut codes[..w]);
        } else {
            yuv_row(yuv, rows, &mut codes[..w], u, v);
        }
        let last = codes[w - 1];
        codes[w..y_count].fill(last);
        let (data, s) = plane_mut(frame, yc.plane)?;
        store_row::<WIDE>(row_mut(data, s, y, y_len)?, yc, shift, &codes[..y_count]);
        if yl.gray {
            continue;
        }
        let j = y >> sy;
        if y == j << sy {
            cb_sum.fill(0.0);
            cr_sum.fill(0.0);
        }
        accumulate(cb_sum, u, sx);
        accumulate(cr_sum, v, sx);
        let block_end = ((j + 1) << sy).min(h);
        if y + 1 == block_end {
            let rows = block_end - (j << sy);
            for (comp, sums) in [(yl.comps[1], &*cb_sum), (yl.comps[2], &*cr_sum)] {
                mean_codes(yuv, sums, (sx, w), rows, &mut codes[..cw]);
                let (data, s) = plane_mut(frame, comp.plane)?;
                let line = row_mut(data, s, j, comp.row_len(cw, bytes))?;
                store_row::<WIDE>(line, comp, shift, &codes[..cw]);
            }
        }
    }
    Ok(())
}

/// The components of `yl` as the GPU kernels address them, each plane's address and stride
/// from `plane` (the components a gray format lacks stay empty).
fn gpu_comps(
    yl: &YuvLayout,
    mut plane: impl FnMut(usize) -> Result<(u64, usize), String>,
) -> Result<[YuvComp; 3], String> {
    let mut comps = [YuvComp::default(); 3];
    let n = if yl.gray { 1 } else { 3 };
    for (k, c) in comps.iter_mut().zip(&yl.comps).take(n) {
        let (at, stride) = plane(c.plane)?;
        *k = YuvComp {
            plane: at,
            stride: stride as i64,
            offset: c.offset as i32,
            step: c.step as i32,
        };
    }
    Ok(comps)
}

/// The GPU reader's arguments (`kernels.cu`'s `yuv_in_f32`) for a `w`×`h` frame of `yl` with
/// `yuv`'s constants, its planes where `plane` says (address and stride), the chroma taps at
/// `taps` (as `[imdn::cuda::args::Tap]`, one per column and one per row) and the planar
/// output at `rgb`.
pub(super) fn gpu_reader_args(
    (yl, yuv): (&YuvLayout, &Yuv),
    (w, h): (usize, usize),
    plane: impl FnMut(usize) -> Result<(u64, usize), String>,
    (xs, ys): (u64, u64),
    rgb: u64,
) -> Result<YuvInArgs, String> {
    Ok(YuvInArgs {
        comp: gpu_comps(yl, plane)?,
        xs,
        ys,
        rgb,
        kr: yuv.kr,
        kb: yuv.kb,
        y_off: yuv.y_off,
        y_scale: yuv.y_scale,
        c_off: yuv.c_off,
        c_scale: yuv.c_scale,
        w: w as i32,
        h: h as i32,
        wide: yl.wide as i32,
        shift: yl.shift as i32,
        mask: yl.mask() as i32,
        gray: yl.gray as i32,
    })
}

/// The GPU writer's arguments (`kernels.cu`'s `yuv_out_*_f32`) for a `w`×`h` frame of `yl`
/// with `yuv`'s constants, its planes where `plane` says and the planar input at `rgb`.
pub(super) fn gpu_writer_args(
    (yl, yuv): (&YuvLayout, &Yuv),
    (w, h): (usize, usize),
    plane: impl FnMut(usize) -> Result<(u64, usize), String>,
    rgb: u64,
) -> Result<YuvOutArgs, String> {
    let (cw, ch) = yl.chroma_size(w, h);
    Ok(YuvOutArgs {
        comp: gpu_comps(yl, plane)?,
        rgb,
        kr: yuv.kr,
        kb: yuv.kb,
        y_off: yuv.y_off,
        y_scale: yuv.y_scale,
        c_off: yuv.c_off,
        c_scale: yuv.c_scale,
        max: yuv.max,
        w: w as i32,
        h: h as i32,
        y_count: yl.luma_per_row(w) as i32,
        cw: cw as i32,
        ch: ch as i32,
        sub_x: yl.sub.0 as i32,
        sub_y: yl.sub.1 as i32,
        wide: yl.wide as i32,
        shift: yl.shift as i32,
        gray: yl.gray as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imdnupscale::pixels::{FORMATS, layout};
    use gst_video::VideoFormat;

    #[test]
    fn yuv_round_trip_is_close() {
        for (kr, kb) in [(0.299, 0.114), (0.2126, 0.0722), (0.2627, 0.0593)] {
            for full in [false, true] {
                let yuv = Yuv::new(kr, kb, full, 8);
                for (y, u, v) in [
                    (81u16, 90u16, 240u16),
                    (145, 54, 34),
                    (41, 240, 110),
                    (128, 128, 128),
                ] {
                    let (y, u, v) = (f32::from(y), f32::from(u), f32::from(v));
                    let raw = yuv.rgb_unclamped(y, u, v);
                    let [r, g, b] = yuv.rgb(y, u, v);
                    let yy = yuv.luma(r, g, b);
                    let (cb, cr) = yuv.chroma(yy, r, b);
                    let back = [yuv.y_code(yy), yuv.c_code(cb), yuv.c_code(cr)];
                    // in-gamut colours come back within one step (out-of-gamut ones are clamped)
                    if raw.iter().all(|c| (0.0..=1.0).contains(c)) {
                        for (a, e) in back.iter().zip([y, u, v]) {
                            assert!((f32::from(*a) - e).abs() <= 1.0, "{back:?} vs {y},{u},{v}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn codes_round_half_up_as_a_saturating_cast_would() {
        for depth in [8, 10] {
            let yuv = Yuv::new(0.299, 0.114, false, depth);
            let old = |v: f32| (v.clamp(0.0, yuv.max) + 0.5) as u16;
            let mut values = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, -0.5, 1e9];
            for k in 0..=(1u32 << depth) {
                let tie = k as f32 + 0.5;
                values.extend([k as f32, tie, tie.next_up(), tie.next_down()]);
                values.extend((1..8).map(|i| k as f32 + i as f32 / 8.0));
            }
            for v in values {
                assert_eq!(yuv.code(v), old(v), "{v:e} at depth {depth}");
            }
        }
    }

    #[test]
    fn constants_follow_the_depth() {
        let limited = |d| {
            let y = Yuv::new(0.299, 0.114, false, d);
            (y.y_off, y.y_scale, y.c_off, y.c_scale, y.max)
        };
        let full = |d| {
            let y = Yuv::new(0.299, 0.114, true, d);
            (y.y_off, y.y_scale, y.c_off, y.c_scale, y.max)
        };
        assert_eq!(limited(8), (16.0, 219.0, 128.0, 224.0, 255.0));
        assert_eq!(limited(10), (64.0, 876.0, 512.0, 896.0, 1023.0));
        assert_eq!(full(8), (0.0, 255.0, 128.0, 255.0, 255.0));
        assert_eq!(full(10), (0.0, 1023.0, 512.0, 1023.0, 1023.0));
        // the code range is clamped to the depth, not to 8 bits
        let yuv = Yuv::new(0.2126, 0.0722, false, 10);
        assert_eq!(yuv.y_code(2.0), 1023);
        assert_eq!(yuv.y_code(-1.0), 0);
        assert_eq!(yuv.y_code(1.0), 940);
        assert_eq!(yuv.c_code(0.0), 512);
    }

    #[test]
    fn ten_bit_codes_round_trip_exactly() {
        // codes that are no multiple of 4: an 8-bit step anywhere would lose them
        for full in [false, true] {
            let yuv = Yuv::new(0.2126, 0.0722, full, 10);
            for (y, u, v) in [(301u16, 509u16, 515u16), (647, 483, 557), (513, 514, 511)] {
                let (yf, uf, vf) = (f32::from(y), f32::from(u), f32::from(v));
                let raw = yuv.rgb_unclamped(yf, uf, vf);
                assert!(raw.iter().all(|c| (0.0..=1.0).contains(c)), "{raw:?}");
                let [r, g, b] = yuv.rgb(yf, uf, vf);
                let yy = yuv.luma(r, g, b);
                let (cb, cr) = yuv.chroma(yy, r, b);
                assert_eq!([yuv.y_code(yy), yuv.c_code(cb), yuv.c_code(cr)], [y, u, v]);
            }
        }
    }

    #[test]
    fn layouts_from_the_format_info() {
        gst::init().unwrap();
        let of = |f: VideoFormat| {
            YuvLayout::from_info(&gst_video::VideoFormatInfo::from_format(f)).unwrap()
        };
        let c = |plane, offset, step| Comp {
            plane,
            offset,
            step,
        };
        let planar = [c(0, 0, 1), c(1, 0, 1), c(2, 0, 1)];
        for (f, comps, sub) in [
            (VideoFormat::I420, planar, (1, 1)),
            (VideoFormat::Y42b, planar, (1, 0)),
            (VideoFormat::Y444, planar, (0, 0)),
            (
                VideoFormat::Nv12,
                [c(0, 0, 1), c(1, 0, 2), c(1, 1, 2)],
                (1, 1),
            ),
            (
                VideoFormat::Nv21,
                [c(0, 0, 1), c(1, 1, 2), c(1, 0, 2)],
                (1, 1),
            ),
            (
                VideoFormat::Yuy2,
                [c(0, 0, 2), c(0, 1, 4), c(0, 3, 4)],
                (1, 0),
            ),
            (
                VideoFormat::Uyvy,
                [c(0, 1, 2), c(0, 0, 4), c(0, 2, 4)],
                (1, 0),
            ),
        ] {
            let yl = of(f);
            assert_eq!(
                (yl.comps, yl.sub, yl.depth, yl.wide, yl.shift, yl.gray),
                (comps, sub, 8, false, 0, false),
                "{f:?}"
            );
        }
        let i420_10 = of(VideoFormat::I42010le);
        assert_eq!(
            (
                i420_10.comps,
                i420_10.sub,
                i420_10.depth,
                i420_10.wide,
                i420_10.shift
            ),
            ([c(0, 0, 2), c(1, 0, 2), c(2, 0, 2)], (1, 1), 10, true, 0)
        );
        let p010 = of(VideoFormat::P01010le);
        assert_eq!(
            (p010.comps, p010.sub, p010.depth, p010.wide, p010.shift),
            ([c(0, 0, 2), c(1, 0, 4), c(1, 2, 4)], (1, 1), 10, true, 6)
        );
        let gray = of(VideoFormat::Gray8);
        assert!(gray.gray && !gray.wide && gray.depth == 8);
        assert_eq!(gray.comps[0], c(0, 0, 1));
        // every format of the template has a layout; others do not
        for &f in FORMATS {
            let info = VideoInfo::builder(f, 5, 3).build().unwrap();
            assert!(layout(&info).is_ok(), "{f:?}");
        }
        let yv12 = VideoInfo::builder(VideoFormat::Yv12, 4, 4).build().unwrap();
        assert!(layout(&yv12).is_err());
    }

    #[test]
    fn samples_are_read_and_written_at_their_depth() {
        let mut line = [0u8; 4];
        put::<true>(&mut line, 0, 6, 0x3ff);
        put::<true>(&mut line, 2, 0, 0x2a5);
        assert_eq!(line, [0xc0, 0xff, 0xa5, 0x02]);
        assert_eq!(get::<true>(&line, 0, 6, 0x3ff), 0x3ff);
        assert_eq!(get::<true>(&line, 2, 0, 0x3ff), 0x2a5);
        put::<false>(&mut line, 1, 0, 200);
        assert_eq!(get::<false>(&line, 1, 0, 0xff), 200);
    }
}
