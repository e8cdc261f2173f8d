//! Video frames ↔ planar RGB f32 (the network's input and output), on the worker threads.
//!
//! - Packed 8-bit RGB family: swizzled per pixel from the format's component offsets; a 4th
//!   byte is alpha (resized bilinearly, not by the network) or padding (written as 0xff).
//! - I420 / NV12: Y'CbCr → R'G'B' with the frame's colorimetry (matrix BT.601/709/2020/...,
//!   limited or full range). Chroma is upsampled bilinearly at its siting on the way in and
//!   box-averaged over each 2×2 block on the way out.
//!
//! Rows are always addressed through the plane strides of the mapped frame (padded strides and
//! VideoMeta layouts are common), never as `width × bytes per pixel`.

use gst_video::prelude::*;
use gst_video::{VideoChromaSite, VideoColorMatrix, VideoColorRange, VideoFormat, VideoInfo};
use imdn::image_ops::f32_to_u8;

/// Formats the element accepts (the caps template lists the same).
pub const FORMATS: &[VideoFormat] = &[
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::I420,
    VideoFormat::Nv12,
];

/// A frame as the network sees it.
pub struct Planar {
    pub width: usize,
    pub height: usize,
    /// Three planes R, G, B of `width × height` values in [0, 1].
    pub rgb: Vec<f32>,
    /// `width × height` alpha values, for formats that carry alpha.
    pub alpha: Option<Vec<u8>>,
}

/// Conversion buffers a stage thread keeps between frames (chroma planes, luma, counts).
#[derive(Default)]
pub struct Scratch {
    cb: Vec<f32>,
    cr: Vec<f32>,
    count: Vec<u8>,
    luma: Vec<u8>,
    /// The chroma upsampling axes of the last YUV geometry (luma size, chroma offsets).
    chroma_axes: Option<(ChromaKey, Vec<Tap>, Vec<Tap>)>,
    /// The alpha resize axes of the last (input size, output size).
    alpha_axes: Option<(AlphaKey, Vec<Tap>, Vec<Tap>)>,
}

/// One output sample of a bilinear axis: the two input samples and the second's weight.
type Tap = (usize, usize, f32);

/// (width, height, horizontal and vertical chroma offset bits).
type ChromaKey = (usize, usize, u32, u32);

/// (input width, height, output width, height).
type AlphaKey = (usize, usize, usize, usize);

/// `v` resized to `len`; `zeroed` clears it first (for accumulators), otherwise the caller
/// overwrites every value.
fn reuse<T: Copy + Default>(v: &mut Vec<T>, len: usize, zeroed: bool) -> &mut [T] {
    if zeroed {
        v.clear();
    }
    v.resize(len, T::default());
    v
}

/// Byte positions of the components of a packed RGB pixel.
#[derive(Clone, Copy)]
struct Packed {
    bpp: usize,
    rgb: [usize; 3],
    /// The 4th byte: alpha (`true`) or padding (`false`).
    fourth: Option<(usize, bool)>,
}

enum Layout {
    Packed(Packed),
    I420,
    Nv12,
}

fn layout(info: &VideoInfo) -> Result<Layout, String> {
    let finfo = info.format_info();
    match info.format() {
        VideoFormat::I420 => Ok(Layout::I420),
        VideoFormat::Nv12 => Ok(Layout::Nv12),
        f if FORMATS.contains(&f) => {
            let bpp = usize::try_from(finfo.pixel_stride()[0]).map_err(|e| e.to_string())?;
            let off = finfo.poffset();
            let rgb = [off[0] as usize, off[1] as usize, off[2] as usize];
            let fourth = match bpp {
                4 if finfo.has_alpha() => Some((off[3] as usize, true)),
                // the padding byte is the one no component uses
                4 => (0..4).find(|i| !rgb.contains(i)).map(|i| (i, false)),
                _ => None,
            };
            Ok(Layout::Packed(Packed { bpp, rgb, fourth }))
        }
        f => Err(format!("unsupported format {f:?}")),
    }
}

/// Y'CbCr ↔ R'G'B' constants for 8-bit samples.
#[derive(Clone, Copy, Debug)]
struct Yuv {
    kr: f32,
    kb: f32,
    y_off: f32,
    y_scale: f32,
    c_scale: f32,
}

