//! Video frames ↔ planar RGB f32 (the network's input and output), on the worker threads.
//!
//! - Packed 8-bit RGB family: swizzled from the format's component offsets; a 4th
//!   byte is alpha (resized bilinearly, not by the network) or padding (written as 0xff).
//! - Y'CbCr (I420, Y42B, Y444, NV12, NV21, YUY2, UYVY, I420_10LE, P010_10LE) and GRAY8: one
//!   reader and one writer, driven by GStreamer's format info (each component's plane, byte
//!   offset, byte step, bit shift; 8-bit samples or 16-bit little-endian ones). Y'CbCr ↔
//!   R'G'B' with the frame's colorimetry (matrix BT.601/709/2020/..., limited or full range)
//!   at the format's depth: 10-bit samples are read and written as 10-bit codes, never
//!   rounded to 8 bits. Chroma is upsampled bilinearly at its siting on the way in and
//!   box-averaged over each subsampling block (2×2, 2×1 or 1×1) on the way out. GRAY8 is luma
//!   alone: R = G = B on the way in, luma from the caps' matrix on the way out.
//!
//! Both convert row by row in loops the compiler vectorises (`packed.rs`, `yuv.rs`), with
//! row buffers kept in [`Scratch`]; `reference.rs` keeps the earlier per-pixel code, which
//! the tests hold them to bit for bit.
//!
//! Rows are always addressed through the plane strides of the mapped frame (padded strides and
//! VideoMeta layouts are common), never as `width × bytes per pixel`.

use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoInfo};

pub mod device;
#[cfg(test)]
mod equivalence;
#[cfg(test)]
mod gpu_conversions;
mod packed;
#[cfg(test)]
mod reference;
mod yuv;

use yuv::{Yuv, YuvLayout, read_yuv, write_yuv};

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
    VideoFormat::Nv21,
    VideoFormat::Y42b,
    VideoFormat::Y444,
    VideoFormat::Yuy2,
    VideoFormat::Uyvy,
    VideoFormat::I42010le,
    VideoFormat::P01010le,
    VideoFormat::Gray8,
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

/// Conversion buffers a stage thread keeps between frames (chroma planes, counts).
#[derive(Default)]
pub struct Scratch {
    rows: yuv::Rows,
    /// One row of a packed pixel's 4th bytes (write).
    fourth: Vec<u8>,
    /// The chroma upsampling axes of the last YUV geometry (luma size, subsampling, offsets).
    chroma_axes: Option<(ChromaKey, Vec<Tap>, Vec<Tap>)>,
    /// The alpha resize axes of the last (input size, output size).
    alpha_axes: Option<(AlphaKey, Vec<Tap>, Vec<Tap>)>,
}

/// One output sample of a bilinear axis: the two input samples and the second's weight.
type Tap = (usize, usize, f32);

/// (width, height, log2 subsampling horizontally and vertically, horizontal and vertical
/// chroma offset bits).
type ChromaKey = (usize, usize, u32, u32, u32, u32);

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
    Yuv(YuvLayout),
}

fn layout(info: &VideoInfo) -> Result<Layout, String> {
    let finfo = info.format_info();
    let f = info.format();
    if !FORMATS.contains(&f) {
        return Err(format!("unsupported format {f:?}"));
    }
    if !finfo.is_rgb() {
        return YuvLayout::from_info(&finfo).map(Layout::Yuv);
    }
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

type Frame<'a> = gst_video::VideoFrameRef<&'a gst::BufferRef>;
type FrameMut<'a> = gst_video::VideoFrameRef<&'a mut gst::BufferRef>;

fn plane_of<'a>(frame: &'a Frame<'_>, p: usize) -> Result<(&'a [u8], usize), String> {
    let data = frame
        .plane_data(p as u32)
        .map_err(|e| format!("cannot read plane {p}: {e}"))?;
    Ok((data, stride(frame.plane_stride(), p)?))
}

fn plane_mut<'a>(frame: &'a mut FrameMut<'_>, p: usize) -> Result<(&'a mut [u8], usize), String> {
    let s = stride(frame.plane_stride(), p)?;
    let data = frame
        .plane_data_mut(p as u32)
        .map_err(|e| format!("cannot write plane {p}: {e}"))?;
    Ok((data, s))
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
    let mut alpha = None;
    match layout(info)? {
        Layout::Packed(px) => {
            let (data, stride) = plane_of(&frame, 0)?;
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
            let rows = r_pl
                .chunks_exact_mut(w)
                .zip(g_pl.chunks_exact_mut(w))
                .zip(b_pl.chunks_exact_mut(w));
            for (y, ((r, g), b)) in rows.enumerate() {
                let line = row(data, stride, y, w * px.bpp)?;
                let a = a.as_mut().map(|a| &mut a[y * w..][..w]);
                packed::unpack_row(&px, line, [r, g, b], a);
            }
            alpha = a.take();
        }
        Layout::Yuv(yl) => {
            let yuv = Yuv::for_info(info, yl.depth);
            if yl.wide {
                read_yuv::<true>(&frame, info, &yl, &yuv, &mut rgb, scratch)?;
            } else {
                read_yuv::<false>(&frame, info, &yl, &yuv, &mut rgb, scratch)?;
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

/// The 4th bytes of the `fourth.len()` pixels from pixel `at`: alpha where the format has
/// alpha and `alpha` has a value, 0xff otherwise.
fn fourth_row(fourth: Option<(usize, bool)>, alpha: Option<&[u8]>, at: usize, out: &mut [u8]) {
    let have = match (fourth, alpha) {
        (Some((_, true)), Some(a)) => a.get(at..).unwrap_or_default(),
        _ => &[],
    };
    let k = have.len().min(out.len());
    out[..k].copy_from_slice(&have[..k]);
    out[k..].fill(255);
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
    match layout(info)? {
        Layout::Packed(px) => {
            let (r_pl, rest) = rgb.split_at(n);
            let (g_pl, b_pl) = rest.split_at(n);
            let (data, s0) = plane_mut(&mut frame, 0)?;
            let fourth = reuse(&mut scratch.fourth, w, false);
            for y in 0..h {
                let line = row_mut(data, s0, y, w * px.bpp)?;
                let rows = [
                    &r_pl[y * w..][..w],
                    &g_pl[y * w..][..w],
                    &b_pl[y * w..][..w],
                ];
                fourth_row(px.fourth, alpha, y * w, fourth);
                packed::pack_row(&px, rows, fourth, line);
            }
        }
        Layout::Yuv(yl) => {
            let yuv = Yuv::for_info(info, yl.depth);
            if yl.wide {
                write_yuv::<true>(&mut frame, &yl, &yuv, rgb, scratch)?;
            } else {
                write_yuv::<false>(&mut frame, &yl, &yuv, rgb, scratch)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
