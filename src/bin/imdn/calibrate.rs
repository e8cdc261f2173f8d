//! `imdn calibrate`: the input ranges of IMDN_RTC's 8-bit convs, recorded over images, written
//! with the weights (what `--precision int8` reads).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use imdn::cpu::CpuNet;
use imdn::eval::{list_images, read_rgb};
use imdn::image_ops;
use imdn::kernels::Kernels;
use imdn::model::Network;
use imdn::weights::{self, shipped};

#[derive(Args)]
pub struct CalibrateArgs {
    /// IMDN_RTC weights: a file or a shipped model's name.
    #[arg(long)]
    weights: String,
    /// A folder of images (PNG, JPEG, BMP) like those the network will upscale.
    #[arg(long)]
    images: PathBuf,
    /// The images are high-resolution: each is first downscaled by the network's scale
    /// (bicubic, as the evaluation's LR images are).
    #[arg(long)]
    downscale: bool,
    /// Where to write the weights with their calibration (safetensors; a model card kept).
    #[arg(long)]
    out: PathBuf,
    /// The fraction of each channel's values over the images that its range leaves out at
    /// each end (the rarest; 0: the extremes). A narrower range rounds the rest more finely.
    #[arg(long, default_value_t = 1e-4)]
    clip: f64,
}

/// Records the ranges over every image and writes the weights with them.
pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    let mut tensors = shipped::load_file_or_shipped(&a.weights)?;
    let (_, config) = Network::from_tensors(
        tensors.clone(),
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )
    .map_err(anyhow::Error::msg)
    .with_context(|| a.weights.clone())?;
    let net = CpuNet::with_kernels(&config, &tensors, 0, Kernels::default())?;
    let s = config.net_scale();
    let images = list_images(&a.images)?;
    if images.is_empty() {
        bail!("{}: no images", a.images.display());
    }
    if !(0.0..0.5).contains(&a.clip) {
        bail!("--clip {}: a fraction below 0.5", a.clip);
    }
    let frame = |path: &Path| -> Result<(Vec<f32>, (usize, usize))> {
        let (rgb, w, h) = input_image(path, a.downscale.then_some(s))?;
        Ok((image_ops::hwc_u8_to_chw_f32_vec(&rgb, w, h, 3)?, (h, w)))
    };
    let mut ranges = Vec::new();
    for (i, path) in images.iter().enumerate() {
        let (planar, (h, w)) = frame(path)?;
        net.record_input_ranges(&planar, (h, w), &mut ranges)?;
        eprintln!("[{}/{}] {} ({w}×{h})", i + 1, images.len(), path.display());
    }
    if a.clip > 0.0 {
        // again (each image read again: memory stays one frame's), counting the values over
        // the ranges, then leaving out the rarest
        let mut hists = Vec::new();
        for (i, path) in images.iter().enumerate() {
            let (planar, size) = frame(path)?;
            net.count_input_values(&planar, size, &ranges, &mut hists)?;
            eprintln!("[{}/{}] {} counted", i + 1, images.len(), path.display());
        }
        ranges = hists
            .iter()
            .map(|conv| conv.iter().map(|h| h.clipped(a.clip)).collect())
            .collect();
    }
    tensors.extend(net.calibration(&ranges)?);
    let mut card = match Path::new(&a.weights).exists() {
        true => weights::load_metadata(Path::new(&a.weights)).unwrap_or_default(),
        false => HashMap::new(),
    };
    card.insert(
        "int8_calibration".into(),
        format!(
            "input ranges of the block convs over {} images of {}{}{}",
            images.len(),
            // the folder's name, not where this machine keeps it
            a.images.file_name().map_or_else(
                || a.images.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            ),
            if a.downscale {
                format!(", downscaled ×{s}")
            } else {
                String::new()
            },
            if a.clip > 0.0 {
                format!(
                    ", leaving out {} of each channel's values at each end",
                    a.clip
                )
            } else {
                String::new()
            }
        ),
    );
    weights::save_safetensors_with_metadata(&tensors, &card, &a.out)?;
    eprintln!(
        "{} → {}: {} convs calibrated over {} images",
        a.weights,
        a.out.display(),
        ranges.len(),
        images.len()
    );
    Ok(())
}

/// The image at `path` as interleaved RGB, downscaled by `scale` (its sides first cropped to
/// multiples of it) when given.
fn input_image(path: &Path, scale: Option<usize>) -> Result<(Vec<u8>, usize, usize)> {
    let img = read_rgb(path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let Some(s) = scale else {
        return Ok((img.into_raw(), w, h));
    };
    let (hr, w, h) = image_ops::modcrop_u8(img.as_raw(), w, h, 3, s);
    if w < s || h < s {
        bail!("{} is smaller than ×{s}", path.display());
    }
    let (lw, lh) = (w / s, h / s);
    Ok((image_ops::imresize_u8(&hr, w, h, 3, lw, lh), lw, lh))
}
