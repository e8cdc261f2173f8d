//! `imdnupscale` through `gst_check::Harness` and small pipelines. Most tests use the
//! nearest-neighbour test backend (`model-path=test:nearest`), so expected bytes are exact;
//! `real_imdn_*` run the IMDN_RTC network from a random-init weights file.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::{VideoFormat, VideoFrameExt, VideoInfo};

use common::frames::{
    FORMATS, YuvFormat, is_yuv, packed_layout, plane_geometry, yuv_format, yuv_frame, yuv_samples,
};
use common::pipeline::{Pipeline, start_alone, wait_for};
use common::rng::XorShift;
use common::{WAIT, init, temp_path, weights};

fn element(props: &[(&str, &dyn ToValue)]) -> gst::Element {
    let elem = gst::ElementFactory::make("imdnupscale")
        .property("model-path", "test:nearest")
        .build()
        .expect("imdnupscale");
    for (name, value) in props {
        let value = value.to_value();
        match value.get::<&str>() {
            // enums are set by nick
            Ok(nick)
                if ["device", "model", "edge-mode", "precision", "cuda-kernels"].contains(name) =>
            {
                elem.set_property_from_str(name, nick)
            }
            _ => elem.set_property_from_value(name, &value),
        }
    }
    elem
}

fn harness(props: &[(&str, &dyn ToValue)]) -> Harness {
    let mut h = Harness::with_element(&element(props), Some("sink"), Some("src"));
    h.play();
    h
}

fn info(format: VideoFormat, w: u32, h: u32) -> VideoInfo {
    VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .expect("video info")
}

/// A frame whose every byte of the visible area is `f(plane, x_byte, y)`; padding bytes are
/// 0xee so reading them would show.
fn frame(vinfo: &VideoInfo, f: impl Fn(usize, usize, usize) -> u8) -> gst::Buffer {
    let mut buf = gst::Buffer::with_size(vinfo.size()).expect("buffer");
    {
        let bufref = buf.get_mut().expect("writable");
        bufref.map_writable().expect("map").fill(0xee);
        let mut vf =
            gst_video::VideoFrameRef::from_buffer_ref_writable(bufref, vinfo).expect("frame");
        for (p, (row, rows)) in geometry(vinfo).into_iter().enumerate() {
            let stride = vf.plane_stride()[p] as usize;
            let data = vf.plane_data_mut(p as u32).expect("plane");
            for y in 0..rows {
                for xb in 0..row {
                    data[y * stride + xb] = f(p, xb, y);
                }
            }
        }
    }
    buf
}

/// (visible bytes per row, rows) of each plane of `vinfo`'s frames.
fn geometry(vinfo: &VideoInfo) -> Vec<(usize, usize)> {
    let (w, h) = (vinfo.width() as usize, vinfo.height() as usize);
    plane_geometry(vinfo.format(), w, h)
}

/// The visible bytes of every plane, row by row (strides removed).
fn planes(buf: &gst::BufferRef, vinfo: &VideoInfo) -> Vec<Vec<u8>> {
    let vf = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, vinfo).expect("frame");
    geometry(vinfo)
        .into_iter()
        .enumerate()
        .map(|(p, (row, rows))| {
            let stride = vf.plane_stride()[p] as usize;
            let data = vf.plane_data(p as u32).expect("plane");
            (0..rows)
                .flat_map(|y| data[y * stride..][..row].to_vec())
                .collect()
        })
        .collect()
}

fn out_info(h: &Harness) -> VideoInfo {
    let caps = h
        .sinkpad()
        .expect("sinkpad")
        .current_caps()
        .expect("output caps");
    VideoInfo::from_caps(&caps).expect("output info")
}

fn pts_buffer(mut buf: gst::Buffer, i: u64) -> gst::Buffer {
    let b = buf.get_mut().expect("writable");
    b.set_pts(gst::ClockTime::from_mseconds(40 * i));
    b.set_duration(gst::ClockTime::from_mseconds(40));
    b.set_offset(i);
    buf
}

/// One `w`×`h` RGB frame drawn by `pattern` through a harness with `props`, then EOS: the
/// output's visible bytes and its info.
fn upscale_rgb(
    props: &[(&str, &dyn ToValue)],
    (w, hgt): (usize, usize),
    pattern: impl Fn(usize, usize, usize) -> u8,
) -> (Vec<u8>, VideoInfo) {
    let mut h = harness(props);
    h.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={hgt},framerate=25/1"
    ));
    h.push(frame(
        &info(VideoFormat::Rgb, w as u32, hgt as u32),
        pattern,
    ))
    .unwrap();
    h.push_event(gst::event::Eos::new());
    let out = h.pull().unwrap();
    let oinfo = out_info(&h);
    (planes(&out, &oinfo).remove(0), oinfo)
}

/// Waits for the element's first error (or warning) on `bus`.
fn bus_message(bus: &gst::Bus, types: &[gst::MessageType]) -> Option<gst::Message> {
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), types)
}

// ---------------------------------------------------------------------------------------------
// negotiation
// ---------------------------------------------------------------------------------------------

#[test]
fn caps_are_scaled_exactly_and_other_fields_kept() {
    init();
    for scale in 2u32..=4 {
        for (w, hgt) in [(33u32, 17u32), (64, 48)] {
            for (format, colorimetry) in [("RGB", "sRGB"), ("I420", "bt709"), ("NV12", "bt601")] {
                let mut h = harness(&[("scale", &scale)]);
                h.set_src_caps_str(&format!(
                    "video/x-raw,format={format},width={w},height={hgt},framerate=30000/1001,\
                     pixel-aspect-ratio=4/3,colorimetry={colorimetry}"
                ));
                let vinfo =
                    VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
                h.push(frame(&vinfo, |_, _, _| 100)).unwrap();
                h.push_event(gst::event::Eos::new());
                let out = h.pull().unwrap();
                let caps = h.sinkpad().unwrap().current_caps().unwrap();
                let s = caps.structure(0).unwrap();
                assert_eq!(s.get::<i32>("width").unwrap() as u32, w * scale, "{caps}");
                assert_eq!(
                    s.get::<i32>("height").unwrap() as u32,
                    hgt * scale,
                    "{caps}"
                );
                assert_eq!(s.get::<&str>("format").unwrap(), format);
                assert_eq!(
                    s.get::<gst::Fraction>("framerate").unwrap(),
                    gst::Fraction::new(30000, 1001)
                );
                assert_eq!(
                    s.get::<gst::Fraction>("pixel-aspect-ratio").unwrap(),
                    gst::Fraction::new(4, 3)
                );
                assert_eq!(s.get::<&str>("colorimetry").unwrap(), colorimetry);
                let oinfo = out_info(&h);
                assert!(out.size() >= oinfo.size());
            }
        }
    }
}

#[test]
fn compatible_downstream_size_negotiates() {
    init();
    let mut h = harness(&[("scale", &3u32)]);
    h.set_sink_caps_str("video/x-raw,width=99,height=51");
    h.set_src_caps_str("video/x-raw,format=RGB,width=33,height=17,framerate=25/1");
    let vinfo = info(VideoFormat::Rgb, 33, 17);
    h.push(frame(&vinfo, |_, _, _| 1)).unwrap();
    h.push_event(gst::event::Eos::new());
    h.pull().unwrap();
    assert_eq!(out_info(&h).width(), 99);
}

#[test]
fn impossible_downstream_size_is_not_negotiated() {
    init();
    let mut h = harness(&[("scale", &2u32)]);
    // 63 is no multiple of 2
    h.set_sink_caps_str("video/x-raw,width=63,height=48");
    h.set_src_caps_str("video/x-raw,format=RGB,width=32,height=24,framerate=25/1");
    let vinfo = info(VideoFormat::Rgb, 32, 24);
    assert_eq!(
        h.push(frame(&vinfo, |_, _, _| 1)),
        Err(gst::FlowError::NotNegotiated)
    );
}

#[test]
fn reverse_negotiation_divides_downstream_sizes() {
    init();
    let mut h = harness(&[("scale", &4u32)]);
    let sinkpad = h.element().unwrap().static_pad("sink").unwrap();
    h.set_sink_caps_str("video/x-raw,format=RGB,width=128,height=64");
    let caps = sinkpad.query_caps(None);
    let s = caps.structure(0).expect("upstream may send something");
    assert_eq!(s.get::<i32>("width"), Ok(32), "{caps}");
    assert_eq!(s.get::<i32>("height"), Ok(16), "{caps}");
    // 130 has no ×4 preimage
    h.set_sink_caps_str("video/x-raw,format=RGB,width=130,height=64");
    assert!(sinkpad.query_caps(None).is_empty());
}

#[test]
fn interlaced_input_is_refused() {
    init();
    let h = harness(&[]);
    let sinkpad = h.element().unwrap().static_pad("sink").unwrap();
    for caps in [
        "video/x-raw,format=RGB,width=32,height=24,framerate=25/1,interlace-mode=interleaved",
        "video/x-raw,format=P010_10LE,width=32,height=24,framerate=25/1,interlace-mode=mixed",
        "video/x-raw,format=YUY2,width=32,height=24,framerate=25/1,interlace-mode=interleaved",
        // formats the element does not take
        "video/x-raw,format=YV12,width=32,height=24,framerate=25/1",
        "video/x-raw,format=v210,width=48,height=24,framerate=25/1",
    ] {
        let caps = caps.parse::<gst::Caps>().unwrap();
        assert!(!sinkpad.query_accept_caps(&caps), "{caps}");
        assert!(!sinkpad.query_caps(None).can_intersect(&caps), "{caps}");
    }
}

