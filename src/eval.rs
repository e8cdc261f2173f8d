//! Evaluation on a folder of HR images under the authors' protocol: HR mod-cropped to the
//! scale, LR from a folder or made by our bicubic, SR clamped and rounded to u8, PSNR/SSIM on Y
//! with `scale` pixels shaved, next to a bicubic baseline.

use std::path::{Path, PathBuf};

use crate::engine::Upscaler;
use crate::model::Variant;
use crate::{Error, Result, image_ops, metrics};

/// Where the LR images come from.
pub enum LrSource<'a> {
    /// A folder with `NAME.ext` or the authors' `NAMEx{scale}.ext` for each HR `NAME.ext`.
    Folder(&'a Path),
    /// Made from HR by our MATLAB-style bicubic.
    Downscale,
}

/// One image's figures.
#[derive(Clone, Debug)]
pub struct ImageScore {
    pub name: String,
    pub psnr_y: f64,
    pub ssim_y: f64,
    pub bicubic_psnr_y: f64,
    pub bicubic_ssim_y: f64,
    /// With an 8-bit network: how far the image's values fell outside its ranges.
    pub int8: Option<Int8Image>,
}

/// How an image ran in 8 bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Int8Image {
    /// u8 steps outside the calibrated ranges, summed, per pixel.
    pub excess: f64,
    /// Whether it (a tile of it) ran again in f32 for that.
    pub rerun: bool,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub images: Vec<ImageScore>,
}

impl Report {
    fn mean(&self, f: fn(&ImageScore) -> f64) -> f64 {
        self.images.iter().map(f).sum::<f64>() / self.images.len() as f64
    }
    /// Mean (PSNR, SSIM) of the network.
    pub fn mean_sr(&self) -> (f64, f64) {
        (self.mean(|r| r.psnr_y), self.mean(|r| r.ssim_y))
    }
    /// Mean (PSNR, SSIM) of the bicubic baseline.
    pub fn mean_bicubic(&self) -> (f64, f64) {
        (
            self.mean(|r| r.bicubic_psnr_y),
            self.mean(|r| r.bicubic_ssim_y),
        )
    }
}

/// The image files of a folder, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::InvalidInput(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_image(p))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::InvalidInput(format!(
            "no images (png, jpg, bmp) in {}",
            dir.display()
        )));
    }
    Ok(names)
}

fn is_image(p: &Path) -> bool {
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "bmp"))
}

/// The LR partner of an HR image: `NAME.ext` or `NAMEx{s}.ext`, any image extension.
pub fn find_lr(dir: &Path, hr: &Path, s: usize) -> Result<PathBuf> {
    let stem = stem(hr);
    for name in [stem.clone(), format!("{stem}x{s}")] {
        for ext in ["png", "bmp", "jpg", "jpeg", "PNG", "BMP", "JPG", "JPEG"] {
            let p = dir.join(format!("{name}.{ext}"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::InvalidInput(format!(
        "no LR image for {} in {} (tried {stem}.* and {stem}x{s}.*)",
        hr.display(),
        dir.display()
    )))
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads an image file as 8-bit RGB.
pub fn read_rgb(path: &Path) -> Result<image::RgbImage> {
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|source| Error::Image {
            path: path.to_path_buf(),
            source,
        })
}

/// Scores `up` at `scale` on every image of `hr_dir`; `progress` is called after each image.
pub fn evaluate(
    up: &mut Upscaler,
    hr_dir: &Path,
    lr: LrSource<'_>,
    scale: usize,
    mut progress: impl FnMut(&ImageScore),
) -> Result<Report> {
    let config = *up.config();
    if scale == 0 || (config.variant != Variant::As && config.net_scale() != scale) {
        return Err(Error::InvalidInput(format!(
            "{config} cannot be evaluated at ×{scale}"
        )));
    }
    let mut images = Vec::new();
    for hr_path in list_images(hr_dir)? {
        let hr = read_rgb(&hr_path)?;
        let (hr, w, h) = image_ops::modcrop_u8(
            hr.as_raw(),
            hr.width() as usize,
            hr.height() as usize,
            3,
            scale,
        );
        let (lw, lh) = (w / scale, h / scale);
        if lw == 0 || lh == 0 {
            return Err(Error::InvalidInput(format!(
                "{} is smaller than ×{scale}",
                hr_path.display()
            )));
        }
        let lr = match lr {
            LrSource::Folder(dir) => {
                let p = find_lr(dir, &hr_path, scale)?;
                let img = read_rgb(&p)?;
                if (img.width() as usize, img.height() as usize) != (lw, lh) {
                    return Err(Error::InvalidInput(format!(
                        "{} is {}×{}, expected {lw}×{lh}",
                        p.display(),
                        img.width(),
                        img.height()
                    )));
                }
                img.into_raw()
            }
            LrSource::Downscale => image_ops::imresize_u8(&hr, w, h, 3, lw, lh),
        };
        let before = up.int8_stats();
        let sr = up.upscale_u8(&lr, (lw, lh), 3, (w, h))?;
        let int8 = before
            .zip(up.int8_stats())
            .map(|(before, after)| Int8Image {
                excess: after.excess_since(&before),
                rerun: after.reruns > before.reruns,
            });
        let bicubic = image_ops::imresize_u8(&lr, lw, lh, 3, w, h);
        let (psnr_y, ssim_y) = metrics::psnr_ssim_y(&sr, &hr, w, h, 3, scale);
        let (bicubic_psnr_y, bicubic_ssim_y) = metrics::psnr_ssim_y(&bicubic, &hr, w, h, 3, scale);
        let score = ImageScore {
            name: stem(&hr_path),
            psnr_y,
            ssim_y,
            bicubic_psnr_y,
            bicubic_ssim_y,
            int8,
        };
        progress(&score);
        images.push(score);
    }
    Ok(Report { images })
}
