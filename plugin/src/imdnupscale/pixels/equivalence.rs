//! The row-wise conversions against the old per-pixel ones (`reference`): bit-identical
//! planes and bytes for every format, colorimetry, chroma siting, odd size and padded stride;
//! and (ignored, run by hand) their speed.

use std::time::Instant;

use gst_video::{VideoAlignment, VideoChromaSite, VideoColorimetry, VideoFormat, VideoInfo};

use super::reference::{self, RefScratch};
use super::{FORMATS, Scratch, read_frame, write_frame};

/// xorshift64*: reproducible bytes and floats without a dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }

    /// Mostly in [−0.25, 1.25], with the values that test clamping and rounding edges.
    pub(super) fn unit(&mut self) -> f32 {
        const EDGES: [f32; 9] = [
            0.0,
            -0.0,
            1.0,
            0.5 / 255.0,
            1.5 / 255.0,
            f32::NAN,
            2.0,
            -1.0,
            f32::INFINITY,
        ];
        let r = self.next();
        if r.is_multiple_of(16) {
            EDGES[(r >> 8) as usize % EDGES.len()]
        } else {
            (r >> 40) as f32 / (1u64 << 24) as f32 * 1.5 - 0.25
        }
    }
}

pub(super) fn info(
    format: VideoFormat,
    (w, h): (u32, u32),
    colorimetry: &str,
    site: VideoChromaSite,
    pad: u32,
) -> VideoInfo {
    let c: VideoColorimetry = colorimetry.parse().expect("colorimetry");
    let mut info = VideoInfo::builder(format, w, h)
        .colorimetry(&c)
        .chroma_site(site)
        .build()
        .expect("info");
    if pad > 0 {
        let mut align = VideoAlignment::new(0, 0, 0, pad, &[0; gst_video::VIDEO_MAX_PLANES]);
        info.align(&mut align).expect("align");
    }
    info
}

pub(super) fn buffer(bytes: Vec<u8>) -> gst::Buffer {
    gst::Buffer::from_mut_slice(bytes)
}

pub(super) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

pub(super) const SIZES: [(u32, u32); 7] =
    [(1, 1), (2, 2), (3, 1), (1, 4), (5, 3), (33, 17), (64, 48)];

pub(super) fn cases() -> Vec<(VideoFormat, &'static str, VideoChromaSite, u32)> {
    let sites = [
        VideoChromaSite::JPEG,
        VideoChromaSite::MPEG2,
        VideoChromaSite::COSITED,
        VideoChromaSite::V_COSITED,
    ];
    let mut v = Vec::new();
    for &f in FORMATS {
        for (k, cm) in ["bt601", "bt709", "1:4:0:0", "bt2020"]
            .into_iter()
            .enumerate()
        {
            v.push((f, cm, sites[k], (k as u32) * 3));
        }
    }
    v
}

#[test]
fn reading_is_bit_identical_to_the_old_reader() {
    gst::init().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // one scratch across all frames: size and format changes must not leave stale state
    let (mut scratch, mut old_scratch) = (Scratch::default(), RefScratch::default());
    for (f, cm, site, pad) in cases() {
        for size in SIZES {
            let info = info(f, size, cm, site, pad);
            let buf = buffer(rng.bytes(info.size()));
            let new = read_frame(&buf, &info, Vec::new(), Vec::new, &mut scratch).unwrap();
            let old =
                reference::read_frame(&buf, &info, Vec::new(), Vec::new, &mut old_scratch).unwrap();
            assert_eq!(
                bits(&new.rgb),
                bits(&old.rgb),
                "{f:?} {cm} {site:?} {size:?}"
            );
            assert_eq!(new.alpha, old.alpha, "{f:?} {size:?}");
        }
    }
}

