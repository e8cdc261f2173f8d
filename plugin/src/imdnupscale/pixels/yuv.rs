//! The Y'CbCr / gray path: layouts, Y'CbCr ↔ R'G'B' constants, sample access, reader, writer.

use gst_video::prelude::*;
use gst_video::{VideoChromaSite, VideoColorMatrix, VideoColorRange, VideoInfo};

use super::{Frame, FrameMut, Scratch, bilinear_axis, plane_mut, plane_of, reuse, row, row_mut};

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
        // `as` saturates (NaN → 0) and truncates: + 0.5 rounds the clamped, non-negative value
        // to nearest (halves up, as `round` would) without a call to libm's roundf per sample
        (v.clamp(0.0, self.max) + 0.5) as u16
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

/// The Y'CbCr / gray reader: chroma into two f32 planes at chroma resolution, then per pixel
/// luma plus bilinearly upsampled chroma → R'G'B'.
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
    let (r_pl, rest) = rgb.split_at_mut(n);
    let (g_pl, b_pl) = rest.split_at_mut(n);
    if yl.gray {
        for y in 0..h {
            let line = row(y_data, y_stride, y, y_len)?;
            for x in 0..w {
                let v = yuv.gray(f32::from(get::<WIDE>(
                    line,
                    yc.offset + x * yc.step,
                    shift,
                    mask,
                )));
                let i = y * w + x;
                r_pl[i] = v;
                g_pl[i] = v;
                b_pl[i] = v;
            }
        }
        return Ok(());
    }
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
    if scratch.chroma_axes.as_ref().is_none_or(|(k, ..)| *k != key) {
        let (fx, fy) = ((1u32 << sx) as f32, (1u32 << sy) as f32);
        let xs = bilinear_axis(w, cw, |x| (x as f32 - h_off) / fx);
        let ys = bilinear_axis(h, ch, |y| (y as f32 - v_off) / fy);
        scratch.chroma_axes = Some((key, xs, ys));
    }
    let Some((_, xs, ys)) = &scratch.chroma_axes else {
        return Err("chroma axes missing".into());
    };
    // Chroma as two f32 planes, so the upsampling below is layout independent.
    let cb = reuse(&mut scratch.cb, cw * ch, false);
    let cr = reuse(&mut scratch.cr, cw * ch, false);
    for (comp, dst) in [(yl.comps[1], &mut *cb), (yl.comps[2], &mut *cr)] {
        let (data, s) = plane_of(frame, comp.plane)?;
        let len = comp.row_len(cw, bytes);
        for (j, out) in dst.chunks_exact_mut(cw).enumerate() {
            let line = row(data, s, j, len)?;
            for (i, o) in out.iter_mut().enumerate() {
                *o = f32::from(get::<WIDE>(line, comp.offset + i * comp.step, shift, mask));
            }
        }
    }
    for (y, &(j0, j1, fy)) in ys.iter().enumerate() {
        let luma = row(y_data, y_stride, y, y_len)?;
        let (cb0, cb1) = (&cb[j0 * cw..][..cw], &cb[j1 * cw..][..cw]);
        let (cr0, cr1) = (&cr[j0 * cw..][..cw], &cr[j1 * cw..][..cw]);
        let (r_row, g_row, b_row) = (
            &mut r_pl[y * w..][..w],
            &mut g_pl[y * w..][..w],
            &mut b_pl[y * w..][..w],
        );
        for (x, &(i0, i1, fx)) in xs.iter().enumerate() {
            let lerp2 = |a: &[f32], b: &[f32]| {
                let top = a[i0] + (a[i1] - a[i0]) * fx;
                let bottom = b[i0] + (b[i1] - b[i0]) * fx;
                top + (bottom - top) * fy
            };
            let l = f32::from(get::<WIDE>(luma, yc.offset + x * yc.step, shift, mask));
            let [r, g, b] = yuv.rgb(l, lerp2(cb0, cb1), lerp2(cr0, cr1));
            r_row[x] = r;
            g_row[x] = g;
            b_row[x] = b;
        }
    }
    Ok(())
}

/// The Y'CbCr / gray writer: luma per pixel straight into its plane, chroma as the mean over
/// the subsampling block each sample covers (clipped at odd edges).
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
    let (r_pl, rest) = rgb.split_at(n);
    let (g_pl, b_pl) = rest.split_at(n);
    let (shift, bytes) = (yl.shift, yl.bytes());
    let (sx, sy) = yl.sub;
    let (cw, ch) = if yl.gray {
        (0, 0)
    } else {
        yl.chroma_size(w, h)
    };
    let Scratch { cb, cr, count, .. } = scratch;
    let cb = reuse(cb, cw * ch, true);
    let cr = reuse(cr, cw * ch, true);
    let count = reuse(count, cw * ch, true);
    let yc = yl.comps[0];
    // A packed 4:2:2 row holds two luma samples per chroma pair, also past an odd width: the
    // last pixel's luma is repeated there.
    let y_count = if !yl.gray && yl.comps[1].plane == yc.plane {
        cw << sx
    } else {
        w
    };
    let y_len = yc.row_len(y_count, bytes);
    {
        let (data, s) = plane_mut(frame, yc.plane)?;
        for y in 0..h {
            let line = row_mut(data, s, y, y_len)?;
            let (r_row, g_row, b_row) = (
                &r_pl[y * w..][..w],
                &g_pl[y * w..][..w],
                &b_pl[y * w..][..w],
            );
            let mut last = 0;
            if yl.gray {
                for x in 0..w {
                    let (r, g, b) = (
                        r_row[x].clamp(0.0, 1.0),
                        g_row[x].clamp(0.0, 1.0),
                        b_row[x].clamp(0.0, 1.0),
                    );
                    last = yuv.y_code(yuv.luma(r, g, b));
                    put::<WIDE>(line, yc.offset + x * yc.step, shift, last);
                }
            } else {
                let crow = (y >> sy) * cw;
                let (cb_row, cr_row, n_row) = (
                    &mut cb[crow..][..cw],
                    &mut cr[crow..][..cw],
                    &mut count[crow..][..cw],
                );
                for x in 0..w {
                    let (r, g, b) = (
                        r_row[x].clamp(0.0, 1.0),
                        g_row[x].clamp(0.0, 1.0),
                        b_row[x].clamp(0.0, 1.0),
                    );
                    let yv = yuv.luma(r, g, b);
                    last = yuv.y_code(yv);
                    put::<WIDE>(line, yc.offset + x * yc.step, shift, last);
                    let (u, v) = yuv.chroma(yv, r, b);
                    let c = x >> sx;
                    cb_row[c] += u;
                    cr_row[c] += v;
                    n_row[c] += 1;
                }
            }
            for x in w..y_count {
                put::<WIDE>(line, yc.offset + x * yc.step, shift, last);
            }
        }
    }
    if yl.gray {
        return Ok(());
    }
    for (comp, sums) in [(yl.comps[1], &*cb), (yl.comps[2], &*cr)] {
        let (data, s) = plane_mut(frame, comp.plane)?;
        let len = comp.row_len(cw, bytes);
        for (j, (sums, counts)) in sums
            .chunks_exact(cw)
            .zip(count.chunks_exact(cw))
            .enumerate()
        {
            let line = row_mut(data, s, j, len)?;
            for (i, (&sum, &k)) in sums.iter().zip(counts).enumerate() {
                let code = yuv.c_code(sum / f32::from(k.max(1)));
                put::<WIDE>(line, comp.offset + i * comp.step, shift, code);
            }
        }
    }
    Ok(())
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
