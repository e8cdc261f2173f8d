//! Test frames of every format the element takes: content that is a hash of the frame's seed
//! and the position (so that the expected nearest-neighbour upscale is known byte for byte),
//! in the default layout or a random padded one described by a VideoMeta.

use gst::prelude::*;
use gst_check::Harness;
use gst_video::{VideoFormat, VideoFrameExt, VideoInfo};

use super::pipeline::pad;
use super::rng::XorShift;

/// Every format of the element's templates.
pub const FORMATS: [VideoFormat; 12] = [
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

pub fn is_yuv(f: VideoFormat) -> bool {
    matches!(f, VideoFormat::I420 | VideoFormat::Nv12)
}

/// Byte positions inside a packed pixel: (bytes per pixel, alpha byte, padding byte).
pub fn packed_layout(f: VideoFormat) -> (usize, Option<usize>, Option<usize>) {
    let finfo = gst_video::VideoFormatInfo::from_format(f);
    let bpp = finfo.pixel_stride()[0] as usize;
    let alpha = finfo.has_alpha().then(|| finfo.poffset()[3] as usize);
    let pad = (bpp == 4 && alpha.is_none())
        .then(|| (0..4).find(|i| !finfo.poffset()[..3].contains(&(*i as u32))))
        .flatten();
    (bpp, alpha, pad)
}

/// (visible bytes per row, rows) of each plane.
pub fn plane_geometry(f: VideoFormat, w: usize, h: usize) -> Vec<(usize, usize)> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match f {
        VideoFormat::I420 => vec![(w, h), (cw, ch), (cw, ch)],
        VideoFormat::Nv12 => vec![(w, h), (2 * cw, ch)],
        f => vec![(w * packed_layout(f).0, h)],
    }
}

