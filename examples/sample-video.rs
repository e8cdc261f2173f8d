//! Makes a short sample video from a photograph: a slow pan and zoom across it (like a camera
//! move), H.264 in MP4 with a quiet stereo tone as its audio track, so the demo has something
//! that looks like real footage to upscale.
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example sample-video -- PHOTO OUT.mp4 \
//!     [--size 320x180] [--seconds 6] [--fps 25] [--still] [--noise SIGMA]
//! ```
//!
//! `--still` holds the camera on the first frame's window (a still scene); `--noise SIGMA` adds
//! independent Gaussian sensor noise of SIGMA 8-bit levels to every frame (seeded, so a clip is
//! the same each time).
//!
//! Frames are cut from the photograph and reduced with the library's bicubic (antialiased), so
//! they carry real detail instead of a test pattern's flat colours.

mod common;

use std::process::ExitCode;

use gst::prelude::*;
use gst_video::VideoFormat;

const USAGE: &str = "usage: sample-video PHOTO OUT.mp4 [--size WxH] [--seconds S] [--fps N] [--still] [--noise SIGMA]";

struct Args {
    photo: String,
    out: String,
    size: (usize, usize),
    seconds: u32,
    fps: u32,
    still: bool,
    noise: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut a = Args {
        photo: String::new(),
        out: String::new(),
        size: (320, 180),
        seconds: 6,
        fps: 25,
        still: false,
        noise: 0.0,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--size" => {
                let v = value()?;
                a.size = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .filter(|&(w, h): &(usize, usize)| {
                        w >= 16 && h >= 16 && w % 2 == 0 && h % 2 == 0
                    })
                    .ok_or(format!("--size {v}: expected even WxH of at least 16x16"))?;
            }
            "--seconds" => {
                let v = value()?;
                a.seconds = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=600).contains(s))
                    .ok_or(format!("--seconds {v}: expected 1 to 600"))?;
            }
            "--fps" => {
                let v = value()?;
                a.fps = v
                    .parse()
                    .ok()
                    .filter(|f| (1..=120).contains(f))
                    .ok_or(format!("--fps {v}: expected 1 to 120"))?;
            }
            "--still" => a.still = true,
            "--noise" => {
                let v = value()?;
                a.noise = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.0..=64.0).contains(s))
                    .ok_or(format!("--noise {v}: expected 0 to 64 levels"))?;
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => positional.push(arg),
        }
    }
    let [photo, out] = <[String; 2]>::try_from(positional).map_err(|_| USAGE.to_string())?;
    a.photo = photo;
    a.out = out;
    Ok(a)
}

/// The crop window of frame `i` of `n`: from 90 % of the photo's largest window of the video's
/// aspect at the left to 70 % at the right, eased so the move starts and ends gently.
fn window(
    i: usize,
    n: usize,
    photo: (usize, usize),
    size: (usize, usize),
) -> (usize, usize, usize, usize) {
    let t = if n > 1 {
        i as f64 / (n - 1) as f64
    } else {
        0.0
    };
    let t = 0.5 - 0.5 * (std::f64::consts::PI * t).cos();
    let aspect = size.0 as f64 / size.1 as f64;
    let full_w = (photo.0 as f64).min(photo.1 as f64 * aspect);
    let w = full_w * (0.9 - 0.2 * t);
    let h = w / aspect;
    let x = (photo.0 as f64 - w) * (0.1 + 0.8 * t);
    let y = (photo.1 as f64 - h) * (0.6 - 0.3 * t);
    (
        x as usize,
        y as usize,
        w.round() as usize,
        h.round() as usize,
    )
}

fn crop(rgb: &[u8], width: usize, (x0, y0, w, h): (usize, usize, usize, usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3);
    for y in y0..y0 + h {
        out.extend_from_slice(&rgb[(y * width + x0) * 3..(y * width + x0 + w) * 3]);
    }
    out
}

fn run(a: &Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let photo = imdn::eval::read_rgb(std::path::Path::new(&a.photo)).map_err(|e| e.to_string())?;
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    let (w, h) = a.size;
    let frames = (a.seconds * a.fps) as usize;

    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc speed-preset=veryfast bitrate=1500 key-int-max={} ! h264parse ! queue ! mp4mux name=mux \
         ! filesink location=\"{}\" \
         audiotestsrc wave=sine freq=330 volume=0.05 num-buffers={} samplesperbuffer=1600 \
         ! audio/x-raw,rate=32000,channels=2 ! audioconvert ! avenc_aac ! queue ! mux.",
        a.fps * 2,
        a.out.replace('"', "\\\""),
        a.seconds * 20,
    ))
    .map_err(|e| format!("building the pipeline: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    // appsrc through its signals and properties: no gstreamer-app dependency for one example
    let src = pipeline.by_name("src").ok_or("no appsrc")?;
    let info = gst_video::VideoInfo::builder(VideoFormat::Rgb, w as u32, h as u32)
        .fps(gst::Fraction::new(a.fps as i32, 1))
        .build()
        .map_err(|e| e.to_string())?;
    src.set_property("caps", info.to_caps().map_err(|e| e.to_string())?);
    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    common::play(&pipeline, &bus)?;

    let frame_ns = 1_000_000_000u64 / u64::from(a.fps);
    let mut noise = imdn::train::rng::Rng::new(0x2545_f491_4f6c_dd1d);
    for i in 0..frames {
        let win = window(if a.still { 0 } else { i }, frames, (pw, ph), (w, h));
        let cut = crop(photo.as_raw(), pw, win);
        let mut small = imdn::image_ops::try_imresize_u8(&cut, win.2, win.3, 3, w, h)
            .map_err(|e| e.to_string())?;
        if a.noise > 0.0 {
            for v in small.iter_mut() {
                *v = (f64::from(*v) + a.noise * noise.normal())
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
        // packed RGB rows padded to 4 bytes, as GStreamer lays out RGB
        let stride = info.stride()[0] as usize;
        let mut data = vec![0u8; stride * h];
        for (dst, row) in data.chunks_exact_mut(stride).zip(small.chunks_exact(w * 3)) {
            dst[..w * 3].copy_from_slice(row);
        }
        let mut buf = gst::Buffer::from_mut_slice(data);
        {
            let b = buf.get_mut().ok_or("buffer not writable")?;
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        let flow = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buf]);
        if flow != gst::FlowReturn::Ok {
            // the bus says why
            break;
        }
    }
    // a refused end-of-stream means the pipeline already failed: the bus says why
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    let result = wait_for_eos(&pipeline);
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| format!("stopping: {e}"))?;
    result?;
    eprintln!(
        "{}: {w}×{h}, {frames} frames at {} fps, H.264 + AAC, {} {}",
        a.out,
        a.fps,
        if a.still {
            "a still view of"
        } else {
            "a pan across"
        },
        a.photo
    );
    Ok(())
}

fn wait_for_eos(pipeline: &gst::Pipeline) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("no bus")?;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(_) => return Err(common::describe(&msg).unwrap_or_default()),
            _ => {}
        }
    }
    Err("the bus closed before end of stream".into())
}

fn main() -> ExitCode {
    common::main_with("sample-video", parse_args, |a| run(&a))
}
