//! Test frames of every format the element takes: content that is a hash of the frame's seed
//! and the position (so that the expected nearest-neighbour upscale is known byte for byte),
//! in the default layout or a random padded one described by a VideoMeta.

use gst::prelude::*;
use gst_check::Harness;
use gst_video::{VideoFormat, VideoFrameExt, VideoInfo};

use super::pipeline::pad;
use super::rng::XorShift;

/// Every format of the element's templates.
pub const FORMATS: [VideoFormat; 20] = [
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

/// The Y'CbCr and gray formats of [`FORMATS`] (all but the packed RGB family).
pub fn is_yuv(f: VideoFormat) -> bool {
    yuv_format(f).is_some()
}

/// Where a Y'CbCr or gray format keeps one component: sample `i` of a row of `plane` starts at
/// byte `offset + i × step`.
#[derive(Clone, Copy, Debug)]
pub struct Comp {
    pub plane: usize,
    pub offset: usize,
    pub step: usize,
}

/// The layout of a Y'CbCr or gray format, written out here by hand (the element reads
/// GStreamer's format info; these tables check that reading).
#[derive(Clone, Copy, Debug)]
pub struct YuvFormat {
    /// Y, U, V (gray: Y alone).
    pub comps: &'static [Comp],
    /// Chroma subsampling factors, horizontally and vertically.
    pub sub: (usize, usize),
    /// Bits per sample.
    pub depth: u32,
    /// 16-bit little-endian samples holding the code shifted up by this many bits (`None`:
    /// one byte per sample).
    pub wide: Option<u32>,
}

const fn comp(plane: usize, offset: usize, step: usize) -> Comp {
    Comp {
        plane,
        offset,
        step,
    }
}

pub fn yuv_format(f: VideoFormat) -> Option<YuvFormat> {
    const PLANAR: &[Comp] = &[comp(0, 0, 1), comp(1, 0, 1), comp(2, 0, 1)];
    const PLANAR_16: &[Comp] = &[comp(0, 0, 2), comp(1, 0, 2), comp(2, 0, 2)];
    const NV12: &[Comp] = &[comp(0, 0, 1), comp(1, 0, 2), comp(1, 1, 2)];
    const NV21: &[Comp] = &[comp(0, 0, 1), comp(1, 1, 2), comp(1, 0, 2)];
    // Y0 U Y1 V and U Y0 V Y1
    const YUY2: &[Comp] = &[comp(0, 0, 2), comp(0, 1, 4), comp(0, 3, 4)];
    const UYVY: &[Comp] = &[comp(0, 1, 2), comp(0, 0, 4), comp(0, 2, 4)];
    const P010: &[Comp] = &[comp(0, 0, 2), comp(1, 0, 4), comp(1, 2, 4)];
    const GRAY: &[Comp] = &[comp(0, 0, 1)];
    let yuv = |comps, sub| YuvFormat {
        comps,
        sub,
        depth: 8,
        wide: None,
    };
    Some(match f {
        VideoFormat::I420 => yuv(PLANAR, (2, 2)),
        VideoFormat::Y42b => yuv(PLANAR, (2, 1)),
        VideoFormat::Y444 => yuv(PLANAR, (1, 1)),
        VideoFormat::Nv12 => yuv(NV12, (2, 2)),
        VideoFormat::Nv21 => yuv(NV21, (2, 2)),
        VideoFormat::Yuy2 => yuv(YUY2, (2, 1)),
        VideoFormat::Uyvy => yuv(UYVY, (2, 1)),
        VideoFormat::Gray8 => yuv(GRAY, (1, 1)),
        VideoFormat::I42010le => YuvFormat {
            comps: PLANAR_16,
            sub: (2, 2),
            depth: 10,
            wide: Some(0),
        },
        // 10 bits in the top of 16
        VideoFormat::P01010le => YuvFormat {
            comps: P010,
            sub: (2, 2),
            depth: 10,
            wide: Some(6),
        },
        _ => return None,
    })
}

impl YuvFormat {
    pub fn bytes(&self) -> usize {
        if self.wide.is_some() { 2 } else { 1 }
    }

    /// 2^(depth − 8): one 8-bit step in codes of this depth.
    pub fn unit(&self) -> u16 {
        1 << (self.depth - 8)
    }

    /// (samples per row, rows) of component `c` in a `w`×`h` frame.
    pub fn samples(&self, c: usize, w: usize, h: usize) -> (usize, usize) {
        if c == 0 {
            (w, h)
        } else {
            (w.div_ceil(self.sub.0), h.div_ceil(self.sub.1))
        }
    }

    /// (visible bytes per row, rows) of each plane.
    pub fn planes(&self, w: usize, h: usize) -> Vec<(usize, usize)> {
        let mut geo: Vec<(usize, usize)> = Vec::new();
        for (c, cp) in self.comps.iter().enumerate() {
            let (n, rows) = self.samples(c, w, h);
            let row = cp.offset + (n - 1) * cp.step + self.bytes();
            if geo.len() <= cp.plane {
                geo.resize(cp.plane + 1, (0, 0));
            }
            let g = &mut geo[cp.plane];
            *g = (g.0.max(row), g.1.max(rows));
        }
        geo
    }

    /// Byte position of sample (`x`, `y`) of component `c` in a plane of `stride`.
    fn at(&self, c: usize, x: usize, y: usize, stride: usize) -> usize {
        y * stride + self.comps[c].offset + x * self.comps[c].step
    }

    /// Sample (`x`, `y`) of component `c` of a plane (every bit of it, shift included).
    pub fn read(&self, data: &[u8], stride: usize, c: usize, x: usize, y: usize) -> u16 {
        let i = self.at(c, x, y, stride);
        match self.wide {
            Some(_) => u16::from_le_bytes([data[i], data[i + 1]]),
            None => u16::from(data[i]),
        }
    }

    /// The code of sample (`x`, `y`) of component `c`.
    pub fn code(&self, data: &[u8], stride: usize, c: usize, x: usize, y: usize) -> u16 {
        self.read(data, stride, c, x, y) >> self.wide.unwrap_or(0)
    }

    /// Writes `code` as sample (`x`, `y`) of component `c`.
    pub fn write(
        &self,
        data: &mut [u8],
        stride: usize,
        c: usize,
        (x, y): (usize, usize),
        code: u16,
    ) {
        let i = self.at(c, x, y, stride);
        match self.wide {
            Some(shift) => data[i..i + 2].copy_from_slice(&(code << shift).to_le_bytes()),
            None => data[i] = code as u8,
        }
    }
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
    match yuv_format(f) {
        Some(yf) => yf.planes(w, h),
        None => vec![(w * packed_layout(f).0, h)],
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

/// The content of a packed RGB test frame: `px` colour bytes, alpha 200 and padding 0x5a.
pub fn content(f: VideoFormat, seed: u64, xb: usize, y: usize) -> u8 {
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

/// The content of a Y'CbCr or gray test frame, as codes of component `c`: luma
/// `16 + px % 220` (8 bits) or `64 + px % 877` (10 bits: codes of every residue mod 4) and
/// flat neutral chroma, so that luma and chroma survive YUV → RGB → YUV.
pub fn yuv_content(yf: &YuvFormat, seed: u64, c: usize, x: usize, y: usize) -> u16 {
    if c > 0 {
        return 1 << (yf.depth - 1);
    }
    match yf.depth {
        8 => 16 + u16::from(px(seed, x, y, 0) % 220),
        _ => {
            let v = u16::from(px(seed, x, y, 0)) << 8 | u16::from(px(seed, x, y, 1));
            64 + v % 877
        }
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

/// A frame of `info` holding `content(seed)` (Y'CbCr and gray formats: `yuv_content`), every
/// byte outside the visible area 0xee.
pub fn make_frame(info: &VideoInfo, seed: u64, lay: &Layout, pts: gst::ClockTime) -> gst::Buffer {
    let f = info.format();
    let mut buf = match yuv_format(f) {
        Some(yf) => yuv_frame(info, lay, |c, x, y| yuv_content(&yf, seed, c, x, y)),
        None => {
            let geo = plane_geometry(f, info.width() as usize, info.height() as usize);
            let mut buf = gst::Buffer::with_size(lay.size).expect("buffer");
            {
                let mut map = buf.get_mut().unwrap().map_writable().expect("map");
                map.fill(0xee);
                for (p, &(row, rows)) in geo.iter().enumerate() {
                    for y in 0..rows {
                        let start = lay.offsets[p] + y * lay.strides[p];
                        for (xb, byte) in map[start..start + row].iter_mut().enumerate() {
                            *byte = content(f, seed, xb, y);
                        }
                    }
                }
            }
            add_meta(&mut buf, info, lay);
            buf
        }
    };
    let b = buf.get_mut().expect("writable");
    b.set_pts(pts);
    b.set_duration(gst::ClockTime::from_mseconds(10));
    buf
}

/// A VideoMeta describing `lay`, if it is not the default layout.
fn add_meta(buf: &mut gst::Buffer, info: &VideoInfo, lay: &Layout) {
    if lay.meta {
        let strides: Vec<i32> = lay.strides.iter().map(|&s| s as i32).collect();
        gst_video::VideoMeta::add_full(
            buf.get_mut().expect("writable"),
            gst_video::VideoFrameFlags::empty(),
            info.format(),
            info.width(),
            info.height(),
            &lay.offsets,
            &strides,
        )
        .expect("video meta");
    }
}

/// A Y'CbCr or gray frame of `info` in layout `lay` whose component `c` at (`x`, `y`) holds
/// the code `f(c, x, y)`; every other byte 0xee (P010's low 6 bits: 0).
pub fn yuv_frame(
    info: &VideoInfo,
    lay: &Layout,
    f: impl Fn(usize, usize, usize) -> u16,
) -> gst::Buffer {
    let yf = yuv_format(info.format()).expect("a YUV format");
    let (w, h) = (info.width() as usize, info.height() as usize);
    let mut buf = gst::Buffer::with_size(lay.size).expect("buffer");
    {
        let mut map = buf.get_mut().unwrap().map_writable().expect("map");
        map.fill(0xee);
        for (c, cp) in yf.comps.iter().enumerate() {
            let (n, rows) = yf.samples(c, w, h);
            let plane = &mut map[lay.offsets[cp.plane]..];
            for y in 0..rows {
                for x in 0..n {
                    yf.write(plane, lay.strides[cp.plane], c, (x, y), f(c, x, y));
                }
            }
        }
    }
    add_meta(&mut buf, info, lay);
    buf
}

/// The raw samples (every bit, shifts included) of each component of a Y'CbCr or gray frame,
/// row by row.
pub fn yuv_samples(buf: &gst::BufferRef, info: &VideoInfo) -> Vec<Vec<u16>> {
    let yf = yuv_format(info.format()).expect("a YUV format");
    let (w, h) = (info.width() as usize, info.height() as usize);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, info).expect("map");
    (0..yf.comps.len())
        .map(|c| {
            let p = yf.comps[c].plane;
            let data = frame.plane_data(p as u32).expect("plane");
            let stride = frame.plane_stride()[p] as usize;
            let (n, rows) = yf.samples(c, w, h);
            (0..rows)
                .flat_map(|y| (0..n).map(move |x| yf.read(data, stride, c, x, y)))
                .collect()
        })
        .collect()
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
    let plane = |p: usize| -> Result<(&[u8], usize), String> {
        let data = frame.plane_data(p as u32).map_err(|e| e.to_string())?;
        Ok((data, frame.plane_stride()[p] as usize))
    };
    let (data, stride) = plane(0)?;
    let check = |x: usize, y: usize| -> Result<(), String> {
        let (xi, yi) = (x * w / ow, y * h / oh);
        if let Some(yf) = yuv_format(f) {
            // luma within 2 (8-bit) steps; chroma, flat neutral, at the subsampled position
            let tolerance = i32::from(2 * yf.unit());
            for c in 0..yf.comps.len() {
                let (cx, cy) = if c == 0 {
                    (x, y)
                } else {
                    (x / yf.sub.0, y / yf.sub.1)
                };
                let (data, stride) = plane(yf.comps[c].plane)?;
                let got = yf.code(data, stride, c, cx, cy);
                let want = yuv_content(&yf, seed, c, xi, yi);
                if (i32::from(got) - i32::from(want)).abs() > tolerance {
                    return Err(format!(
                        "component {c} at {cx},{cy}: {got}, expected {want}±{tolerance}"
                    ));
                }
            }
            return Ok(());
        }
        let (bpp, _, pad) = packed_layout(f);
        for c in 0..bpp {
            let got = data[y * stride + x * bpp + c];
            let want = if Some(c) == pad {
                0xff
            } else {
                content(f, seed, xi * bpp + c, yi)
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
