//! `imdn upscale`: one image through the network (and bicubic to a size it does not make).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use imdn::acs::EdgeMode;

use imdn::eval::read_rgb;
use imdn::model::Variant;

use crate::common::{RunArgs, auto_tile, load};

#[derive(Args)]
pub struct UpscaleArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Scale factor. IMDN/RTC: the model's scale (default). IMDN_AS: any factor ≥ 1.
    #[arg(long, conflicts_with_all = ["width", "height"])]
    scale: Option<f64>,
    /// Output width (with --height): exact target size.
    #[arg(long, requires = "height")]
    width: Option<usize>,
    /// Output height (with --width).
    #[arg(long, requires = "width")]
    height: Option<usize>,
    input: PathBuf,
    output: PathBuf,
}

/// Upscales `a.input` to `a.output`: at the model's scale, or to --scale or --width/--height.
pub fn upscale(a: UpscaleArgs) -> Result<()> {
    // without --weights: the shipped model whose scale covers --scale (then bicubic to size)
    let model_scale = match a.scale {
        Some(s) if s.is_finite() => (s.ceil() as usize).clamp(2, 4),
        _ => 2,
    };
    let mut up = load(&a.run, model_scale, EdgeMode::Replicate)?;
    let img = read_rgb(&a.input)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let config = *up.config();
    let out = match (a.width, a.height, a.scale) {
        (Some(ow), Some(oh), _) => (ow, oh),
        (_, _, Some(s)) => {
            if !(s >= 1.0 && s.is_finite()) {
                bail!("--scale must be a number ≥ 1, got {s}");
            }
            (
                (w as f64 * s).round() as usize,
                (h as f64 * s).round() as usize,
            )
        }
        _ if config.variant == Variant::As => {
            bail!("IMDN_AS weights need --scale or --width/--height")
        }
        _ => (w * config.net_scale(), h * config.net_scale()),
    };
    if config.variant != Variant::As && out != (w * config.net_scale(), h * config.net_scale()) {
        eprintln!(
            "note: {config} makes {}×{}; resizing that to {}×{} with bicubic",
            w * config.net_scale(),
            h * config.net_scale(),
            out.0,
            out.1
        );
    }
    let net_input = if config.variant == Variant::As {
        out
    } else {
        (w, h)
    };
    auto_tile(&mut up, &a.run, net_input);
    let t0 = Instant::now();
    let pixels = up.upscale_u8(img.as_raw(), (w, h), 3, out)?;
    let secs = t0.elapsed().as_secs_f64();
    let result = image::RgbImage::from_raw(out.0 as u32, out.1 as u32, pixels)
        .context("output buffer has the wrong size")?;
    result
        .save(&a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    eprintln!(
        "{} {}×{} → {}×{} with {config} in {secs:.2} s: {}",
        a.input.display(),
        w,
        h,
        out.0,
        out.1,
        a.output.display()
    );
    Ok(())
}
