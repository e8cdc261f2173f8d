//! Training data: a folder of HR images decoded once into memory (u8 RGB), and the sampler that
//! draws a batch of (network input, target) patches from it with the run's [`Rng`].
//!
//! - IMDN / IMDN_RTC ×s: a random `patch·s` HR square from a random image, a random flip /
//!   90° rotation, LR = our MATLAB-style bicubic ([`image_ops::imresize_u8`]) of that u8 square
//!   to `patch`, both then `/ 255`.
//! - IMDN_AS: a random `4·patch` HR square (the body then runs at `patch`×`patch`), a scale
//!   `u` uniform in [`AS_SCALES`], LR = bicubic of the u8 square to `round(4·patch / u)`, and
//!   the network input is that LR brought back to the HR size by the f32 bicubic the engine
//!   uses at inference ([`image_ops::imresize_f32_chw`]); the target is the HR square. The
//!   batch records each sample's [`scale_code`] of `4·patch / round(4·patch / u)`, the scale the
//!   input was upscaled by, for the network's scale input.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::augment::{Dihedral, crop_rgb};
use super::rng::Rng;
use crate::eval::{list_images, read_rgb};
use crate::image_ops::{self, ResizeTable};
use crate::model::{AS_SCALES, Config, Variant, scale_code};
use crate::{Error, Result};

/// One decoded image, interleaved RGB.
pub struct Image {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// Every image of a folder large enough for the crops, in name order.
pub struct Dataset {
    pub dir: PathBuf,
    pub images: Vec<Image>,
    /// Images left out because a side is below the crop size.
    pub skipped: usize,
}

impl Dataset {
    /// Decodes every image (png, jpg, bmp) of `dir` whose sides are both at least `min_side`.
    pub fn load(dir: &Path, min_side: usize) -> Result<Self> {
        let paths = list_images(dir)?;
        let decoded: Vec<Image> = paths
            .par_iter()
            .map(|p| {
                let img = read_rgb(p)?;
                Ok(Image {
                    name: p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    width: img.width() as usize,
                    height: img.height() as usize,
                    rgb: img.into_raw(),
                })
            })
            .collect::<Result<_>>()?;
        let total = decoded.len();
        let images: Vec<Image> = decoded
            .into_iter()
            .filter(|i| i.width >= min_side && i.height >= min_side)
            .collect();
        if images.is_empty() {
            return Err(Error::InvalidInput(format!(
                "none of the {total} images in {} is at least {min_side}×{min_side}",
                dir.display()
            )));
        }
        Ok(Self {
            dir: dir.to_owned(),
            skipped: total - images.len(),
            images,
        })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Decoded size in bytes.
    pub fn bytes(&self) -> usize {
        self.images.iter().map(|i| i.rgb.len()).sum()
    }

    /// FNV-1a of the names and sizes in order: a resumed run checks it sees the same data.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for i in &self.images {
            eat(i.name.as_bytes());
            eat(&(i.width as u64).to_le_bytes());
            eat(&(i.height as u64).to_le_bytes());
        }
        h
    }
}

/// A batch in NCHW f32, values in [0, 1].
pub struct Batch {
    pub n: usize,
    /// Network input: `n × 3 × input_side²`.
    pub input: Vec<f32>,
    pub input_side: usize,
    /// Target: `n × 3 × target_side²`.
    pub target: Vec<f32>,
    pub target_side: usize,
    /// IMDN_AS: each sample's [`scale_code`]; empty for the fixed-scale networks.
    pub scale_codes: Vec<f32>,
}

/// Draws batches for one network configuration.
pub struct Sampler {
    /// Side of the network input (IMDN/RTC: the LR patch; AS: the HR square).
    input_side: usize,
    /// Side of the HR square cut from an image.
    hr_side: usize,
    /// HR → LR bicubic tables (IMDN/RTC: fixed sizes, built once).
    down: Option<ResizeTable>,
    /// Minimum [`detail`] of an HR square; 0 takes every square.
    min_detail: f32,
}

/// Tries per sample to find a square with at least the minimum detail before the most detailed
/// one drawn is taken.
pub const DETAIL_TRIES: usize = 8;

/// Mean absolute difference between horizontal and vertical neighbours of the luma proxy
/// `(R + 2G + B) / 4` over the `side × side` square at (`x0`, `y0`), in 8-bit levels. Flat sky
/// scores about 0.5, textured areas 8 and more; Set5's images average about 6 at full size.
pub fn detail(img: &Image, x0: usize, y0: usize, side: usize) -> f32 {
    let luma = |x: usize, y: usize| {
        let p = &img.rgb[(y * img.width + x) * 3..][..3];
        (u32::from(p[0]) + 2 * u32::from(p[1]) + u32::from(p[2])) as i32
    };
    let mut sum = 0u64;
    for y in y0..y0 + side - 1 {
        for x in x0..x0 + side - 1 {
            let c = luma(x, y);
            sum += (c - luma(x + 1, y)).unsigned_abs() as u64
                + (c - luma(x, y + 1)).unsigned_abs() as u64;
        }
    }
    let pairs = 2 * (side - 1).max(1) * (side - 1).max(1);
    sum as f32 / (4 * pairs) as f32
}

