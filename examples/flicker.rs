//! Temporal stability of the network against bicubic on a clip: frame-by-frame super-resolution
//! can flicker on noise and slow pans, which a single image never shows.
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example flicker -- CLIP [--weights NAME|FILE] \
//!     [--frames N] [--steady THRESHOLD] [--reference CLEAN_CLIP]
//! ```
//!
//! `--steady T` also runs the network's frames through `imdn::temporal::Steady` (still pixels,
//! input change ≤ T levels, averaged with blend 0.5) and reports the same figures for them.
//! `--reference CLEAN_CLIP` (the same clip without noise, e.g. from `sample-video` without
//! `--noise`) reports the PSNR of the network's frames, plain and steadied, against the
//! network's frames of the clean clip: what the noise costs, and whether steadying wins it back.
//!
//! Every decoded frame is upscaled by the network (the library's `Upscaler`, as the element
//! runs it) and by bicubic to the same size; for each it reports the mean absolute change of a
//! sample between consecutive frames and each sample's standard deviation over the clip (the
//! noise, where the scene is still), and the ratios network / bicubic: the flicker ratio.

mod common;
#[path = "common/frames.rs"]
mod frames;

use std::process::ExitCode;

use imdn::engine::Upscaler;
use imdn::temporal::{Stability, Steady};

use frames::{Decoder, json_line, psnr, squared_error};

const USAGE: &str = "usage: flicker CLIP [--weights NAME|FILE] [--frames N] [--steady THRESHOLD] \
[--reference CLEAN_CLIP]";

struct Args {
    clip: String,
    weights: String,
    frames: Option<u64>,
    steady: Option<u8>,
    reference: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        clip: String::new(),
        weights: "imdn_rtc_x2".into(),
        frames: None,
        steady: None,
        reference: None,
    };
    let mut positional = Vec::new();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--weights" => a.weights = value()?,
            "--frames" => {
                let v = value()?;
                a.frames = Some(v.parse().map_err(|_| format!("--frames {v}: a count"))?);
            }
            "--steady" => {
                let v = value()?;
                a.steady = Some(
                    v.parse()
                        .map_err(|_| format!("--steady {v}: 0 to 255 levels"))?,
                );
            }
            "--reference" => a.reference = Some(value()?),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => positional.push(arg),
        }
    }
    let [clip] = <[String; 1]>::try_from(positional).map_err(|_| USAGE.to_string())?;
    a.clip = clip;
    Ok(a)
}

fn run(a: Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let tensors =
        imdn::weights::shipped::load_file_or_shipped(&a.weights).map_err(|e| e.to_string())?;
    let mut up = Upscaler::from_tensors(tensors, &candle_core::Device::Cpu)
        .map_err(|e| format!("{}: {e}", a.weights))?;
    let config = *up.config();
    let scale = match config.variant {
        imdn::model::Variant::As => 2,
        _ => config.net_scale(),
    };
    let clip = Decoder::open(&a.clip)?;
    let reference = a.reference.as_deref().map(Decoder::open).transpose()?;
    let mut steady = a.steady.map(|t| Steady::new(t, 0.5));
    let (mut network, mut bicubic, mut steadied) = (
        Stability::default(),
        Stability::default(),
        Stability::default(),
    );
    // squared errors against the clean clip's network frames: plain, steadied
    let (mut err_plain, mut err_steady) = ((0.0, 0), (0.0, 0));
    let mut size = (0, 0);
    let result = (|| {
        while a.frames.is_none_or(|n| network.frames() < n) {
            let Some((rgb, (w, h))) = clip.next()? else {
                break;
            };
            size = (w, h);
            let out = (w * scale, h * scale);
            let sr = up
                .upscale_u8(&rgb, (w, h), 3, out)
                .map_err(|e| e.to_string())?;
            network.push(&sr);
            bicubic.push(&imdn::image_ops::imresize_u8(&rgb, w, h, 3, out.0, out.1));
            let mut held = sr.clone();
            if let Some(steady) = steady.as_mut() {
                // Steady works on the library's planar f32 frames, as in the element
                use imdn::image_ops::{chw_f32_to_hwc_u8, hwc_u8_to_chw_f32_vec};
                let planar_in = hwc_u8_to_chw_f32_vec(&rgb, w, h, 3).map_err(|e| e.to_string())?;
                let mut planar_out =
                    hwc_u8_to_chw_f32_vec(&sr, out.0, out.1, 3).map_err(|e| e.to_string())?;
                steady.apply(&planar_in, (w, h), &mut planar_out, out);
                chw_f32_to_hwc_u8(&planar_out, out.0, out.1, &mut held, 3);
                steadied.push(&held);
            }
            if let Some(reference) = &reference {
                let Some((clean, clean_size)) = reference.next()? else {
                    return Err("the reference clip is shorter".to_string());
                };
                if clean_size != (w, h) {
                    return Err("the reference clip has another size".into());
                }
                let clean_sr = up
                    .upscale_u8(&clean, (w, h), 3, out)
                    .map_err(|e| e.to_string())?;
                let add = |acc: &mut (f64, usize), e: (f64, usize)| {
                    acc.0 += e.0;
                    acc.1 += e.1;
                };
                add(&mut err_plain, squared_error(&sr, &clean_sr));
                add(&mut err_steady, squared_error(&held, &clean_sr));
            }
            if network.frames() % 25 == 0 {
                eprintln!("{} frames", network.frames());
            }
        }
        Ok::<(), String>(())
    })();
    let closed = clip.close();
    if let Some(r) = reference {
        r.close()?;
    }
    result?;
    closed?;
    if network.frames() < 2 {
        return Err(format!("{}: fewer than 2 frames decoded", a.clip));
    }
    println!(
        "{}: {} frames of {}×{}, {config} ×{scale}",
        a.clip,
        network.frames(),
        size.0,
        size.1
    );
    let mut rows = vec![("bicubic", &bicubic), ("network", &network)];
    if a.steady.is_some() {
        rows.push(("steadied", &steadied));
    }
    let mut json = vec![("frames", network.frames() as f64)];
    for (name, s) in rows {
        println!(
            "  {name:9} mean |change| {:.3} levels, temporal std {:.3} levels, flicker ratio {:.3}",
            s.mean_abs_change(),
            s.temporal_std(),
            s.mean_abs_change() / bicubic.mean_abs_change(),
        );
        let key = match name {
            "bicubic" => "flicker_ratio_bicubic",
            "network" => "flicker_ratio_network",
            _ => "flicker_ratio_steadied",
        };
        json.push((key, s.mean_abs_change() / bicubic.mean_abs_change()));
    }
    if a.reference.is_some() {
        println!(
            "  PSNR against the clean clip's network frames: network {:.2} dB{}",
            psnr(err_plain),
            if a.steady.is_some() {
                format!(", steadied {:.2} dB", psnr(err_steady))
            } else {
                String::new()
            }
        );
        json.push(("psnr_network_db", psnr(err_plain)));
        json.push(("psnr_steadied_db", psnr(err_steady)));
    }
    json.push(("bicubic_temporal_std", bicubic.temporal_std()));
    json.push(("network_temporal_std", network.temporal_std()));
    json.push(("steadied_temporal_std", steadied.temporal_std()));
    println!("{}", json_line(&json));
    Ok(())
}

fn main() -> ExitCode {
    common::main_with("flicker", parse_args, run)
}