impl Yuv {
    fn for_info(info: &VideoInfo) -> Self {
        let colorimetry = info.colorimetry();
        // RGB/unknown matrices on YUV caps: GStreamer's own default for SD is BT.601
        let (kr, kb) = match colorimetry.matrix() {
            VideoColorMatrix::Rgb | VideoColorMatrix::Unknown => (0.299, 0.114),
            m => m.kr_kb().unwrap_or((0.299, 0.114)),
        };
        let full = colorimetry.range() == VideoColorRange::Range0_255;
        Yuv {
            kr: kr as f32,
            kb: kb as f32,
            y_off: if full { 0.0 } else { 16.0 },
            y_scale: if full { 255.0 } else { 219.0 },
            c_scale: if full { 255.0 } else { 224.0 },
        }
    }

    /// R'G'B' in [0, 1] of an 8-bit luma and chroma pair (chroma interpolated, hence f32).
    #[inline]
    fn rgb(&self, y: u8, cb: f32, cr: f32) -> [f32; 3] {
        self.rgb_unclamped(y, cb, cr).map(|c| c.clamp(0.0, 1.0))
    }

    #[inline]
    fn rgb_unclamped(&self, y: u8, cb: f32, cr: f32) -> [f32; 3] {
        let y = (f32::from(y) - self.y_off) / self.y_scale;
        let cb = (cb - 128.0) / self.c_scale;
        let cr = (cr - 128.0) / self.c_scale;
        let r = y + 2.0 * (1.0 - self.kr) * cr;
        let b = y + 2.0 * (1.0 - self.kb) * cb;
        let g = (y - self.kr * r - self.kb * b) / (1.0 - self.kr - self.kb);
        [r, g, b]
    }

    #[inline]
    fn luma(&self, r: f32, g: f32, b: f32) -> f32 {
        self.kr * r + (1.0 - self.kr - self.kb) * g + self.kb * b
    }

    /// Normalised (Cb, Cr) of a pixel with luma `y`.
    #[inline]
    fn chroma(&self, y: f32, r: f32, b: f32) -> (f32, f32) {
        (
            (b - y) / (2.0 * (1.0 - self.kb)),
            (r - y) / (2.0 * (1.0 - self.kr)),
        )
    }

    #[inline]
    fn y_u8(&self, y: f32) -> u8 {
        to_u8(self.y_off + y * self.y_scale)
    }

    #[inline]
    fn c_u8(&self, c: f32) -> u8 {
        to_u8(128.0 + c * self.c_scale)
    }
}

#[inline]
fn to_u8(v: f32) -> u8 {
    // `as` saturates (NaN → 0); clamp first so rounding cannot wrap
    v.clamp(0.0, 255.0).round() as u8
}

/// One axis of a bilinear resample: for each output sample the two input samples and the
/// weight of the second. `pos(i)` is output sample `i`'s position in input samples.
fn bilinear_axis(out_len: usize, in_len: usize, pos: impl Fn(usize) -> f32) -> Vec<Tap> {
    let last = in_len.saturating_sub(1);
    (0..out_len)
        .map(|i| {
            let p = pos(i).clamp(0.0, last as f32);
            let i0 = (p.floor() as usize).min(last);
            let i1 = (i0 + 1).min(last);
            (i0, i1, p - i0 as f32)
        })
        .collect()
}

/// Row `y` of a plane, `len` bytes long, or an error if the mapping is too short.
fn row(data: &[u8], stride: usize, y: usize, len: usize) -> Result<&[u8], String> {
    y.checked_mul(stride)
        .and_then(|start| data.get(start..start.checked_add(len)?))
        .ok_or_else(|| format!("plane too short for row {y} ({len} bytes, stride {stride})"))
}