/// What [`Sampler::sample`] drew for one sample.
struct Draw<'d> {
    img: &'d Image,
    x0: usize,
    y0: usize,
    symmetry: Dihedral,
    /// The LR side: the patch, or (IMDN_AS) the random scale's.
    lr_side: usize,
}

impl Sampler {
    /// `patch`: the LR patch side for IMDN/RTC (HR = `patch·s`); for IMDN_AS the side its body
    /// runs at (HR and network input = `4·patch`).
    pub fn new(config: &Config, patch: usize) -> Result<Self> {
        if patch == 0 {
            return Err(Error::InvalidInput("patch must be at least 1".into()));
        }
        Ok(match config.variant {
            Variant::As => Self {
                input_side: 4 * patch,
                hr_side: 4 * patch,
                down: None,
                min_detail: 0.0,
            },
            _ => {
                let s = config.upsampler_scale;
                Self {
                    input_side: patch,
                    hr_side: patch * s,
                    down: Some(ResizeTable::new(patch * s, patch)?),
                    min_detail: 0.0,
                }
            }
        })
    }

    /// Prefer HR squares with at least this [`detail`]: up to [`DETAIL_TRIES`] positions are
    /// drawn per sample and the first that reaches it (else the most detailed) is taken. Soft
    /// photographs are mostly flat, where bicubic is already right; this spends the steps on
    /// edges and texture.
    pub fn with_min_detail(mut self, min_detail: f32) -> Self {
        self.min_detail = min_detail;
        self
    }

    /// Side of the HR squares, the smallest image side the sampler can use.
    pub fn hr_side(&self) -> usize {
        self.hr_side
    }

    pub fn input_side(&self) -> usize {
        self.input_side
    }