#[test]
fn unsupported_caps_fail_negotiation_with_a_clear_error() {
    init();
    for (i, caps) in [
        "format=YV12,width=32,height=24",
        "format=v210,width=48,height=24",
        "format=P010_10LE,width=32,height=24,interlace-mode=interleaved",
    ]
    .into_iter()
    .enumerate()
    {
        // fixed caps in a launch line: the link itself is refused, naming the element
        let launch = format!(
            "videotestsrc num-buffers=1 ! video/x-raw,{caps} ! \
             imdnupscale model-path=test:nearest ! fakesink"
        );
        let err = Pipeline::launch(&launch)
            .err()
            .expect("refused at link time");
        assert!(
            err.contains("could not link") && err.contains(" to imdnupscale"),
            "{caps}: {err}"
        );
        // caps arriving in a stream: not negotiated, the frames refused
        let mut h = harness(&[]);
        let caps: gst::Caps = format!("video/x-raw,{caps},framerate=25/1")
            .parse()
            .unwrap();
        let _ = common::frames::start_stream(&mut h, &caps, i as u64);
        let frame = gst::Buffer::with_size(4 * 48 * 24).unwrap();
        assert_eq!(h.push(frame), Err(gst::FlowError::NotNegotiated), "{caps}");
        assert!(h.sinkpad().unwrap().current_caps().is_none(), "{caps}");
    }
}

// ---------------------------------------------------------------------------------------------
// pixels
// ---------------------------------------------------------------------------------------------

/// Nearest-neighbour reference on packed pixels of `bpp` bytes.
fn nearest_packed(src: &[u8], w: usize, h: usize, bpp: usize, s: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * s * h * s * bpp);
    for y in 0..h * s {
        for x in 0..w * s {
            out.extend_from_slice(&src[((y / s) * w + x / s) * bpp..][..bpp]);
        }
    }
    out
}

#[test]
fn padded_strides_give_exact_bytes() {
    init();
    let (w, hgt) = (33usize, 17usize);
    let vinfo = info(VideoFormat::Rgb, w as u32, hgt as u32);
    // the default layout pads RGB rows to 4 bytes: 99 → 100
    assert_eq!(vinfo.stride()[0], 100);
    let pattern = |_: usize, xb: usize, y: usize| ((xb * 7 + y * 13) % 251) as u8;
    let mut h = harness(&[("scale", &3u32)]);
    h.set_src_caps_str("video/x-raw,format=RGB,width=33,height=17,framerate=25/1");
    h.push(frame(&vinfo, pattern)).unwrap();

    // a custom layout through VideoMeta: stride 160, 8 bytes in front
    let stride = 160usize;
    let mut buf = gst::Buffer::with_size(8 + stride * hgt).unwrap();
    {
        let b = buf.get_mut().unwrap();
        {
            let mut map = b.map_writable().unwrap();
            map.fill(0xee);
            for y in 0..hgt {
                for xb in 0..w * 3 {
                    map[8 + y * stride + xb] = pattern(0, xb, y);
                }
            }
        }
        gst_video::VideoMeta::add_full(
            b,
            gst_video::VideoFrameFlags::empty(),
            VideoFormat::Rgb,
            w as u32,
            hgt as u32,
            &[8],
            &[stride as i32],
        )
        .unwrap();
    }
    h.push(buf).unwrap();
    h.push_event(gst::event::Eos::new());

    let src: Vec<u8> = (0..hgt)
        .flat_map(|y| (0..w * 3).map(move |xb| pattern(0, xb, y)))
        .collect();
    let expected = nearest_packed(&src, w, hgt, 3, 3);
    let oinfo = out_info(&h);
    assert_eq!((oinfo.width(), oinfo.height()), (99, 51));
    for _ in 0..2 {
        let out = h.pull().unwrap();
        assert_eq!(planes(&out, &oinfo)[0], expected);
    }
}

#[test]
fn packed_formats_swizzle_and_keep_alpha() {
    init();
    let (w, hgt) = (5usize, 3usize);
    // the packed formats but RGB
    for format in FORMATS
        .into_iter()
        .filter(|&f| !is_yuv(f) && f != VideoFormat::Rgb)
    {
        let vinfo = info(format, w as u32, hgt as u32);
        let (bpp, alpha_at, pad_at) = packed_layout(format);
        // colour bytes vary, alpha is flat 200 (bilinear keeps it), padding is 0x00
        let pattern = |_: usize, xb: usize, y: usize| {
            let c = xb % bpp;
            if Some(c) == alpha_at {
                200
            } else if Some(c) == pad_at {
                0
            } else {
                ((xb * 31 + y * 17) % 256) as u8
            }
        };
        let mut h = harness(&[("scale", &2u32)]);
        h.set_src_caps_str(&format!(
            "video/x-raw,format={},width={w},height={hgt},framerate=25/1",
            format.to_str()
        ));
        h.push(frame(&vinfo, pattern)).unwrap();
        h.push_event(gst::event::Eos::new());
        let out = h.pull().unwrap();
        let src: Vec<u8> = (0..hgt)
            .flat_map(|y| (0..w * bpp).map(move |xb| pattern(0, xb, y)))
            .collect();
        let mut expected = nearest_packed(&src, w, hgt, bpp, 2);
        if let Some(p) = pad_at {
            // padding bytes are written as 0xff
            expected
                .iter_mut()
                .skip(p)
                .step_by(4)
                .for_each(|b| *b = 0xff);
        }
        assert_eq!(planes(&out, &out_info(&h))[0], expected, "{format:?}");
    }
}

#[test]
fn alpha_is_resized_bilinearly() {
    init();
    let vinfo = info(VideoFormat::Rgba, 2, 1);
    let mut h = harness(&[("scale", &2u32)]);
    h.set_src_caps_str("video/x-raw,format=RGBA,width=2,height=1,framerate=25/1");
    // alpha 0 then 200
    h.push(frame(&vinfo, |_, xb, _| {
        if xb == 3 {
            0
        } else if xb == 7 {
            200
        } else {
            9
        }
    }))
    .unwrap();
    h.push_event(gst::event::Eos::new());
    let out = h.pull().unwrap();
    let bytes = &planes(&out, &out_info(&h))[0];
    let alpha: Vec<u8> = bytes.iter().skip(3).step_by(4).copied().collect();
    // centres at -0.25, 0.25, 0.75, 1.25 input pixels → 0, 50, 150, 200 on both rows
    assert_eq!(alpha, [0, 50, 150, 200, 0, 50, 150, 200]);
}

fn yuv_round_trip(format: VideoFormat, colorimetry: &str, (w, hgt): (u32, u32), yuv: [u8; 3]) {
    let mut h = harness(&[("scale", &2u32)]);
    h.set_src_caps_str(&format!(
        "video/x-raw,format={},width={w},height={hgt},framerate=25/1,colorimetry={colorimetry}",
        format.to_str()
    ));
    let vinfo = VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
    let nv12 = format == VideoFormat::Nv12;
    let buf = frame(&vinfo, |p, xb, _| match (p, nv12) {
        (0, _) => yuv[0],
        (1, true) => yuv[1 + xb % 2],
        (p, _) => yuv[p],
    });
    h.push(buf).unwrap();
    h.push_event(gst::event::Eos::new());
    let out = h.pull().unwrap();
    let oinfo = out_info(&h);
    assert_eq!((oinfo.width(), oinfo.height()), (2 * w, 2 * hgt));
    assert_eq!(oinfo.format(), format);
    let planes = planes(&out, &oinfo);
    let check = |name: &str, got: &[u8], want: u8| {
        assert!(!got.is_empty());
        for &v in got {
            assert!(
                (i32::from(v) - i32::from(want)).abs() <= 2,
                "{format:?} {colorimetry} {name}: {v} vs {want}"
            );
        }
    };
    check("Y", &planes[0], yuv[0]);
    if nv12 {
        let u: Vec<u8> = planes[1].iter().step_by(2).copied().collect();
        let v: Vec<u8> = planes[1].iter().skip(1).step_by(2).copied().collect();
        assert_eq!(u.len(), (w as usize) * (hgt as usize));
        check("U", &u, yuv[1]);
        check("V", &v, yuv[2]);
    } else {
        assert_eq!(planes[1].len(), (w as usize) * (hgt as usize));
        check("U", &planes[1], yuv[1]);
        check("V", &planes[2], yuv[2]);
    }
}

#[test]
fn i420_round_trip_keeps_a_flat_colour() {
    init();
    // in-gamut colours, limited and full range (1:4:0:0 = full-range BT.601), even and odd sizes
    yuv_round_trip(VideoFormat::I420, "bt709", (32, 24), [63, 102, 240]);
    yuv_round_trip(VideoFormat::I420, "bt601", (33, 17), [145, 54, 34]);
    yuv_round_trip(VideoFormat::I420, "1:4:0:0", (33, 17), [128, 128, 128]);
    yuv_round_trip(VideoFormat::I420, "bt2020", (16, 9), [100, 150, 90]);
}

#[test]
fn nv12_round_trip_keeps_a_flat_colour() {
    init();
    yuv_round_trip(VideoFormat::Nv12, "bt601", (32, 24), [81, 90, 240]);
    yuv_round_trip(VideoFormat::Nv12, "bt709", (33, 17), [85, 187, 112]);
    yuv_round_trip(VideoFormat::Nv12, "1:4:0:0", (7, 5), [200, 100, 160]);
}

/// A luma code of `yf`'s depth whose R'G'B' stays inside the cube with any chroma of
/// [`yuv_chroma`] (0.2..0.8 of the limited range), every residue mod 4 at 10 bits.
fn yuv_luma(yf: &YuvFormat, seed: u64, x: usize, y: usize) -> u16 {
    let u = yf.unit();
    let v =
        common::frames::px(seed, x, y, 0) as u16 * 256 + common::frames::px(seed, x, y, 1) as u16;
    60 * u + v % (131 * u + 1)
}

/// A chroma code within ±22 (8-bit) steps of neutral, flat along the subsampled axes (so that
/// bilinear upsampling gives it back exactly) and varying along the others.
fn yuv_chroma(yf: &YuvFormat, seed: u64, c: usize, cx: usize, cy: usize) -> u16 {
    let u = yf.unit();
    let x = if yf.sub.0 == 1 { cx } else { 0 };
    let y = if yf.sub.1 == 1 { cy } else { 0 };
    let v = common::frames::px(seed, x, y, c) as u16 * 256
        + common::frames::px(seed, x, y, c + 2) as u16;
    (1 << (yf.depth - 1)) - 22 * u + v % (44 * u + 1)
}