fn row_mut(data: &mut [u8], stride: usize, y: usize, len: usize) -> Result<&mut [u8], String> {
    let start = y
        .checked_mul(stride)
        .ok_or_else(|| format!("row {y} overflows"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| format!("row {y} overflows"))?;
    data.get_mut(start..end)
        .ok_or_else(|| format!("plane too short for row {y} ({len} bytes, stride {stride})"))
}

fn stride(strides: &[i32], plane: usize) -> Result<usize, String> {
    strides
        .get(plane)
        .and_then(|&s| usize::try_from(s).ok())
        .ok_or_else(|| format!("plane {plane} has no usable stride"))
}

/// Reads a mapped frame into planar RGB f32 (plus alpha where the format has it), in `rgb`'s
/// allocation (an earlier frame's, handed back by the worker); the alpha plane goes into what
/// `spare_alpha` gives, called only for formats with alpha.
pub fn read_frame(
    buffer: &gst::BufferRef,
    info: &VideoInfo,
    mut rgb: Vec<f32>,
    spare_alpha: impl FnOnce() -> Vec<u8>,
    scratch: &mut Scratch,
) -> Result<Planar, String> {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
        .map_err(|e| format!("cannot map the input frame: {e}"))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    // every value is written below
    rgb.resize(3 * n, 0.0);
    let strides = frame.plane_stride();
    let plane = |p: u32| {
        frame
            .plane_data(p)
            .map_err(|e| format!("cannot read plane {p}: {e}"))
    };
    let mut alpha = None;
    match layout(info)? {
        Layout::Packed(px) => {
            let (data, stride) = (plane(0)?, stride(strides, 0)?);
            let mut a = match px.fourth {
                Some((_, true)) => {
                    let mut a = spare_alpha();
                    // every value is written below
                    a.resize(n, 0);
                    Some(a)
                }
                _ => None,
            };
            let (r_pl, rest) = rgb.split_at_mut(n);
            let (g_pl, b_pl) = rest.split_at_mut(n);
            for y in 0..h {
                let line = row(data, stride, y, w * px.bpp)?;
                for (x, p) in line.chunks_exact(px.bpp).enumerate() {
                    let i = y * w + x;
                    r_pl[i] = f32::from(p[px.rgb[0]]) / 255.0;
                    g_pl[i] = f32::from(p[px.rgb[1]]) / 255.0;
                    b_pl[i] = f32::from(p[px.rgb[2]]) / 255.0;
                }
                if let (Some(a), Some((off, true))) = (a.as_mut(), px.fourth) {
                    for (x, p) in line.chunks_exact(px.bpp).enumerate() {
                        a[y * w + x] = p[off];
                    }
                }
            }
            alpha = a.take();
        }
        layout @ (Layout::I420 | Layout::Nv12) => {
            let yuv = Yuv::for_info(info);
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            // chroma sample j sits at luma 2j (co-sited) or 2j + 0.5 (centred)
            let site = info.chroma_site();
            let h_off: f32 = if site.contains(VideoChromaSite::H_COSITED) {
                0.0
            } else {
                0.25
            };
            let v_off: f32 = if site.contains(VideoChromaSite::V_COSITED) {
                0.0
            } else {
                0.25
            };
            let key = (w, h, h_off.to_bits(), v_off.to_bits());
            if scratch.chroma_axes.as_ref().is_none_or(|(k, ..)| *k != key) {
                let xs = bilinear_axis(w, cw, |x| x as f32 / 2.0 - h_off);
                let ys = bilinear_axis(h, ch, |y| y as f32 / 2.0 - v_off);
                scratch.chroma_axes = Some((key, xs, ys));
            }
            let Some((_, xs, ys)) = &scratch.chroma_axes else {
                return Err("chroma axes missing".into());
            };
            let (y_data, y_stride) = (plane(0)?, stride(strides, 0)?);
            // Chroma as two f32 planes, so the upsampling below is format independent.
            let cb = reuse(&mut scratch.cb, cw * ch, false);
            let cr = reuse(&mut scratch.cr, cw * ch, false);
            match layout {
                Layout::I420 => {
                    let (u, us) = (plane(1)?, stride(strides, 1)?);
                    let (v, vs) = (plane(2)?, stride(strides, 2)?);
                    for j in 0..ch {
                        let (ur, vr) = (row(u, us, j, cw)?, row(v, vs, j, cw)?);
                        for i in 0..cw {
                            cb[j * cw + i] = f32::from(ur[i]);
                            cr[j * cw + i] = f32::from(vr[i]);
                        }
                    }
                }
                _ => {
                    let (uv, uvs) = (plane(1)?, stride(strides, 1)?);
                    for j in 0..ch {
                        let line = row(uv, uvs, j, 2 * cw)?;
                        for (i, p) in line.chunks_exact(2).enumerate() {
                            cb[j * cw + i] = f32::from(p[0]);
                            cr[j * cw + i] = f32::from(p[1]);
                        }
                    }
                }
            }
            let (r_pl, rest) = rgb.split_at_mut(n);
            let (g_pl, b_pl) = rest.split_at_mut(n);
            for (y, &(j0, j1, fy)) in ys.iter().enumerate() {
                let luma = row(y_data, y_stride, y, w)?;
                let (cb0, cb1) = (&cb[j0 * cw..][..cw], &cb[j1 * cw..][..cw]);
                let (cr0, cr1) = (&cr[j0 * cw..][..cw], &cr[j1 * cw..][..cw]);
                for (x, &(i0, i1, fx)) in xs.iter().enumerate() {
                    let lerp2 = |a: &[f32], b: &[f32]| {
                        let top = a[i0] + (a[i1] - a[i0]) * fx;
                        let bottom = b[i0] + (b[i1] - b[i0]) * fx;
                        top + (bottom - top) * fy
                    };
                    let [r, g, b] = yuv.rgb(luma[x], lerp2(cb0, cb1), lerp2(cr0, cr1));
                    let i = y * w + x;
                    r_pl[i] = r;
                    g_pl[i] = g;
                    b_pl[i] = b;
                }
            }
        }
    }
    Ok(Planar {
        width: w,
        height: h,
        rgb,
        alpha,
    })
}

/// Bilinear resize of one u8 plane (pixel centres aligned), for alpha, into `out` (reused);
/// the axes are kept in `scratch` while the sizes stay.
pub fn resize_alpha_into(
    src: &[u8],
    (w, h): (usize, usize),
    (ow, oh): (usize, usize),
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) {
    out.clear();
    if w == 0 || h == 0 || src.len() < w * h {
        out.resize(ow * oh, 255);
        return;
    }
    let key = (w, h, ow, oh);
    if scratch.alpha_axes.as_ref().is_none_or(|(k, ..)| *k != key) {
        let xs = bilinear_axis(ow, w, |x| (x as f32 + 0.5) * w as f32 / ow as f32 - 0.5);
        let ys = bilinear_axis(oh, h, |y| (y as f32 + 0.5) * h as f32 / oh as f32 - 0.5);
        scratch.alpha_axes = Some((key, xs, ys));
    }
    let Some((_, xs, ys)) = &scratch.alpha_axes else {
        return;
    };
    for &(j0, j1, fy) in ys {
        let (a, b) = (&src[j0 * w..][..w], &src[j1 * w..][..w]);
        out.extend(xs.iter().map(|&(i0, i1, fx)| {
            let top = f32::from(a[i0]) + (f32::from(a[i1]) - f32::from(a[i0])) * fx;
            let bottom = f32::from(b[i0]) + (f32::from(b[i1]) - f32::from(b[i0])) * fx;
            to_u8(top + (bottom - top) * fy)
        }));
    }
}

/// Writes planar RGB f32 (`info`'s size) into a mapped output frame. `alpha`, if any, is
/// already at the output size.
pub fn write_frame(
    buffer: &mut gst::BufferRef,
    info: &VideoInfo,
    rgb: &[f32],
    alpha: Option<&[u8]>,
    scratch: &mut Scratch,
) -> Result<(), String> {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info)
        .map_err(|e| format!("cannot map the output frame: {e}"))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    if rgb.len() != 3 * n {
        return Err(format!(
            "network output holds {} values, the {w}×{h} output frame needs {}",
            rgb.len(),
            3 * n
        ));
    }
    let (r_pl, rest) = rgb.split_at(n);
    let (g_pl, b_pl) = rest.split_at(n);
    // copied out: the planes are borrowed mutably below (at most 4 planes, no allocation)
    let mut stride_copy = [0i32; 4];
    let n_planes = frame.plane_stride().len().min(4);
    stride_copy[..n_planes].copy_from_slice(&frame.plane_stride()[..n_planes]);
    let strides = &stride_copy[..n_planes];
    match layout(info)? {
        Layout::Packed(px) => {
            let s0 = stride(strides, 0)?;
            let data = frame
                .plane_data_mut(0)
                .map_err(|e| format!("cannot write plane 0: {e}"))?;
            for y in 0..h {
                let line = row_mut(data, s0, y, w * px.bpp)?;
                for (x, p) in line.chunks_exact_mut(px.bpp).enumerate() {
                    let i = y * w + x;
                    p[px.rgb[0]] = f32_to_u8(r_pl[i]);
                    p[px.rgb[1]] = f32_to_u8(g_pl[i]);
                    p[px.rgb[2]] = f32_to_u8(b_pl[i]);
                    if let Some((off, is_alpha)) = px.fourth {
                        p[off] = match alpha {
                            Some(a) if is_alpha => a.get(i).copied().unwrap_or(255),
                            _ => 255,
                        };
                    }
                }
            }
        }
        layout @ (Layout::I420 | Layout::Nv12) => {
            let yuv = Yuv::for_info(info);
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            // Luma per pixel; chroma as the mean over the 2×2 block each sample covers
            // (clipped at odd edges).
            let Scratch {
                cb,
                cr,
                count,
                luma,
                ..
            } = scratch;
            let cb = reuse(cb, cw * ch, true);
            let cr = reuse(cr, cw * ch, true);
            let count = reuse(count, cw * ch, true);
            let luma = reuse(luma, n, false);
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    let (r, g, b) = (
                        r_pl[i].clamp(0.0, 1.0),
                        g_pl[i].clamp(0.0, 1.0),
                        b_pl[i].clamp(0.0, 1.0),
                    );
                    let yv = yuv.luma(r, g, b);
                    luma[i] = yuv.y_u8(yv);
                    let (u, v) = yuv.chroma(yv, r, b);
                    let c = (y / 2) * cw + x / 2;
                    cb[c] += u;
                    cr[c] += v;
                    count[c] += 1;
                }
            }
            let s0 = stride(strides, 0)?;
            {
                let data = frame
                    .plane_data_mut(0)
                    .map_err(|e| format!("cannot write plane 0: {e}"))?;
                for (y, src) in luma.chunks_exact(w).enumerate() {
                    row_mut(data, s0, y, w)?.copy_from_slice(src);
                }
            }
            let mean = |sum: f32, c: usize| sum / f32::from(count[c].max(1));
            match layout {
                Layout::I420 => {
                    for (p, plane) in [(1u32, &cb), (2u32, &cr)] {
                        let s = stride(strides, p as usize)?;
                        let data = frame
                            .plane_data_mut(p)
                            .map_err(|e| format!("cannot write plane {p}: {e}"))?;
                        for j in 0..ch {
                            let line = row_mut(data, s, j, cw)?;
                            for (i, out) in line.iter_mut().enumerate() {
                                let c = j * cw + i;
                                *out = yuv.c_u8(mean(plane[c], c));
                            }
                        }
                    }
                }
                _ => {
                    let s = stride(strides, 1)?;
                    let data = frame
                        .plane_data_mut(1)
                        .map_err(|e| format!("cannot write plane 1: {e}"))?;
                    for j in 0..ch {
                        let line = row_mut(data, s, j, 2 * cw)?;
                        for (i, out) in line.chunks_exact_mut(2).enumerate() {
                            let c = j * cw + i;
                            out[0] = yuv.c_u8(mean(cb[c], c));
                            out[1] = yuv.c_u8(mean(cr[c], c));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_round_trip_is_close() {
        for (kr, kb) in [(0.299, 0.114), (0.2126, 0.0722), (0.2627, 0.0593)] {
            for full in [false, true] {
                let yuv = Yuv {
                    kr,
                    kb,
                    y_off: if full { 0.0 } else { 16.0 },
                    y_scale: if full { 255.0 } else { 219.0 },
                    c_scale: if full { 255.0 } else { 224.0 },
                };
                for (y, u, v) in [
                    (81u8, 90u8, 240u8),
                    (145, 54, 34),
                    (41, 240, 110),
                    (128, 128, 128),
                ] {
                    let raw = yuv.rgb_unclamped(y, f32::from(u), f32::from(v));
                    let [r, g, b] = yuv.rgb(y, f32::from(u), f32::from(v));
                    let yy = yuv.luma(r, g, b);
                    let (cb, cr) = yuv.chroma(yy, r, b);
                    let back = [yuv.y_u8(yy), yuv.c_u8(cb), yuv.c_u8(cr)];
                    // in-gamut colours come back within one step (out-of-gamut ones are clamped)
                    if raw.iter().all(|c| (0.0..=1.0).contains(c)) {
                        for (a, e) in back.iter().zip([y, u, v]) {
                            assert!(
                                (i32::from(*a) - i32::from(e)).abs() <= 1,
                                "{back:?} vs {y},{u},{v}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn alpha_resize_keeps_flat_planes() {
        let (mut scratch, mut a) = (Scratch::default(), Vec::new());
        resize_alpha_into(&[7; 6], (3, 2), (9, 6), &mut scratch, &mut a);
        assert_eq!(a, vec![7; 54]);
    }

    #[test]
    fn alpha_resize_reuses_its_buffer_and_follows_size_changes() {
        let (mut scratch, mut a) = (Scratch::default(), Vec::new());
        // a ramp 0, 100, 200 doubled: centres at 0.25, 0.75, … of the input pixels
        resize_alpha_into(&[0, 100, 200], (3, 1), (6, 1), &mut scratch, &mut a);
        assert_eq!(a, vec![0, 25, 75, 125, 175, 200]);
        let ptr = a.as_ptr();
        resize_alpha_into(&[0, 100, 200], (3, 1), (6, 1), &mut scratch, &mut a);
        assert_eq!(a.as_ptr(), ptr, "same size: the buffer is reused");
        // another size rebuilds the axes rather than reusing stale ones
        resize_alpha_into(&[10, 20], (2, 1), (2, 2), &mut scratch, &mut a);
        assert_eq!(a, vec![10, 20, 10, 20]);
    }
}