#[test]
fn writing_is_bit_identical_to_the_old_writer() {
    gst::init().unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut scratch, mut old_scratch) = (Scratch::default(), RefScratch::default());
    for (f, cm, site, pad) in cases() {
        for size in SIZES {
            let info = info(f, size, cm, site, pad);
            let n = (size.0 * size.1) as usize;
            let rgb: Vec<f32> = (0..3 * n).map(|_| rng.unit()).collect();
            let alpha = rng.bytes(n);
            // the bytes the writers leave alone (padding) must stay as they were
            let before = rng.bytes(info.size());
            let (mut new, mut old) = (buffer(before.clone()), buffer(before));
            write_frame(new.make_mut(), &info, &rgb, Some(&alpha), &mut scratch).unwrap();
            reference::write_frame(old.make_mut(), &info, &rgb, Some(&alpha), &mut old_scratch)
                .unwrap();
            let (new, old) = (new.map_readable().unwrap(), old.map_readable().unwrap());
            assert!(
                new.as_slice() == old.as_slice(),
                "{f:?} {cm} {site:?} {size:?}"
            );
        }
    }
}

/// Milliseconds per frame of reading `(w, h)` and writing `(2w, 2h)`, old and new, interleaved.
fn time_format(format: VideoFormat, (w, h): (u32, u32), frames: usize) {
    let mut rng = Rng(7);
    let (i_in, i_out) = (
        info(format, (w, h), "bt709", VideoChromaSite::MPEG2, 0),
        info(format, (2 * w, 2 * h), "bt709", VideoChromaSite::MPEG2, 0),
    );
    let input = buffer(rng.bytes(i_in.size()));
    let rgb_out: Vec<f32> = (0..3 * 4 * (w * h) as usize).map(|_| rng.unit()).collect();
    let mut output = buffer(vec![0; i_out.size()]);
    let (mut scratch, mut old_scratch) = (Scratch::default(), RefScratch::default());
    let mut planes = Vec::new();
    let (mut t_old, mut t_new) = ([0.0f64; 2], [0.0f64; 2]);
    for k in 0..frames + 2 {
        // the first two frames warm the buffers and caches up
        let keep = k >= 2;
        for old in [k % 2 == 0, k % 2 == 1] {
            let t = Instant::now();
            let p = if old {
                reference::read_frame(&input, &i_in, planes, Vec::new, &mut old_scratch)
            } else {
                read_frame(&input, &i_in, planes, Vec::new, &mut scratch)
            }
            .unwrap();
            let read = t.elapsed().as_secs_f64();
            planes = p.rgb;
            let t = Instant::now();
            if old {
                reference::write_frame(output.make_mut(), &i_out, &rgb_out, None, &mut old_scratch)
            } else {
                write_frame(output.make_mut(), &i_out, &rgb_out, None, &mut scratch)
            }
            .unwrap();
            let write = t.elapsed().as_secs_f64();
            if keep {
                let acc = if old { &mut t_old } else { &mut t_new };
                acc[0] += read;
                acc[1] += write;
            }
        }
    }
    let ms = |s: f64| s * 1e3 / frames as f64;
    let f = format.to_str();
    println!(
        "{f:>5} {w}x{h} -> {}x{}: old read {:.3} + write {:.3} = {:.3} ms | new read {:.3} + write {:.3} = {:.3} ms | {:.1}x",
        2 * w,
        2 * h,
        ms(t_old[0]),
        ms(t_old[1]),
        ms(t_old[0] + t_old[1]),
        ms(t_new[0]),
        ms(t_new[1]),
        ms(t_new[0] + t_new[1]),
        (t_old[0] + t_old[1]) / (t_new[0] + t_new[1]),
    );
}

/// `cargo test --release -p gst-plugin-imdn --lib conversion_timing -- --ignored --nocapture`
#[test]
#[ignore = "timing, run by hand in release"]
fn conversion_timing() {
    gst::init().unwrap();
    for f in [
        VideoFormat::I420,
        VideoFormat::Nv12,
        VideoFormat::Yuy2,
        VideoFormat::Rgb,
        VideoFormat::Rgbx,
        VideoFormat::I42010le,
    ] {
        time_format(f, (640, 360), 40);
    }
}