/// One frame per layout (the default one and a random padded one) of `format` at `(w, h)`
/// through the nearest backend at `scale`: every luma and chroma sample of the output must be
/// the input's, repeated (raw samples compared: P010's low 6 bits must be 0).
fn yuv_upscale_exactly(
    format: VideoFormat,
    colorimetry: &str,
    (w, hgt): (usize, usize),
    scale: usize,
) {
    let yf = yuv_format(format).unwrap();
    let mut h = harness(&[("scale", &(scale as u32))]);
    h.set_src_caps_str(&format!(
        "video/x-raw,format={},width={w},height={hgt},framerate=25/1,colorimetry={colorimetry}",
        format.to_str()
    ));
    let vinfo = VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
    let mut rng = XorShift::new(0x5eed_0042 ^ (w * 131 + hgt) as u64);
    let what = |seed: u64| format!("{format:?} {colorimetry} {w}x{hgt} ×{scale} frame {seed}");
    let code = move |seed: u64, c: usize, x: usize, y: usize| {
        if c == 0 {
            yuv_luma(&yf, seed, x, y)
        } else {
            yuv_chroma(&yf, seed, c, x, y)
        }
    };
    for seed in 0..2u64 {
        let lay = common::frames::layout(&vinfo, (seed == 1).then_some(&mut rng));
        h.push(pts_buffer(
            yuv_frame(&vinfo, &lay, |c, x, y| code(seed, c, x, y)),
            seed,
        ))
        .unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let oinfo = out_info(&h);
    assert_eq!(
        (
            oinfo.width() as usize,
            oinfo.height() as usize,
            oinfo.format()
        ),
        (w * scale, hgt * scale, format)
    );
    let (ow, oh) = (w * scale, hgt * scale);
    let shift = yf.wide.unwrap_or(0);
    for seed in 0..2u64 {
        let out = h.pull().unwrap();
        let got = yuv_samples(&out, &oinfo);
        for (c, samples) in got.iter().enumerate() {
            let (n, rows) = yf.samples(c, ow, oh);
            assert_eq!(samples.len(), n * rows);
            // the input position behind output sample (x, y) of component c (a subsampling
            // block of output pixels maps into one block of input pixels)
            let (sx, sy) = if c == 0 { (1, 1) } else { yf.sub };
            for y in 0..rows {
                for x in 0..n {
                    let want = code(seed, c, x * sx / scale / sx, y * sy / scale / sy) << shift;
                    let v = samples[y * n + x];
                    assert_eq!(v, want, "{}: component {c} at {x},{y}", what(seed));
                }
            }
        }
    }
}

#[test]
fn yuv_formats_upscale_exactly_with_padded_strides() {
    init();
    use VideoFormat::*;
    for format in [I420, Nv12, Nv21, Y42b, Y444, Yuy2, Uyvy, I42010le, P01010le] {
        // odd sizes (4:2:2 packed: an odd width ends in half a macropixel), limited and full
        // range; ×3 gives odd output sizes
        yuv_upscale_exactly(format, "bt709", (33, 17), 2);
        yuv_upscale_exactly(format, "1:4:0:0", (7, 5), 3);
        yuv_upscale_exactly(format, "bt601", (6, 4), 2);
    }
}

#[test]
fn ten_bit_codes_survive_end_to_end() {
    init();
    // codes that are no multiple of 4 (in 10-bit units): any 8-bit step on the way loses them
    for format in [VideoFormat::I42010le, VideoFormat::P01010le] {
        for colorimetry in ["bt2020", "bt709"] {
            let (w, hgt) = (9usize, 7usize);
            let yf = yuv_format(format).unwrap();
            let luma = |x: usize, y: usize| {
                241 + 4 * ((x * 37 + y * 101) % 130) as u16 + ((x + y) % 3) as u16
            };
            let chroma = [0, 573u16, 467];
            let mut h = harness(&[("scale", &2u32)]);
            h.set_src_caps_str(&format!(
                "video/x-raw,format={},width={w},height={hgt},framerate=25/1,\
                 colorimetry={colorimetry}",
                format.to_str()
            ));
            let vinfo = VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
            let lay = common::frames::layout(&vinfo, None);
            h.push(yuv_frame(&vinfo, &lay, |c, x, y| {
                if c == 0 { luma(x, y) } else { chroma[c] }
            }))
            .unwrap();
            h.push_event(gst::event::Eos::new());
            let out = h.pull().unwrap();
            let oinfo = out_info(&h);
            let got = yuv_samples(&out, &oinfo);
            let shift = yf.wide.unwrap();
            let low_bits = (1u16 << shift) - 1;
            for (c, samples) in got.iter().enumerate() {
                assert!(
                    samples.iter().all(|v| v & low_bits == 0),
                    "{format:?}: bits below the code are not 0"
                );
                let codes: Vec<u16> = samples.iter().map(|v| v >> shift).collect();
                let want: Vec<u16> = if c == 0 {
                    (0..2 * hgt)
                        .flat_map(|y| (0..2 * w).map(move |x| luma(x / 2, y / 2)))
                        .collect()
                } else {
                    vec![chroma[c]; w * hgt]
                };
                assert_eq!(codes, want, "{format:?} {colorimetry} component {c}");
            }
        }
    }
}

#[test]
fn gray8_round_trips_exactly() {
    init();
    // no colorimetry in the caps: GStreamer's default for GRAY8 is full range
    let vinfo = info(VideoFormat::Gray8, 16, 16);
    assert_eq!(
        vinfo.colorimetry().range(),
        gst_video::VideoColorRange::Range0_255
    );
    let mut rng = XorShift::new(0x5eed_0808);
    // every code, then an odd size; default and padded layouts; full and limited range
    for (colorimetry, (w, hgt), lo, hi) in [
        ("", (16usize, 16usize), 0u16, 255u16),
        ("", (17, 15), 0, 255),
        (",colorimetry=bt601", (17, 15), 16, 235),
    ] {
        let code = |x: usize, y: usize| -> u16 {
            let v = ((y * w + x) * 7) as u16 % 256;
            if w == 16 {
                (y * w + x) as u16
            } else {
                lo + v % (hi - lo + 1)
            }
        };
        let mut h = harness(&[("scale", &2u32)]);
        h.set_src_caps_str(&format!(
            "video/x-raw,format=GRAY8,width={w},height={hgt},framerate=25/1{colorimetry}"
        ));
        let vinfo = VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
        for padded in [false, true] {
            let lay = common::frames::layout(&vinfo, padded.then_some(&mut rng));
            h.push(yuv_frame(&vinfo, &lay, |_, x, y| code(x, y)))
                .unwrap();
        }
        h.push_event(gst::event::Eos::new());
        let want: Vec<u16> = (0..2 * hgt)
            .flat_map(|y| (0..2 * w).map(move |x| code(x / 2, y / 2)))
            .collect();
        for _ in 0..2 {
            let out = h.pull().unwrap();
            let got = yuv_samples(&out, &out_info(&h));
            assert_eq!(got.len(), 1);
            assert_eq!(got[0], want, "GRAY8{colorimetry} {w}x{hgt}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pipeline depth, events
// ---------------------------------------------------------------------------------------------

#[test]
fn frames_in_flight_and_eos_drain_keep_order_and_timestamps() {
    init();
    let vinfo = info(VideoFormat::Rgb, 8, 6);
    for depth in 0..=3i32 {
        let mut h = harness(&[("max-frames-in-flight", &depth)]);
        h.set_src_caps_str("video/x-raw,format=RGB,width=8,height=6,framerate=25/1");
        for k in 1..=6u64 {
            let mut buf = pts_buffer(frame(&vinfo, move |_, _, _| k as u8), k);
            if k == 1 {
                buf.get_mut().unwrap().set_flags(gst::BufferFlags::DISCONT);
            }
            h.push(buf).unwrap();
            assert_eq!(
                h.buffers_in_queue() as u64,
                k.saturating_sub(depth as u64),
                "depth {depth}, after {k} pushes"
            );
        }
        assert!(h.push_event(gst::event::Eos::new()));
        assert_eq!(h.buffers_in_queue(), 6, "EOS drains everything");
        let oinfo = out_info(&h);
        for k in 1..=6u64 {
            let out = h.pull().unwrap();
            assert_eq!(out.pts(), Some(gst::ClockTime::from_mseconds(40 * k)));
            assert_eq!(out.duration(), Some(gst::ClockTime::from_mseconds(40)));
            assert_eq!(out.offset(), k);
            assert_eq!(out.flags().contains(gst::BufferFlags::DISCONT), k == 1);
            assert!(planes(&out, &oinfo)[0].iter().all(|&b| b == k as u8));
        }
        // the EOS event comes after the frames
        let mut saw_eos = false;
        while let Some(ev) = h.try_pull_event() {
            saw_eos |= ev.type_() == gst::EventType::Eos;
        }
        assert!(saw_eos);
        let processed: u64 = h.element().unwrap().property("frames-processed");
        assert_eq!(processed, 6);
    }
}

#[test]
fn flush_discards_frames_in_flight() {
    init();
    let vinfo = info(VideoFormat::Rgb, 8, 6);
    let mut h = harness(&[("max-frames-in-flight", &3i32)]);
    h.set_src_caps_str("video/x-raw,format=RGB,width=8,height=6,framerate=25/1");
    for k in 1..=3 {
        h.push(pts_buffer(frame(&vinfo, |_, _, _| 1), k)).unwrap();
    }
    assert_eq!(h.buffers_in_queue(), 0);
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    h.push(pts_buffer(frame(&vinfo, |_, _, _| 2), 10)).unwrap();
    assert!(h.push_event(gst::event::Eos::new()));
    assert_eq!(h.buffers_in_queue(), 1, "only the frame after the flush");
    let out = h.pull().unwrap();
    assert_eq!(out.pts(), Some(gst::ClockTime::from_mseconds(400)));
    assert!(planes(&out, &out_info(&h))[0].iter().all(|&b| b == 2));
}

#[test]
fn caps_change_drains_old_frames_first() {
    init();
    let mut h = harness(&[("max-frames-in-flight", &2i32)]);
    h.set_src_caps_str("video/x-raw,format=RGB,width=8,height=6,framerate=25/1");
    let old = info(VideoFormat::Rgb, 8, 6);
    for k in 1..=3 {
        h.push(pts_buffer(frame(&old, |_, _, _| 1), k)).unwrap();
    }
    assert_eq!(h.buffers_in_queue(), 1);
    let new_caps: gst::Caps = "video/x-raw,format=I420,width=10,height=4,framerate=25/1"
        .parse()
        .unwrap();
    assert!(h.push_event(gst::event::Caps::new(&new_caps)));
    // the two old frames came out before the new caps reached downstream
    assert_eq!(h.buffers_in_queue(), 3);
    let old_out = info(VideoFormat::Rgb, 16, 12);
    for _ in 0..3 {
        let out = h.pull().unwrap();
        assert_eq!(planes(&out, &old_out)[0].len(), 16 * 12 * 3);
        assert!(planes(&out, &old_out)[0].iter().all(|&b| b == 1));
    }
    let new = VideoInfo::from_caps(&new_caps).unwrap();
    h.push(pts_buffer(frame(&new, |_, _, _| 128), 4)).unwrap();
    h.push_event(gst::event::Eos::new());
    let out = h.pull().unwrap();
    let oinfo = out_info(&h);
    assert_eq!(
        (oinfo.format(), oinfo.width(), oinfo.height()),
        (VideoFormat::I420, 20, 8)
    );
    assert_eq!(planes(&out, &oinfo)[0].len(), 20 * 8);
}

/// The output planes of `frames` (format, width, height, pattern seed) pushed through one
/// element in order, caps set before each frame.
fn outputs_of(
    props: &[(&str, &dyn ToValue)],
    frames: &[(VideoFormat, u32, u32, usize)],
) -> Vec<Vec<Vec<u8>>> {
    let mut h = harness(props);
    let mut outs = Vec::new();
    for (k, &(format, w, hgt, seed)) in frames.iter().enumerate() {
        let caps = format!(
            "video/x-raw,format={},width={w},height={hgt},framerate=25/1",
            format.to_str()
        );
        h.set_src_caps_str(&caps);
        let vinfo = info(format, w, hgt);
        let buf = frame(&vinfo, |p, xb, y| {
            ((xb * 7 + y * 13 + p * 29 + seed * 3) % 251) as u8
        });
        h.push(pts_buffer(buf, k as u64)).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    for &(format, w, hgt, _) in frames {
        let out = h.pull().unwrap();
        // scale 2 (the default), same format
        outs.push(planes(&out, &info(format, 2 * w, 2 * hgt)));
    }
    outs
}

#[test]
fn reused_buffers_never_leak_one_frame_into_the_next() {
    // the worker hands planar buffers and conversion scratch from frame to frame: a long-lived
    // element must give every frame exactly what a fresh element gives it
    init();
    use VideoFormat::{I420, Nv12, Rgb, Rgba};
    let frames = [
        (I420, 9, 7, 1),
        (I420, 9, 7, 2),
        (Nv12, 6, 4, 3),
        (Rgba, 5, 5, 4),
        (I420, 11, 3, 5),
        (Rgb, 9, 7, 6),
        (Nv12, 9, 7, 7),
    ];
    for depth in [0i32, 2] {
        let props: [(&str, &dyn ToValue); 1] = [("max-frames-in-flight", &depth)];
        let long_lived = outputs_of(&props, &frames);
        for (k, f) in frames.iter().enumerate() {
            let fresh = outputs_of(&props, std::slice::from_ref(f));
            assert!(
                long_lived[k] == fresh[0],
                "frame {k} {f:?} at depth {depth}"
            );
        }
    }
}

#[test]
fn regions_of_interest_are_scaled_with_the_frame() {
    init();
    let mut h = harness(&[("scale", &3u32), ("max-frames-in-flight", &2i32)]);
    h.set_src_caps_str("video/x-raw,format=RGB,width=20,height=10,framerate=25/1");
    let vinfo = info(VideoFormat::Rgb, 20, 10);
    let mut buf = frame(&vinfo, |_, _, _| 9);
    gst_video::VideoRegionOfInterestMeta::add(buf.get_mut().unwrap(), "face", (2, 3, 5, 4));
    h.push(buf).unwrap();
    h.push_event(gst::event::Eos::new());
    let out = h.pull().unwrap();
    let rois: Vec<_> = out
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|m| (m.roi_type().to_string(), m.rect()))
        .collect();
    assert_eq!(rois, [("face".to_string(), (6, 9, 15, 12))]);
}

#[test]
fn latency_adds_depth_frames_and_processing_time() {
    init();
    let mut h = harness(&[
        ("max-frames-in-flight", &2i32),
        ("processing-latency", &5_000_000u64),
    ]);
    h.set_upstream_latency(gst::ClockTime::from_mseconds(10));
    h.set_src_caps_str("video/x-raw,format=RGB,width=8,height=6,framerate=25/1");
    let mut q = gst::query::Latency::new();
    assert!(h.sinkpad().unwrap().peer_query(&mut q));
    let (live, min, max) = q.result();
    assert!(live, "the harness source is live; the flag passes through");
    // 10 ms upstream + 2 × 40 ms + 5 ms
    assert_eq!(min, gst::ClockTime::from_mseconds(95));
    // the harness reports no upstream maximum: none stays none
    assert_eq!(max, None);
}

#[test]
fn auto_depth_is_one_frame_when_live() {
    init();
    let mut h = harness(&[]);
    h.set_upstream_latency(gst::ClockTime::ZERO);
    h.set_src_caps_str("video/x-raw,format=RGB,width=8,height=6,framerate=50/1");
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_mseconds(20)));
    let vinfo = info(VideoFormat::Rgb, 8, 6);
    h.push(frame(&vinfo, |_, _, _| 1)).unwrap();
    assert_eq!(h.buffers_in_queue(), 0);
    h.push(frame(&vinfo, |_, _, _| 1)).unwrap();
    assert_eq!(h.buffers_in_queue(), 1);
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

fn error_of(msg: &gst::Message) -> glib::Error {
    match msg.view() {
        gst::MessageView::Error(e) => e.error(),
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn without_model_path_the_shipped_models_run() {
    init();
    let (w, hgt) = (10usize, 6usize);
    let pattern = |_: usize, xb: usize, y: usize| ((xb * 13 + y * 29) % 256) as u8;
    // auto on the CPU is the real-time IMDN_RTC; model=imdn the 64-channel one; model=as the
    // arbitrary-scale one (bicubic ×3, then the network)
    for (model, variant) in [
        ("auto", imdn::model::Variant::Rtc),
        ("imdn", imdn::model::Variant::Imdn),
        ("as", imdn::model::Variant::As),
    ] {
        let props: [(&str, &dyn ToValue); 5] = [
            ("model-path", &None::<String>),
            ("model", &model),
            ("scale", &3u32),
            ("device", &"cpu"),
            ("n-threads", &1u32),
        ];
        let (got, oinfo) = upscale_rgb(&props, (w, hgt), pattern);
        assert_eq!((oinfo.width(), oinfo.height()), (30, 18));

        let shipped = imdn::weights::shipped::SHIPPED
            .iter()
            .find(|m| m.variant == variant && (m.scale == 3 || variant == imdn::model::Variant::As))
            .unwrap();
        let mut upscaler = imdn::engine::Upscaler::from_tensors(
            shipped.tensors().unwrap(),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_like_library(&mut upscaler, pattern, (w, hgt), 3, &got);
    }
}

#[test]
fn shipped_model_by_name() {
    init();
    // a shipped model's name works as model-path
    let elem = element(&[
        ("model-path", &"imdn_rtc_x4"),
        ("scale", &4u32),
        ("device", &"cpu"),
    ]);
    let pipeline = gst::Pipeline::new();
    pipeline.add(&elem).unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_ok());
    pipeline.set_state(gst::State::Null).unwrap();

    // and one of another network than `model` asks for is refused, naming both
    let elem = element(&[
        ("model-path", &"imdn_rtc_x2"),
        ("model", &"imdn"),
        ("device", &"cpu"),
    ]);
    let err = start_alone(elem).expect("IMDN_RTC weights for model=imdn must fail");
    assert!(err.message().contains("IMDN_RTC"), "{err}");
}

#[test]
fn absent_or_bad_weights_fail_the_state_change() {
    init();
    let elem = element(&[("model-path", &"/nonexistent/imdn.safetensors")]);
    let err = start_alone(elem).expect("start must fail");
    assert!(err.matches(gst::ResourceError::NotFound), "{err}");
    assert!(
        err.message().contains("/nonexistent/imdn.safetensors"),
        "{err}"
    );

    let path = temp_path("bad.safetensors");
    std::fs::write(&path, b"not weights at all").unwrap();
    let elem = element(&[("model-path", &path.to_str().unwrap())]);
    let err = start_alone(elem).expect("start must fail");
    assert!(err.matches(gst::ResourceError::OpenRead), "{err}");
    assert!(err.message().contains("bad.safetensors"), "{err}");
    let _ = std::fs::remove_file(path);
}

fn run_failing_backend(model_path: &str) {
    let mut h = harness(&[("model-path", &model_path), ("max-frames-in-flight", &0i32)]);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_src_caps_str("video/x-raw,format=RGB,width=8,height=6,framerate=25/1");
    let vinfo = info(VideoFormat::Rgb, 8, 6);
    assert_eq!(
        h.push(frame(&vinfo, |_, _, _| 1)),
        Err(gst::FlowError::Error)
    );
    let msg = bus_message(&bus, &[gst::MessageType::Error]).expect("element error");
    let err = error_of(&msg);
    assert!(err.matches(gst::StreamError::Failed), "{err}");
    assert!(err.message().contains(model_path), "{err}");
}

#[test]
fn runtime_errors_and_panics_become_element_errors() {
    init();
    run_failing_backend("test:error");
    run_failing_backend("test:panic");
}

// ---------------------------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------------------------

#[test]
fn properties_have_documented_defaults_and_ranges() {
    init();
    let elem = gst::ElementFactory::make("imdnupscale").build().unwrap();
    assert_eq!(elem.property::<u32>("scale"), 2);
    assert_eq!(elem.property::<Option<String>>("model-path"), None);
    assert_eq!(elem.property::<u32>("device-id"), 0);
    assert_eq!(elem.property::<u32>("tile-size"), 0);
    assert_eq!(elem.property::<i32>("max-frames-in-flight"), -1);
    assert_eq!(elem.property::<u32>("n-threads"), 0);
    assert_eq!(elem.property::<u64>("processing-latency"), 0);
    assert_eq!(elem.property::<u64>("frames-processed"), 0);
    assert!(elem.property::<bool>("fallback-to-cpu"));
    assert_eq!(
        elem.property_value("edge-mode")
            .get::<&glib::EnumValue>()
            .unwrap()
            .nick(),
        "replicate"
    );
    assert_eq!(
        elem.property_value("model")
            .get::<&glib::EnumValue>()
            .unwrap()
            .nick(),
        "auto"
    );
    assert_eq!(
        elem.property_value("device")
            .get::<&glib::EnumValue>()
            .unwrap()
            .nick(),
        "auto"
    );

    // readback
    elem.set_property("scale", 4u32);
    elem.set_property("max-frames-in-flight", 8i32);
    elem.set_property("tile-size", 256u32);
    elem.set_property_from_str("device", "cpu");
    assert_eq!(elem.property::<u32>("scale"), 4);
    assert_eq!(elem.property::<i32>("max-frames-in-flight"), 8);
    assert_eq!(elem.property::<u32>("tile-size"), 256);
    assert_eq!(
        elem.property_value("device")
            .get::<&glib::EnumValue>()
            .unwrap()
            .nick(),
        "cpu"
    );

    // ranges, as enforced by the ParamSpecs (setting outside them is a g_warning)
    let uint = |name: &str| {
        let p = elem.find_property(name).unwrap();
        let p = p.downcast::<glib::ParamSpecUInt>().unwrap();
        (p.minimum(), p.maximum())
    };
    assert_eq!(uint("scale"), (0, 4));
    assert_eq!(uint("tile-size"), (0, 32767));
    let depth = elem
        .find_property("max-frames-in-flight")
        .unwrap()
        .downcast::<glib::ParamSpecInt>()
        .unwrap();
    assert_eq!((depth.minimum(), depth.maximum()), (-1, 8));
    let latency = elem
        .find_property("processing-latency")
        .unwrap()
        .downcast::<glib::ParamSpecUInt64>()
        .unwrap();
    assert_eq!(latency.minimum(), 0);
    assert!(latency.flags().contains(glib::ParamFlags::WRITABLE));
    let processed = elem.find_property("frames-processed").unwrap();
    assert!(!processed.flags().contains(glib::ParamFlags::WRITABLE));
}

// ---------------------------------------------------------------------------------------------
// a real pipeline
// ---------------------------------------------------------------------------------------------

#[test]
fn flushing_seeks_in_a_pipeline_do_not_deadlock() {
    init();
    // a failed assertion must still stop the pipeline (disposing a playing one is a critical)
    let pipeline = Pipeline::launch(
        "videotestsrc ! video/x-raw,format=I420,width=64,height=48,framerate=30/1 ! \
         imdnupscale model-path=test:nearest max-frames-in-flight=3 ! fakesink sync=false",
    )
    .unwrap();
    let bus = pipeline.bus();
    // an error is a failure too
    let wait = |msg_type| wait_for(&bus, &[msg_type], WAIT).unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    wait(gst::MessageType::AsyncDone);
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for round in 0..3u64 {
        // play one second of stream time, then EOS at the stop position
        pipeline
            .seek(
                1.0,
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::SeekType::Set,
                gst::ClockTime::from_mseconds(100 * round),
                gst::SeekType::Set,
                gst::ClockTime::from_mseconds(100 * round + 1000),
            )
            .unwrap();
        // a second flushing seek while the first is in flight
        if round == 1 {
            pipeline
                .seek(
                    1.0,
                    gst::SeekFlags::FLUSH,
                    gst::SeekType::Set,
                    gst::ClockTime::from_mseconds(500),
                    gst::SeekType::Set,
                    gst::ClockTime::from_mseconds(1500),
                )
                .unwrap();
        }
        wait(gst::MessageType::Eos);
    }
}

// ---------------------------------------------------------------------------------------------
// the real network
// ---------------------------------------------------------------------------------------------

/// Random-init IMDN_RTC ×2 weights in a safetensors file.
fn rtc_weights(name: &str) -> PathBuf {
    weights(name, imdn::model::Config::rtc(2))
}

/// Asserts that `got` (packed RGB, `scale ×` the `w`×`h` frame drawn by `pattern`) is within
/// one level of what the library's `upscaler` makes of the same frame.
fn assert_like_library(
    upscaler: &mut imdn::engine::Upscaler,
    pattern: impl Fn(usize, usize, usize) -> u8,
    (w, h): (usize, usize),
    scale: usize,
    got: &[u8],
) {
    // the element's default edge mode
    upscaler.set_edge_mode(imdn::acs::EdgeMode::Replicate);
    let pattern = &pattern;
    let src: Vec<u8> = (0..h)
        .flat_map(|y| (0..w * 3).map(move |xb| pattern(0, xb, y)))
        .collect();
    let expected = upscaler
        .upscale_u8(&src, (w, h), 3, (scale * w, scale * h))
        .unwrap();
    assert_eq!(got.len(), expected.len());
    let off = got
        .iter()
        .zip(&expected)
        .filter(|(a, b)| (i32::from(**a) - i32::from(**b)).abs() > 1)
        .count();
    assert_eq!(off, 0, "bytes more than 1 away from the library's output");
}

#[test]
fn real_imdn_rtc_matches_the_library() {
    init();
    let path = rtc_weights("rtc_x2.safetensors");
    let (w, hgt) = (12usize, 8usize);
    let pattern = |_: usize, xb: usize, y: usize| ((xb * 19 + y * 41) % 256) as u8;
    let props: [(&str, &dyn ToValue); 3] = [
        ("model-path", &path.to_str().unwrap()),
        ("device", &"cpu"),
        ("n-threads", &1u32),
    ];
    let (got, oinfo) = upscale_rgb(&props, (w, hgt), pattern);
    assert_eq!((oinfo.width(), oinfo.height()), (24, 16));

    let mut upscaler = imdn::engine::Upscaler::load(&path, &candle_core::Device::Cpu).unwrap();
    assert_like_library(&mut upscaler, pattern, (w, hgt), 2, &got);
    let _ = std::fs::remove_file(path);
}

#[test]
fn real_imdn_with_tiles_and_yuv() {
    init();
    let path = rtc_weights("rtc_x2_tiles.safetensors");
    let mut h = harness(&[
        ("model-path", &path.to_str().unwrap()),
        ("device", &"cpu"),
        // more than the 44-pixel overlap (IMDN_RTC's reach, twice)
        ("tile-size", &48u32),
    ]);
    h.set_src_caps_str("video/x-raw,format=NV12,width=100,height=60,framerate=25/1");
    let vinfo = VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
    h.push(frame(&vinfo, |p, xb, y| {
        if p == 0 { (xb * 5 + y * 3) as u8 } else { 128 }
    }))
    .unwrap();
    h.push_event(gst::event::Eos::new());
    h.pull().unwrap();
    let oinfo = out_info(&h);
    assert_eq!(
        (oinfo.format(), oinfo.width(), oinfo.height()),
        (VideoFormat::Nv12, 200, 120)
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn real_imdn_scale_mismatch_and_cuda_errors() {
    init();
    let path = rtc_weights("rtc_x2_errors.safetensors");
    let p = path.to_str().unwrap();
    let err = start_alone(element(&[
        ("model-path", &p),
        ("scale", &3u32),
        ("device", &"cpu"),
    ]))
    .expect("×2 weights with scale=3 must fail");
    assert!(err.matches(gst::ResourceError::Settings), "{err}");
    assert!(err.message().contains("scale=3"), "{err}");

    #[cfg(not(feature = "cuda"))]
    {
        let err = start_alone(element(&[("model-path", &p), ("device", &"cuda")]))
            .expect("device=cuda on a CPU build must fail");
        assert!(err.matches(gst::ResourceError::OpenRead), "{err}");
        assert!(err.message().contains("CUDA"), "{err}");

        // auto in a build without CUDA: the CPU, as expected, so no warning (start posts any
        // warning before the state change returns)
        let elem = element(&[("model-path", &p)]);
        let pipeline = gst::Pipeline::new();
        pipeline.add(&elem).unwrap();
        pipeline.set_state(gst::State::Paused).unwrap();
        let msg = pipeline
            .bus()
            .unwrap()
            .pop_filtered(&[gst::MessageType::Warning, gst::MessageType::Error]);
        assert!(msg.is_none(), "device=auto on a CPU build posted {msg:?}");
        pipeline.set_state(gst::State::Null).unwrap();
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn real_imdn_as_runs_at_scale_3() {
    init();
    let path = weights("as.safetensors", imdn::model::Config::imdn_as());
    let (w, hgt) = (8usize, 4usize);
    let pattern = |_: usize, xb: usize, y: usize| ((xb * 23 + y * 7) % 256) as u8;
    let props: [(&str, &dyn ToValue); 3] = [
        ("model-path", &path.to_str().unwrap()),
        ("device", &"cpu"),
        ("scale", &3u32),
    ];
    let (got, oinfo) = upscale_rgb(&props, (w, hgt), pattern);
    assert_eq!((oinfo.width(), oinfo.height()), (24, 12));

    // the library's arbitrary-scale path: bicubic to the target size, then the network
    let mut upscaler = imdn::engine::Upscaler::load(&path, &candle_core::Device::Cpu).unwrap();
    assert_like_library(&mut upscaler, pattern, (w, hgt), 3, &got);
    let _ = std::fs::remove_file(path);
}

/// Runs `launch` (ending in `appsink name=out`) for one frame and returns its bytes.
fn one_frame(launch: &str) -> Vec<u8> {
    let pipeline = Pipeline::launch(launch).unwrap();
    let sink = pipeline.by_name("out").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .emit_by_name::<Option<gst::Sample>>("pull-sample", &[])
        .expect("a frame");
    let map = sample.buffer().unwrap().map_readable().unwrap();
    map.to_vec()
}

#[test]
fn yuv_conversion_agrees_with_videoconvert() {
    init();
    // SMPTE bars: inside each bar, converting YUV → RGB in the element must give what
    // videoconvert gives (edges differ: both sides subsample chroma their own way)
    for format in [
        "I420",
        "NV12",
        "NV21",
        "Y42B",
        "Y444",
        "YUY2",
        "UYVY",
        "I420_10LE",
        "P010_10LE",
        "GRAY8",
    ] {
        // videotestsrc draws 10-bit bars at 100% (a 255 in every bar, skipped below): the 75%
        // bars for those
        let pattern = if format.contains("_10") {
            "smpte75"
        } else {
            "smpte"
        };
        for colorimetry in ["bt601", "bt709", "bt2020", "1:4:0:0"] {
            let src = format!(
                "videotestsrc num-buffers=1 pattern={pattern} ! video/x-raw,format={format},\
                 width=64,height=48,colorimetry={colorimetry}"
            );
            let rgb = "video/x-raw,format=RGB";
            let ours = one_frame(&format!(
                "{src} ! imdnupscale model-path=test:nearest ! videoconvert ! {rgb} ! \
                 appsink name=out"
            ));
            let theirs = one_frame(&format!(
                "{src} ! videoconvert ! {rgb} ! imdnupscale model-path=test:nearest ! \
                 appsink name=out"
            ));
            // 128×96 RGB, rows padded to 4 bytes (384: none); the bars are 64/7 px wide
            assert_eq!(ours.len(), 128 * 96 * 3);
            assert_eq!(theirs.len(), ours.len());
            let mut checked = 0;
            for bar in 0..7 {
                let x = (2 * bar + 1) * 128 / 14;
                let i = (20 * 128 + x) * 3;
                // Bars whose YUV lies outside the RGB cube (BT.2020 cyan: G = 268) are clipped
                // by both, but our 4:2:0 round trip re-encodes the clipped colour: skip them.
                if theirs[i..i + 3].contains(&255) {
                    continue;
                }
                checked += 1;
                for c in 0..3 {
                    let (a, b) = (ours[i + c], theirs[i + c]);
                    assert!(
                        (i32::from(a) - i32::from(b)).abs() <= 2,
                        "{format} {colorimetry} bar {bar}: {:?} vs {:?}",
                        &ours[i..i + 3],
                        &theirs[i..i + 3]
                    );
                }
            }
            assert!(
                checked >= 4,
                "{format} {colorimetry}: only {checked} bars compared"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// scale=0: the output size from downstream caps
// ---------------------------------------------------------------------------------------------

/// Pushes one `w`×`h` RGB frame (input caps `extra` appended) through scale=0 with
/// `downstream` as the sink caps; returns the output caps' structure and the output bytes.
fn auto_scale(
    extra: &str,
    (w, hgt): (usize, usize),
    downstream: Option<&str>,
    pattern: impl Fn(usize, usize, usize) -> u8,
) -> (gst::Structure, VideoInfo, Vec<u8>) {
    let mut h = harness(&[("scale", &0u32), ("max-frames-in-flight", &0i32)]);
    if let Some(d) = downstream {
        h.set_sink_caps_str(d);
    }
    h.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={hgt},framerate=25/1{extra}"
    ));
    let vinfo = VideoInfo::from_caps(&h.srcpad().unwrap().current_caps().unwrap()).unwrap();
    h.push(frame(&vinfo, pattern)).expect("negotiated");
    let out = h.pull().unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let oinfo = VideoInfo::from_caps(&caps).unwrap();
    assert!(out.size() >= oinfo.size());
    let bytes = planes(&out, &oinfo).remove(0);
    (caps.structure(0).unwrap().to_owned(), oinfo, bytes)
}

fn par(s: &gst::StructureRef) -> gst::Fraction {
    s.get::<gst::Fraction>("pixel-aspect-ratio")
        .unwrap_or(gst::Fraction::new(1, 1))
}

/// Display aspect ratio of fixed caps, reduced.
fn dar(s: &gst::StructureRef) -> gst::Fraction {
    let p = par(s);
    let (w, h) = (
        s.get::<i32>("width").unwrap(),
        s.get::<i32>("height").unwrap(),
    );
    gst::Fraction::new(w * p.numer(), h * p.denom())
}

#[test]
fn auto_scale_gives_the_exact_downstream_size() {
    init();
    let (w, hgt) = (320usize, 240usize);
    let pattern = |_: usize, xb: usize, y: usize| ((xb / 3 * 7 + y * 13) % 251) as u8;
    let (s, oinfo, bytes) = auto_scale(
        ",pixel-aspect-ratio=1/1",
        (w, hgt),
        Some("video/x-raw,width=1000,height=750"),
        pattern,
    );
    assert_eq!((oinfo.width(), oinfo.height()), (1000, 750), "{s}");
    assert_eq!(par(&s), gst::Fraction::new(1, 1), "{s}");
    assert_eq!(dar(&s), gst::Fraction::new(4, 3), "{s}");
    // the nearest test backend at a non-integer ratio: x_in = ⌊x · 320 / 1000⌋
    assert_eq!(bytes.len(), 1000 * 750 * 3);
    for (y, x) in [(0usize, 0usize), (1, 3), (374, 999), (749, 500), (100, 123)] {
        let (sx, sy) = (x * w / 1000, y * hgt / 750);
        for c in 0..3 {
            assert_eq!(
                bytes[(y * 1000 + x) * 3 + c],
                pattern(0, sx * 3 + c, sy),
                "pixel {x},{y}"
            );
        }
    }
}

#[test]
fn auto_scale_keeps_the_display_aspect_ratio() {
    init();
    let flat = |_: usize, _: usize, _: usize| 7u8;
    // downstream leaves everything free: input × 2
    let (s, ..) = auto_scale(",pixel-aspect-ratio=1/1", (320, 240), None, flat);
    assert_eq!(
        (s.get::<i32>("width"), s.get::<i32>("height")),
        (Ok(640), Ok(480))
    );
    assert_eq!(par(&s), gst::Fraction::new(1, 1));
    // one side given: the other follows from the DAR, pixels stay square
    let (s, ..) = auto_scale("", (320, 240), Some("video/x-raw,width=1000"), flat);
    assert_eq!(
        (s.get::<i32>("width"), s.get::<i32>("height")),
        (Ok(1000), Ok(750)),
        "{s}"
    );
    assert_eq!(par(&s), gst::Fraction::new(1, 1));
    let (s, ..) = auto_scale("", (320, 240), Some("video/x-raw,height=1080"), flat);
    assert_eq!(s.get::<i32>("width"), Ok(1440), "{s}");
    // anamorphic input (PAR 4/3, DAR 16:9) keeps its pixel shape
    let (s, ..) = auto_scale(
        ",pixel-aspect-ratio=4/3",
        (320, 240),
        Some("video/x-raw,width=1280"),
        flat,
    );
    assert_eq!(s.get::<i32>("height"), Ok(960), "{s}");
    assert_eq!(dar(&s), gst::Fraction::new(16, 9), "{s}");
    // a PAR of 1/1 forced downstream with one side free: the other side keeps the DAR
    let (s, ..) = auto_scale(
        ",pixel-aspect-ratio=4/3",
        (320, 240),
        Some("video/x-raw,width=1280,pixel-aspect-ratio=1/1"),
        flat,
    );
    assert_eq!(s.get::<i32>("height"), Ok(720), "{s}");
    assert_eq!(dar(&s), gst::Fraction::new(16, 9), "{s}");
}

#[test]
fn auto_scale_to_another_shape_picks_a_par_or_follows_downstream() {
    init();
    let flat = |_: usize, _: usize, _: usize| 7u8;
    // 4:3 input with square pixels to 1000×700: the output PAR 14/15 keeps the DAR
    let (s, oinfo, _) = auto_scale(
        ",pixel-aspect-ratio=1/1",
        (320, 240),
        Some("video/x-raw,width=1000,height=700"),
        flat,
    );
    assert_eq!((oinfo.width(), oinfo.height()), (1000, 700));
    assert_eq!(par(&s), gst::Fraction::new(14, 15), "{s}");
    assert_eq!(dar(&s), gst::Fraction::new(4, 3), "{s}");
    // downstream also requires PAR 1/1: nothing keeps the DAR; like videoscale the element
    // does what downstream asks (the picture is stretched to 10:7) instead of failing
    let (s, oinfo, _) = auto_scale(
        ",pixel-aspect-ratio=1/1",
        (320, 240),
        Some("video/x-raw,width=1000,height=700,pixel-aspect-ratio=1/1"),
        flat,
    );
    assert_eq!((oinfo.width(), oinfo.height()), (1000, 700));
    assert_eq!(par(&s), gst::Fraction::new(1, 1), "{s}");
    // smaller than the input is allowed (the network, then bicubic down)
    let (_, oinfo, bytes) = auto_scale("", (320, 240), Some("video/x-raw,width=160"), flat);
    assert_eq!((oinfo.width(), oinfo.height()), (160, 120));
    assert!(bytes.iter().all(|&b| b == 7));
}

#[test]
fn auto_scale_negotiates_upstream_in_a_pipeline() {
    init();
    // videotestsrc picks its size from what imdnupscale's sink accepts (anything)
    let pipeline = Pipeline::launch(
        "videotestsrc num-buffers=3 ! video/x-raw,format=I420 ! \
         imdnupscale scale=0 model-path=test:nearest ! \
         video/x-raw,width=1000,height=750 ! appsink name=out sync=false",
    )
    .unwrap();
    let sink = pipeline.by_name("out").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for _ in 0..3 {
        let sample = sink
            .emit_by_name::<Option<gst::Sample>>("pull-sample", &[])
            .expect("a frame");
        let oinfo = VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        assert_eq!((oinfo.width(), oinfo.height()), (1000, 750));
        assert_eq!(oinfo.format(), VideoFormat::I420);
        assert!(sample.buffer().unwrap().size() >= oinfo.size());
    }
}

#[test]
fn auto_scale_follows_a_changing_capsfilter() {
    init();
    // the RECONFIGURE path: a new downstream size mid-stream drains the old-size frames
    let pipeline = Pipeline::launch(
        "videotestsrc num-buffers=12 ! video/x-raw,format=RGB,width=64,height=48 ! \
         imdnupscale scale=0 model-path=test:nearest max-frames-in-flight=2 ! \
         capsfilter name=cf caps=video/x-raw,width=100,height=75 ! \
         appsink name=out sync=false max-buffers=1",
    )
    .unwrap();
    let sink = pipeline.by_name("out").unwrap();
    let cf = pipeline.by_name("cf").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut sizes = Vec::new();
    loop {
        let Some(sample) = sink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]) else {
            break;
        };
        let oinfo = VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        assert!(sample.buffer().unwrap().size() >= oinfo.size());
        sizes.push((oinfo.width(), oinfo.height()));
        if sizes.len() == 4 {
            let caps: gst::Caps = "video/x-raw,width=40,height=30".parse().unwrap();
            cf.set_property("caps", &caps);
        }
    }
    assert_eq!(sizes.len(), 12, "{sizes:?}");
    assert_eq!(sizes[0], (100, 75));
    assert_eq!(*sizes.last().unwrap(), (40, 30), "{sizes:?}");
    // one switch, never back
    let switch = sizes.iter().position(|&s| s == (40, 30)).unwrap();
    assert!(sizes[switch..].iter().all(|&s| s == (40, 30)), "{sizes:?}");
}

#[test]
fn scale_one_is_refused() {
    init();
    let err = start_alone(element(&[("scale", &1u32)])).expect("scale=1 must fail the start");
    assert!(err.matches(gst::ResourceError::Settings), "{err}");
    assert!(err.message().contains("scale=1"), "{err}");
}

#[test]
fn real_imdn_auto_scale_with_fixed_and_arbitrary_scale_networks() {
    init();
    let (w, hgt) = (8usize, 6usize);
    let pattern = |_: usize, xb: usize, y: usize| ((xb * 29 + y * 11) % 256) as u8;
    let src: Vec<u8> = (0..hgt)
        .flat_map(|y| (0..w * 3).map(move |xb| pattern(0, xb, y)))
        .collect();
    // RTC ×2 to 13×10 (ratio 1.625 × 1.667): the network, then bicubic to the exact size;
    // IMDN_AS to 19×14: bicubic to the size, then the network
    for (name, config, (ow, oh)) in [
        (
            "rtc_auto.safetensors",
            imdn::model::Config::rtc(2),
            (13usize, 10usize),
        ),
        (
            "as_auto.safetensors",
            imdn::model::Config::imdn_as(),
            (19, 14),
        ),
    ] {
        let path = weights(name, config);
        let mut h = harness(&[
            ("model-path", &path.to_str().unwrap()),
            ("device", &"cpu"),
            ("scale", &0u32),
        ]);
        h.set_sink_caps_str(&format!("video/x-raw,width={ow},height={oh}"));
        h.set_src_caps_str(&format!(
            "video/x-raw,format=RGB,width={w},height={hgt},framerate=25/1"
        ));
        let vinfo = info(VideoFormat::Rgb, w as u32, hgt as u32);
        for _ in 0..2 {
            h.push(frame(&vinfo, pattern)).unwrap();
        }
        h.push_event(gst::event::Eos::new());
        let mut upscaler = imdn::engine::Upscaler::load(&path, &candle_core::Device::Cpu).unwrap();
        upscaler.set_edge_mode(imdn::acs::EdgeMode::Replicate);
        let expected = upscaler.upscale_u8(&src, (w, hgt), 3, (ow, oh)).unwrap();
        // twice: the second frame reuses the resize tables
        for _ in 0..2 {
            let out = h.pull().unwrap();
            let oinfo = out_info(&h);
            assert_eq!((oinfo.width() as usize, oinfo.height() as usize), (ow, oh));
            let got = &planes(&out, &oinfo)[0];
            assert_eq!(got.len(), expected.len());
            let off = got
                .iter()
                .zip(&expected)
                .filter(|(a, b)| (i32::from(**a) - i32::from(**b)).abs() > 1)
                .count();
            assert_eq!(off, 0, "{name}: bytes more than 1 away from the library");
        }
        let _ = std::fs::remove_file(path);
    }
}

// ---------------------------------------------------------------------------------------------
// model, fallback-to-cpu
// ---------------------------------------------------------------------------------------------

#[test]
fn model_property_checks_what_the_file_holds() {
    init();
    let imdn_path = weights("imdn_x2_model.safetensors", imdn::model::Config::imdn(2));
    let rtc_path = rtc_weights("rtc_x2_model.safetensors");
    let (ip, rp) = (imdn_path.to_str().unwrap(), rtc_path.to_str().unwrap());
    // model=rtc with IMDN weights: the start fails naming both
    let err = start_alone(element(&[
        ("model-path", &ip),
        ("model", &"rtc"),
        ("device", &"cpu"),
    ]))
    .expect("model=rtc with IMDN weights must fail");
    assert!(err.matches(gst::ResourceError::Settings), "{err}");
    let msg = err.message();
    assert!(msg.contains("model=rtc"), "{msg}");
    assert!(msg.contains("IMDN_RTC"), "{msg}");
    assert!(msg.contains("×2 IMDN network"), "{msg}");
    assert!(msg.contains("imdn_x2_model"), "{msg}");
    // model=as with RTC weights
    let err = start_alone(element(&[
        ("model-path", &rp),
        ("model", &"as"),
        ("device", &"cpu"),
    ]))
    .expect("model=as with RTC weights must fail");
    assert!(err.message().contains("IMDN_AS"), "{err}");
    // matching models and auto start
    for (path, model) in [(ip, "imdn"), (rp, "rtc"), (rp, "auto"), (ip, "auto")] {
        let pipeline = Pipeline(gst::Pipeline::new());
        pipeline
            .add(&element(&[
                ("model-path", &path),
                ("model", &model),
                ("device", &"cpu"),
            ]))
            .unwrap();
        assert!(
            pipeline.set_state(gst::State::Paused).is_ok(),
            "model={model} with {path}"
        );
    }
    let _ = std::fs::remove_file(imdn_path);
    let _ = std::fs::remove_file(rtc_path);
}

#[test]
fn fallback_to_cpu_rebuilds_the_network_after_a_runtime_error() {
    init();
    let vinfo = info(VideoFormat::Rgb, 4, 2);
    let pattern = |_: usize, xb: usize, y: usize| (xb * 10 + y) as u8;
    // default on: the first frame fails on the "CUDA" backend, is redone on the CPU
    let mut h = harness(&[
        ("model-path", &"test:fail-once"),
        ("max-frames-in-flight", &0i32),
    ]);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_src_caps_str("video/x-raw,format=RGB,width=4,height=2,framerate=25/1");
    for _ in 0..3 {
        h.push(frame(&vinfo, pattern))
            .expect("frames go on after the fallback");
    }
    let src: Vec<u8> = (0..2)
        .flat_map(|y| (0..12).map(move |xb| pattern(0, xb, y)))
        .collect();
    let expected = nearest_packed(&src, 4, 2, 3, 2);
    for _ in 0..3 {
        let out = h.pull().unwrap();
        assert_eq!(planes(&out, &out_info(&h))[0], expected);
    }
    let msg = bus_message(&bus, &[gst::MessageType::Warning, gst::MessageType::Error])
        .expect("a warning");
    let gst::MessageView::Warning(w) = msg.view() else {
        panic!("expected a warning, got {msg:?}");
    };
    let text = w.error().message().to_string();
    assert!(text.contains("simulated CUDA error"), "{text}");
    assert!(text.contains("CPU"), "{text}");
    // only once
    assert!(bus.pop_filtered(&[gst::MessageType::Warning]).is_none());

    // off: the error stops the stream
    let mut h = harness(&[
        ("model-path", &"test:fail-once"),
        ("max-frames-in-flight", &0i32),
        ("fallback-to-cpu", &false),
    ]);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_src_caps_str("video/x-raw,format=RGB,width=4,height=2,framerate=25/1");
    assert_eq!(h.push(frame(&vinfo, pattern)), Err(gst::FlowError::Error));
    let err = error_of(&bus_message(&bus, &[gst::MessageType::Error]).expect("an error"));
    assert!(err.message().contains("simulated CUDA error"), "{err}");
}

#[test]
fn steady_averages_still_frames_and_restarts_after_a_discont() {
    init();
    let vinfo = info(VideoFormat::Rgb, 4, 2);
    // frames of 100, 104 (a change of 4 levels: still at steady=10), 104 again after a DISCONT
    let run = |steady: u32| -> Vec<u8> {
        let mut h = harness(&[
            ("model-path", &"test:nearest"),
            ("steady", &steady),
            ("max-frames-in-flight", &0i32),
        ]);
        h.set_src_caps_str("video/x-raw,format=RGB,width=4,height=2,framerate=25/1");
        let mut firsts = Vec::new();
        for (k, level) in [100u8, 104, 104].into_iter().enumerate() {
            let mut buf = pts_buffer(frame(&vinfo, move |_, _, _| level), k as u64);
            if k == 2 {
                buf.get_mut().unwrap().set_flags(gst::BufferFlags::DISCONT);
            }
            h.push(buf).unwrap();
            let out = h.pull().unwrap();
            let plane = planes(&out, &out_info(&h)).remove(0);
            assert!(
                plane.iter().all(|&v| v == plane[0]),
                "a flat frame stays flat"
            );
            firsts.push(plane[0]);
        }
        firsts
    };
    assert_eq!(
        run(0),
        [100, 104, 104],
        "off: the network's frames as they are"
    );
    assert_eq!(
        run(10),
        [100, 102, 104],
        "on: half way to a still frame; a DISCONT restarts"
    );
    // a change above the threshold is motion: taken as it is
    assert_eq!(run(3), [100, 104, 104]);
}

/// `precision` and `cuda-kernels` read back as set and apply on CUDA only: on the CPU the
/// network runs f32 on our kernels whatever they say, and the frame comes out as without them.
#[test]
fn precision_and_cuda_kernels_apply_on_cuda_only() {
    init();
    let vinfo = info(VideoFormat::Rgb, 24, 16);
    let input = frame(&vinfo, |_, x, y| ((x * 7 + y * 13) % 256) as u8);
    let mut outputs = Vec::new();
    for (precision, kernels) in [("f32", "candle"), ("f16", "ours"), ("tf32", "candle")] {
        let props: [(&str, &dyn ToValue); 6] = [
            ("model-path", &"imdn_rtc_x2"),
            ("device", &"cpu"),
            ("n-threads", &1u32),
            ("max-frames-in-flight", &0i32),
            ("precision", &precision),
            ("cuda-kernels", &kernels),
        ];
        let elem = element(&props);
        let nick = |name: &str| {
            let v = elem.property_value(name);
            glib::EnumValue::from_value(&v)
                .unwrap()
                .1
                .nick()
                .to_string()
        };
        assert_eq!(
            (nick("precision"), nick("cuda-kernels")),
            (precision.into(), kernels.into())
        );
        let mut h = harness(&props);
        h.set_src_caps(vinfo.to_caps().unwrap());
        h.push(input.clone()).unwrap();
        let out = h.pull().unwrap();
        outputs.push(out.map_readable().unwrap().to_vec());
    }
    assert!(outputs.iter().all(|o| o == &outputs[0]));
}

/// `precision=int8` runs the shipped IMDN_RTC ×2's blocks in 8 bits on the CPU: the frame
/// comes out within a few levels of f32's, and not identical to it.
#[test]
fn int8_runs_on_the_cpu_within_a_few_levels_of_f32() {
    init();
    if !imdn::kernels::int8::available() {
        eprintln!("skipped: this CPU lacks AVX-512 VNNI");
        return;
    }
    let vinfo = info(VideoFormat::Rgb, 40, 24);
    // gradients and a soft-edged square, as photographs have (the calibration's domain)
    let input = frame(&vinfo, |_, x, y| {
        let (px, py) = (x / 3, y);
        let square = if (12..28).contains(&px) && (6..18).contains(&py) {
            60
        } else {
            0
        };
        (30 + x + 2 * y + square) as u8
    });
    let mut outputs = Vec::new();
    for precision in ["f32", "int8"] {
        let props: [(&str, &dyn ToValue); 5] = [
            ("model-path", &"imdn_rtc_x2"),
            ("device", &"cpu"),
            ("n-threads", &2u32),
            ("max-frames-in-flight", &0i32),
            ("precision", &precision),
        ];
        let mut h = harness(&props);
        h.set_src_caps(vinfo.to_caps().unwrap());
        h.push(input.clone()).unwrap();
        let out = h.pull().unwrap();
        outputs.push(out.map_readable().unwrap().to_vec());
    }
    let diffs: Vec<i32> = outputs[0]
        .iter()
        .zip(&outputs[1])
        .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
        .collect();
    let worst = diffs.iter().max().copied().unwrap_or(0);
    let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
    assert!(
        worst <= 8 && mean < 1.0,
        "largest difference {worst}, mean {mean}"
    );
    assert!(worst > 0, "int8 gave f32's bytes");
}

/// Flat frames through the shipped IMDN_RTC ×2 come back flat to their corners with the
/// default edge mode (replicate): I420 over its video range (black 16 to white 235) and RGB
/// over 0 to 255; with the convolutions' zero padding (edge-mode=zero) an RGB frame's border
/// is off by several levels.
#[test]
fn flat_frames_come_back_flat() {
    init();
    let (w, hgt) = (48u32, 32u32);
    let cases: [(&str, VideoFormat, &[u8]); 3] = [
        ("replicate", VideoFormat::I420, &[16, 64, 128, 235]),
        ("replicate", VideoFormat::Rgb, &[0, 16, 128, 235, 255]),
        ("zero", VideoFormat::Rgb, &[128]),
    ];
    for (mode, format, levels) in cases {
        let vinfo = info(format, w, hgt);
        let mut h = harness(&[
            ("model-path", &"imdn_rtc_x2"),
            ("device", &"cpu"),
            ("n-threads", &1u32),
            ("max-frames-in-flight", &0i32),
            ("edge-mode", &mode),
        ]);
        h.set_src_caps(vinfo.to_caps().unwrap());
        for &level in levels {
            // I420's chroma planes at 128: grey
            let yuv = format == VideoFormat::I420;
            let want = |p: usize| if yuv && p > 0 { 128 } else { level };
            h.push(frame(&vinfo, |p, _, _| want(p))).unwrap();
            let out = h.pull().unwrap();
            let off = planes(&out, &out_info(&h))
                .iter()
                .enumerate()
                .flat_map(|(p, plane)| {
                    plane
                        .iter()
                        .map(move |&v| (v as i32 - want(p) as i32).abs())
                })
                .max()
                .unwrap();
            if mode == "replicate" {
                assert!(
                    off <= 1,
                    "{format:?} level {level}: a sample {off} levels off"
                );
            } else {
                assert!(off > 1, "zero padding should show at level {level} ({off})");
            }
        }
    }
}

/// The frames `model` makes of five `format` frames of 6×4 (each different), one at a time.
fn five_frames(model: &str, format: VideoFormat) -> Result<Vec<Vec<Vec<u8>>>, gst::FlowError> {
    let vinfo = info(format, 6, 4);
    let mut h = harness(&[("model-path", &model), ("max-frames-in-flight", &0i32)]);
    h.set_src_caps(vinfo.to_caps().unwrap());
    (0..5)
        .map(|k| {
            h.push(frame(&vinfo, move |p, xb, y| {
                (p * 31 + xb * 7 + y * 13 + k * 50) as u8
            }))?;
            let out = h.pull().map_err(|_| gst::FlowError::Error)?;
            Ok(planes(&out, &out_info(&h)))
        })
        .collect()
}

#[test]
fn frames_a_backend_converts_on_its_device_skip_the_host_conversions() {
    init();
    // test:device-only fails every frame that comes to the host path: these all go round it,
    // and come out as the host path makes them
    let formats = [
        VideoFormat::I420,
        VideoFormat::Nv12,
        VideoFormat::Yuy2,
        VideoFormat::P01010le,
        VideoFormat::Gray8,
        VideoFormat::Rgb,
        VideoFormat::Bgrx,
    ];
    for format in formats {
        let on_device = five_frames("test:device-only", format).expect("device path");
        assert_eq!(
            on_device,
            five_frames("test:nearest", format).unwrap(),
            "{format:?}"
        );
    }
    // alpha is resized on the host: such frames take the host path
    assert!(five_frames("test:device-only", VideoFormat::Rgba).is_err());
}

#[test]
fn a_device_path_failure_falls_back_to_the_cpu_with_no_frame_lost() {
    init();
    let vinfo = info(VideoFormat::I420, 6, 4);
    let mut h = harness(&[
        ("model-path", &"test:device-fail-once"),
        ("max-frames-in-flight", &0i32),
    ]);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_src_caps(vinfo.to_caps().unwrap());
    let mut got = Vec::new();
    for k in 0..3 {
        h.push(frame(&vinfo, move |p, xb, y| {
            (p * 31 + xb * 7 + y * 13 + k * 50) as u8
        }))
        .expect("frames go on after the fallback");
        got.push(planes(&h.pull().unwrap(), &out_info(&h)));
    }
    assert_eq!(
        got,
        five_frames("test:nearest", VideoFormat::I420).unwrap()[..3]
    );
    let msg = bus_message(&bus, &[gst::MessageType::Warning, gst::MessageType::Error])
        .expect("a warning");
    let gst::MessageView::Warning(w) = msg.view() else {
        panic!("expected a warning, got {msg:?}");
    };
    assert!(w.error().message().contains("simulated CUDA error"));
}

/// The frames `model` makes of `n` I420 frames of 6×4 (each different), pushed with two more
/// frames let in flight (so the worker queues one on the device behind another), then EOS.
fn frames_two_in_flight(model: &str, n: usize) -> Vec<Vec<Vec<u8>>> {
    let vinfo = info(VideoFormat::I420, 6, 4);
    let mut h = harness(&[("model-path", &model), ("max-frames-in-flight", &2i32)]);
    h.set_src_caps(vinfo.to_caps().unwrap());
    for k in 0..n {
        h.push(frame(&vinfo, move |p, xb, y| {
            (p * 31 + xb * 7 + y * 13 + k * 50) as u8
        }))
        .unwrap_or_else(|e| panic!("{model} frame {k}: {e:?}"));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    assert_eq!(
        h.buffers_in_queue() as usize,
        n,
        "{model}: every frame out, once"
    );
    (0..n)
        .map(|_| planes(&h.pull().unwrap(), &out_info(&h)))
        .collect()
}

#[test]
fn frames_queued_on_the_device_behind_each_other_come_out_in_order() {
    init();
    // test:device-only writes a frame only when the worker finishes it, and refuses a third
    // in flight; the failing ones fall back to the CPU when queued (fail-once) or when
    // finished, with the next frame queued behind (fail-late): every frame as the host makes it
    let want = frames_two_in_flight("test:nearest", 7);
    for model in [
        "test:device-only",
        "test:device-fail-once",
        "test:device-fail-late",
    ] {
        assert_eq!(frames_two_in_flight(model, 7), want, "{model}");
    }
}

#[test]
fn frames_refused_by_the_device_path_go_to_the_host_until_their_sizes_change() {
    init();
    // scale=0 with downstream fixed at 13×9: from 6×4 not a whole multiple (the backend
    // refuses it, the host converts), then from 13×9 (1×: taken; test:device-only fails it on
    // the host path)
    let mut h = harness(&[
        ("model-path", &"test:device-only"),
        ("scale", &0u32),
        ("max-frames-in-flight", &0i32),
    ]);
    h.set_sink_caps_str("video/x-raw,width=13,height=9");
    for (w, hgt) in [(6, 4), (13, 9)] {
        let vinfo = info(VideoFormat::I420, w, hgt);
        h.set_src_caps(vinfo.to_caps().unwrap());
        for k in 0..2 {
            let pushed = h.push(frame(&vinfo, move |p, xb, y| {
                (p * 31 + xb * 7 + y * 13 + k) as u8
            }));
            pushed.unwrap_or_else(|e| panic!("{w}×{hgt} frame {k}: {e:?}"));
            let out = h.pull().unwrap();
            assert_eq!(planes(&out, &out_info(&h))[0].len(), 13 * 9);
        }
    }
}