/// A hash of the frame seed and a position: the content of frame `seed`.
pub fn px(seed: u64, x: usize, y: usize, c: usize) -> u8 {
    let mut v = seed
        ^ (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ (c as u64).wrapping_mul(0x1656_67b1_9e37_79f9);
    v ^= v >> 29;
    v = v.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    v ^= v >> 32;
    v as u8
}

/// The content of a test frame: packed formats get `px` colour bytes, alpha 200 and padding
/// 0x5a; YUV formats get luma `16 + px % 220` (no clipping on the way through RGB) and flat
/// chroma 128, so that luma survives YUV → RGB → YUV within ±2.
pub fn content(f: VideoFormat, seed: u64, plane: usize, xb: usize, y: usize) -> u8 {
    if is_yuv(f) {
        return if plane == 0 {
            16 + px(seed, xb, y, 0) % 220
        } else {
            128
        };
    }
    let (bpp, alpha, pad) = packed_layout(f);
    let c = xb % bpp;
    if Some(c) == alpha {
        200
    } else if Some(c) == pad {
        0x5a
    } else {
        px(seed, xb / bpp, y, c)
    }
}

/// Where each plane starts and its stride, in a buffer of `size` bytes.
pub struct Layout {
    pub offsets: Vec<usize>,
    pub strides: Vec<usize>,
    pub size: usize,
    /// Described by a VideoMeta (else the default layout of the caps).
    pub meta: bool,
}

/// The default layout of `info`, or (with `rng`) a random padded one: strides longer than a
/// row by 0..=40 bytes (odd ones included), gaps of 0..=24 bytes before each plane.
pub fn layout(info: &VideoInfo, rng: Option<&mut XorShift>) -> Layout {
    let Some(rng) = rng else {
        return Layout {
            offsets: info.offset().to_vec(),
            strides: info.stride().iter().map(|&s| s as usize).collect(),
            size: info.size(),
            meta: false,
        };
    };
    let geo = plane_geometry(info.format(), info.width() as usize, info.height() as usize);
    let (mut offsets, mut strides, mut at) = (Vec::new(), Vec::new(), 0usize);
    for (row, rows) in geo {
        at += rng.below(25) as usize;
        let stride = row + rng.below(41) as usize;
        offsets.push(at);
        strides.push(stride);
        at += stride * rows;
    }
    Layout {
        offsets,
        strides,
        size: at + rng.below(9) as usize,
        meta: true,
    }
}

/// A frame of `info` holding `content(seed)`, every byte outside the visible area 0xee.
pub fn make_frame(info: &VideoInfo, seed: u64, lay: &Layout, pts: gst::ClockTime) -> gst::Buffer {
    let f = info.format();
    let geo = plane_geometry(f, info.width() as usize, info.height() as usize);
    let mut buf = gst::Buffer::with_size(lay.size).expect("buffer");
    {
        let b = buf.get_mut().expect("writable");
        {
            let mut map = b.map_writable().expect("map");
            map.fill(0xee);
            for (p, &(row, rows)) in geo.iter().enumerate() {
                for y in 0..rows {
                    let start = lay.offsets[p] + y * lay.strides[p];
                    for (xb, byte) in map[start..start + row].iter_mut().enumerate() {
                        *byte = content(f, seed, p, xb, y);
                    }
                }
            }
        }
        if lay.meta {
            let strides: Vec<i32> = lay.strides.iter().map(|&s| s as i32).collect();
            gst_video::VideoMeta::add_full(
                b,
                gst_video::VideoFrameFlags::empty(),
                f,
                info.width(),
                info.height(),
                &lay.offsets,
                &strides,
            )
            .expect("video meta");
        }
        b.set_pts(pts);
        b.set_duration(gst::ClockTime::from_mseconds(10));
    }
    buf
}

/// Checks that `out` (described by `oinfo`) is the nearest-neighbour upscale of frame `seed`
/// at `(w, h)`: every pixel (`all`) or 3000 random ones. Returns the first mismatch.
pub fn check_nearest(
    out: &gst::BufferRef,
    oinfo: &VideoInfo,
    (w, h): (usize, usize),
    seed: u64,
    all: bool,
    rng: &mut XorShift,
) -> Result<(), String> {
    let f = oinfo.format();
    let (ow, oh) = (oinfo.width() as usize, oinfo.height() as usize);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(out, oinfo)
        .map_err(|e| format!("cannot map the output: {e}"))?;
    let data = frame.plane_data(0).map_err(|e| e.to_string())?;
    let stride = frame.plane_stride()[0] as usize;
    let check = |x: usize, y: usize| -> Result<(), String> {
        let (xi, yi) = (x * w / ow, y * h / oh);
        if is_yuv(f) {
            let got = data[y * stride + x];
            let want = content(f, seed, 0, xi, yi);
            if (i32::from(got) - i32::from(want)).abs() > 2 {
                return Err(format!("luma at {x},{y}: {got}, expected {want}±2"));
            }
            return Ok(());
        }
        let (bpp, _, pad) = packed_layout(f);
        for c in 0..bpp {
            let got = data[y * stride + x * bpp + c];
            let want = if Some(c) == pad {
                0xff
            } else {
                content(f, seed, 0, xi * bpp + c, yi)
            };
            if got != want {
                return Err(format!("byte {c} at {x},{y}: {got}, expected {want}"));
            }
        }
        Ok(())
    };
    if all {
        for y in 0..oh {
            for x in 0..ow {
                check(x, y)?;
            }
        }
    } else {
        for _ in 0..3000 {
            check(rng.below(ow as u64) as usize, rng.below(oh as u64) as usize)?;
        }
    }
    Ok(())
}

pub fn output_info(elem: &gst::Element) -> VideoInfo {
    let caps = pad(elem, "src").current_caps().expect("output caps");
    VideoInfo::from_caps(&caps).expect("output info")
}

/// Starts a stream on the harness by hand: stream-start, caps, segment. Returns whether the
/// caps were accepted (`Harness::set_src_caps` would abort the process when they are not).
pub fn start_stream(h: &mut Harness, caps: &gst::Caps, id: u64) -> bool {
    assert!(h.push_event(gst::event::StreamStart::new(&format!("fuzz-{id}"))));
    if !h.push_event(gst::event::Caps::new(caps)) {
        return false;
    }
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    true
}
