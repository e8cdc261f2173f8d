//! What the encoder takes away from the network's detail: an upscaled file (e.g. `transcode`'s
//! output) against the network's own frames of its input.
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example encode-loss -- IN UPSCALED [--weights NAME|FILE]
//! ```
//!
//! IN is decoded and upscaled by the element (`imdnupscale`, the decoder's own format in and
//! out, as `transcode` runs it) and compared, frame by frame and both converted to RGB the
//! same way, with UPSCALED as decoded: the PSNR says what the encoder alone lost; beside it
//! the video stream's bitrate.

mod common;
#[path = "common/frames.rs"]
mod frames;

use std::process::ExitCode;

use frames::{Decoder, json_line, psnr, squared_error};

const USAGE: &str = "usage: encode-loss IN UPSCALED [--weights NAME|FILE]";

struct Args {
    input: String,
    upscaled: String,
    weights: String,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut weights = "imdn_rtc_x2".to_string();
    let mut positional = Vec::new();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--weights" => {
                weights = it
                    .next()
                    .ok_or(format!("--weights needs a value\n{USAGE}"))?
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => positional.push(arg),
        }
    }
    let [input, upscaled] = <[String; 2]>::try_from(positional).map_err(|_| USAGE.to_string())?;
    Ok(Args {
        input,
        upscaled,
        weights,
    })
}

/// The video stream's payload bytes and duration, read from the container without decoding.
fn video_stream_size(path: &str) -> Result<(u64, gst::ClockTime), String> {
    let stream = Decoder::launch(path, "parsebin ! video/x-h264;video/x-h265")?;
    let (mut bytes, mut end) = (0u64, gst::ClockTime::ZERO);
    while let Some(sample) = stream.sample() {
        let Some(buf) = sample.buffer() else {
            continue;
        };
        bytes += buf.size() as u64;
        if let Some(pts) = buf.pts() {
            end = end.max(pts + buf.duration().unwrap_or_default());
        }
    }
    stream.close()?;
    Ok((bytes, end))
}

fn run(a: Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstimdn::plugin_register_static().map_err(|e| e.to_string())?;
    let element = format!("imdnupscale model-path=\"{}\" device=cpu !", a.weights);
    let (input, upscaled) = (
        Decoder::decoded(&a.input, &element)?,
        Decoder::open(&a.upscaled)?,
    );
    let (mut error, mut frames, mut out_size) = ((0.0, 0), 0u64, (0, 0));
    let result = (|| {
        while let Some((raw, size)) = input.next()? {
            let Some((encoded, encoded_size)) = upscaled.next()? else {
                return Err(format!("{} has fewer frames than {}", a.upscaled, a.input));
            };
            if encoded_size != size {
                return Err(format!(
                    "{} is {encoded_size:?}, the element makes {size:?}",
                    a.upscaled
                ));
            }
            let e = squared_error(&encoded, &raw);
            error = (error.0 + e.0, error.1 + e.1);
            frames += 1;
            out_size = size;
            if frames % 25 == 0 {
                eprintln!("{frames} frames");
            }
        }
        Ok(())
    })();
    input.close()?;
    upscaled.close()?;
    result?;
    let (bytes, duration) = video_stream_size(&a.upscaled)?;
    let kbps = bytes as f64 * 8.0 / duration.seconds_f64().max(1e-9) / 1000.0;
    println!(
        "{}: {frames} frames of {}×{}, video {kbps:.0} kbit/s; PSNR against the element's frames {:.2} dB",
        a.upscaled,
        out_size.0,
        out_size.1,
        psnr(error)
    );
    println!(
        "{}",
        json_line(&[
            ("frames", frames as f64),
            ("video_kbps", kbps),
            ("psnr_db", psnr(error)),
        ])
    );
    Ok(())
}

fn main() -> ExitCode {
    common::main_with("encode-loss", parse_args, run)
}