    fn pick_square<'d>(&self, data: &'d Dataset, rng: &mut Rng) -> (&'d Image, usize, usize) {
        let hs = self.hr_side;
        let mut draw = || {
            let img = &data.images[rng.below(data.len())];
            let x0 = rng.below(img.width - hs + 1);
            let y0 = rng.below(img.height - hs + 1);
            (img, x0, y0)
        };
        if self.min_detail <= 0.0 {
            return draw();
        }
        let score = |&(img, x0, y0): &(&Image, usize, usize)| detail(img, x0, y0, hs);
        let first = draw();
        let mut best = (first, score(&first));
        for _ in 1..DETAIL_TRIES {
            if best.1 >= self.min_detail {
                break;
            }
            let next = draw();
            let d = score(&next);
            if d > best.1 {
                best = (next, d);
            }
        }
        best.0
    }

    /// Draws `n` samples. Per sample, in this order: image, x, y (repeated while the square is
    /// below the minimum detail, at most [`DETAIL_TRIES`] times), symmetry, then (IMDN_AS) the
    /// scale. Everything random comes from `rng`, drawn first in that order, so a seed gives
    /// the same batch at any thread count; the crops and resampling then run in parallel.
    pub fn sample(&self, data: &Dataset, rng: &mut Rng, n: usize) -> Result<Batch> {
        let (hs, is) = (self.hr_side, self.input_side);
        let draws: Vec<Draw> = (0..n)
            .map(|_| {
                let (img, x0, y0) = self.pick_square(data, rng);
                let symmetry = Dihedral(rng.below(8) as u8);
                let lr_side = match self.down {
                    Some(_) => is,
                    None => {
                        let u = rng.uniform(AS_SCALES.0, AS_SCALES.1);
                        ((hs as f64 / u).round() as usize).clamp(1, hs)
                    }
                };
                Draw {
                    img,
                    x0,
                    y0,
                    symmetry,
                    lr_side,
                }
            })
            .collect();
        let mut input = vec![0f32; n * 3 * is * is];
        let mut target = vec![0f32; n * 3 * hs * hs];
        input
            .par_chunks_mut(3 * is * is)
            .zip(target.par_chunks_mut(3 * hs * hs))
            .zip(draws.par_iter())
            .try_for_each(|((inp, tgt), d)| self.fill(d, inp, tgt))?;
        let scale_codes = match self.down {
            Some(_) => Vec::new(),
            None => draws
                .iter()
                .map(|d| scale_code(hs as f64 / d.lr_side as f64))
                .collect(),
        };
        Ok(Batch {
            n,
            input,
            input_side: is,
            target,
            target_side: hs,
            scale_codes,
        })
    }

    /// One sample's HR square into `target` and its network input into `input` (CHW, /255).
    fn fill(&self, d: &Draw, input: &mut [f32], target: &mut [f32]) -> Result<()> {
        let hs = self.hr_side;
        let hr = crop_rgb(&d.img.rgb, d.img.width, d.x0, d.y0, hs, d.symmetry);
        image_ops::try_hwc_u8_to_chw_f32(&hr, hs, hs, 3, target)?;
        let ls = d.lr_side;
        match &self.down {
            Some(down) => {
                let lr = image_ops::imresize_u8_with(&hr, hs, hs, 3, down, down)?;
                image_ops::try_hwc_u8_to_chw_f32(&lr, ls, ls, 3, input)?;
            }
            None => {
                let lr = image_ops::try_imresize_u8(&hr, hs, hs, 3, ls, ls)?;
                let lr = image_ops::hwc_u8_to_chw_f32_vec(&lr, ls, ls, 3)?;
                let up = image_ops::try_imresize_f32_chw(&lr, ls, ls, 3, hs, hs)?;
                input.copy_from_slice(&up);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64×32 image: the left half flat grey, the right half a checkerboard.
    fn half_textured() -> Dataset {
        let (w, h) = (64, 32);
        let mut rgb = vec![128u8; w * h * 3];
        for y in 0..h {
            for x in w / 2..w {
                let v = if (x + y) % 2 == 0 { 30 } else { 220 };
                rgb[(y * w + x) * 3..][..3].fill(v);
            }
        }
        Dataset {
            dir: PathBuf::new(),
            images: vec![Image {
                name: "half".into(),
                width: w,
                height: h,
                rgb,
            }],
            skipped: 0,
        }
    }

    #[test]
    fn detail_separates_flat_from_texture() {
        let data = half_textured();
        assert_eq!(detail(&data.images[0], 0, 0, 16), 0.0);
        assert!(detail(&data.images[0], 40, 8, 16) > 100.0);
    }

    #[test]
    fn min_detail_prefers_textured_squares() {
        let data = half_textured();
        let config = Config::rtc(2);
        // 16×16 HR squares: x0 in 0..=48, textured entirely from x0 = 32
        let count_textured = |min: f32| {
            let sampler = Sampler::new(&config, 8).unwrap().with_min_detail(min);
            let mut rng = Rng::new(7);
            (0..400)
                .filter(|_| {
                    let (img, x0, y0) = sampler.pick_square(&data, &mut rng);
                    detail(img, x0, y0, 16) > 100.0
                })
                .count()
        };
        let uniform = count_textured(0.0);
        let preferred = count_textured(100.0);
        assert!(uniform < 200, "uniform sampling: {uniform} of 400 textured");
        assert!(
            preferred > 380,
            "with a minimum: {preferred} of 400 textured"
        );
    }

    /// IMDN_AS batches carry each sample's scale code, within the trained range and varied;
    /// fixed-scale batches carry none.
    #[test]
    fn imdn_as_batches_carry_their_scales() {
        let data = half_textured();
        let mut rng = Rng::new(3);
        let batch = Sampler::new(&Config::imdn_as(), 4)
            .unwrap()
            .sample(&data, &mut rng, 16)
            .unwrap();
        assert_eq!(batch.scale_codes.len(), 16);
        let (lo, hi) = (scale_code(AS_SCALES.0), scale_code(AS_SCALES.1));
        for &c in &batch.scale_codes {
            assert!((lo..=hi).contains(&c), "{c} outside [{lo}, {hi}]");
        }
        let spread = batch.scale_codes.iter().fold(0f32, |m, &c| m.max(c))
            - batch.scale_codes.iter().fold(1f32, |m, &c| m.min(c));
        assert!(spread > 0.5, "scale codes spread {spread}");
        let fixed = Sampler::new(&Config::rtc(2), 8)
            .unwrap()
            .sample(&data, &mut rng, 2)
            .unwrap();
        assert!(fixed.scale_codes.is_empty());
    }

    /// The draws are sequential and the resampling parallel: a seed gives the same batch on
    /// one thread and on four.
    #[test]
    fn a_batch_does_not_depend_on_the_thread_count() {
        let data = half_textured();
        for config in [Config::rtc(2), Config::imdn_as()] {
            let sampler = Sampler::new(&config, 4).unwrap();
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut rng = Rng::new(11);
                let b = pool.install(|| sampler.sample(&data, &mut rng, 12).unwrap());
                (b.input, b.target, b.scale_codes, rng.state())
            };
            assert_eq!(on(1), on(4), "{config}");
        }
    }
}
