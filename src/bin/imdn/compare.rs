//! `imdn compare`: a before/after picture of one image: bicubic and the network side by side,
//! with the region of most detail enlarged below.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use imdn::acs::EdgeMode;

use imdn::compare::compose;
use imdn::eval::read_rgb;
use imdn::image_ops::imresize_u8;
use imdn::model::Variant;

use crate::common::{RunArgs, auto_tile, load};

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Side of the enlarged region, in output pixels.
    #[arg(long, default_value_t = 64)]
    crop: usize,
    /// The low-resolution image (PNG, JPEG, BMP).
    input: PathBuf,
    /// The picture to write (PNG).
    output: PathBuf,
}

/// Writes `a.output`: `a.input` upscaled by bicubic (left) and by the network (right), at the
/// model's scale (×2 for IMDN_AS), with the most detailed region enlarged below both.
pub fn compare(a: CompareArgs) -> Result<()> {
    let mut up = load(&a.run, 2, EdgeMode::Zero)?;
    let img = read_rgb(&a.input)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let config = *up.config();
    let s = match config.variant {
        Variant::As => 2,
        _ => config.net_scale(),
    };
    let out = (w * s, h * s);
    auto_tile(
        &mut up,
        &a.run,
        if config.variant == Variant::As {
            out
        } else {
            (w, h)
        },
    );
    let network = up.upscale_u8(img.as_raw(), (w, h), 3, out)?;
    let bicubic = imresize_u8(img.as_raw(), w, h, 3, out.0, out.1);
    let (picture, (pw, ph), crop) = compose(&bicubic, &network, out, a.crop);
    image::RgbImage::from_raw(pw as u32, ph as u32, picture)
        .context("picture buffer has the wrong size")?
        .save(&a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    eprintln!(
        "{}: bicubic (left) and {config} (right) ×{s}, {}×{} each; below, the {}×{} region at \
         ({}, {}) enlarged ×{}: {}",
        a.input.display(),
        out.0,
        out.1,
        crop.side,
        crop.side,
        crop.x,
        crop.y,
        crop.zoom,
        a.output.display()
    );
    Ok(())
}
