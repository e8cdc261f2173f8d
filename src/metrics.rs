//! PSNR and SSIM on the BT.601 Y channel, as the IMDN authors' evaluation protocol computes them.
//!
//! The protocol: SR and HR are u8 RGB of the same size; `shave` pixels are cut from every border
//! of both; both are converted to u8 Y ([`crate::image_ops::rgb_to_y`]); PSNR uses data range 255;
//! SSIM is skimage's `structural_similarity(gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=255)`. Everything is computed in f64.
//!
//! Invalid input never panics: every function here returns `f64::NAN` when the images have
//! different or too short buffers, or nothing (PSNR) / less than an 11×11 window (SSIM) is left
//! after shaving. `shave == 0` means no shaving.

use crate::image_ops::{mirror_index, rgb_to_y};

/// Data range of u8 images.
const PEAK: f64 = 255.0;
/// skimage's SSIM constants.
const K1: f64 = 0.01;
const K2: f64 = 0.03;
/// Gaussian window σ, and scipy's `truncate`: radius = int(3.5 · 1.5 + 0.5) = 5.
const SIGMA: f64 = 1.5;
const RADIUS: usize = 5;
/// skimage's window size 2·radius + 1, also the minimum image side it accepts.
const WIN: usize = 2 * RADIUS + 1;

/// PSNR of two equally long u8 buffers, data range 255. Identical buffers give `f64::INFINITY`;
/// empty or differently long ones give `f64::NAN`.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::NAN;
    }
    // Squared u8 differences sum exactly in integers, so the MSE is correctly rounded.
    let sse: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)).pow(2))
        .sum();
    if sse == 0 {
        return f64::INFINITY;
    }
    let mse = sse as f64 / a.len() as f64;
    10.0 * (PEAK * PEAK / mse).log10()
}

/// The normalised 11-tap Gaussian of scipy's `gaussian_filter(sigma=1.5, truncate=3.5)`,
/// centre first: `w[j]` weighs the samples at distance `j`.
fn gaussian_taps() -> [f64; RADIUS + 1] {
    let k = -0.5 / (SIGMA * SIGMA);
    let mut half = [0.0; RADIUS + 1];
    for (j, w) in half.iter_mut().enumerate() {
        *w = (k * (j * j) as f64).exp();
    }
    // scipy sums the full window left to right: -5..=5.
    let sum =
        (-(RADIUS as i64)..=RADIUS as i64).fold(0.0, |s, x| s + half[x.unsigned_abs() as usize]);
    half.map(|w| w / sum)
}

/// One sample of scipy's symmetric `correlate1d`: centre term first, then the pairs from the
/// outside in. `at(d)` reads the (reflected) sample at offset `d`.
#[inline]
fn correlate_sym(w: &[f64; RADIUS + 1], at: impl Fn(i64) -> f64) -> f64 {
    let mut acc = at(0) * w[0];
    for j in (1..=RADIUS).rev() {
        let d = j as i64;
        acc += (at(-d) + at(d)) * w[j];
    }
    acc
}

/// scipy `gaussian_filter(img, 1.5, mode='reflect')` on a row-major `width × height` image:
/// first along axis 0 (columns), then along axis 1 (rows). Sizes must be non-zero.
fn gaussian_filter(img: &[f64], width: usize, height: usize, w: &[f64; RADIUS + 1]) -> Vec<f64> {
    let mut tmp = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            let at = |d: i64| img[mirror_index(y as i64 + d, height) * width + x];
            tmp[y * width + x] = correlate_sym(w, at);
        }
    }
    let mut out = vec![0.0; width * height];
    for (src, dst) in tmp.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        for (x, o) in dst.iter_mut().enumerate() {
            *o = correlate_sym(w, |d| src[mirror_index(x as i64 + d, width)]);
        }
    }
    out
}

/// SSIM of two single-channel u8 images of `width × height` (row-major), as skimage computes it
/// with Gaussian weights: the mean of the SSIM map without its 5-pixel border.
///
/// Returns `f64::NAN` if a buffer is shorter than `width * height` or a side is below 11 pixels
/// (skimage refuses those too).
pub fn ssim(a_gray: &[u8], b_gray: &[u8], width: usize, height: usize) -> f64 {
    let Some(n) = width.checked_mul(height) else {
        return f64::NAN;
    };
    if width < WIN || height < WIN || a_gray.len() < n || b_gray.len() < n {
        return f64::NAN;
    }
    let x: Vec<f64> = a_gray[..n].iter().map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = b_gray[..n].iter().map(|&v| f64::from(v)).collect();
    let map = ssim_map(&x, &y, width, height);
    mean_inner(&map, width, height, RADIUS)
}

/// skimage's SSIM map (population covariance) of two f64 images.
fn ssim_map(x: &[f64], y: &[f64], width: usize, height: usize) -> Vec<f64> {
    let w = gaussian_taps();
    let filter = |img: &[f64]| gaussian_filter(img, width, height, &w);
    let product =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(p, q)| p * q).collect() };
    let ux = filter(x);
    let uy = filter(y);
    let uxx = filter(&product(x, x));
    let uyy = filter(&product(y, y));
    let uxy = filter(&product(x, y));
    let c1 = (K1 * PEAK) * (K1 * PEAK);
    let c2 = (K2 * PEAK) * (K2 * PEAK);
    (0..width * height)
        .map(|i| {
            let (mx, my) = (ux[i], uy[i]);
            let vx = uxx[i] - mx * mx;
            let vy = uyy[i] - my * my;
            let vxy = uxy[i] - mx * my;
            let a1 = 2.0 * mx * my + c1;
            let a2 = 2.0 * vxy + c2;
            let b1 = mx * mx + my * my + c1;
            let b2 = vx + vy + c2;
            (a1 * a2) / (b1 * b2)
        })
        .collect()
}

/// Mean of a `width × height` map without a `pad`-pixel border (the caller ensures it is
/// non-empty).
fn mean_inner(map: &[f64], width: usize, height: usize, pad: usize) -> f64 {
    let (w, h) = (width - 2 * pad, height - 2 * pad);
    let sum: f64 = map
        .chunks_exact(width)
        .skip(pad)
        .take(h)
        .map(|row| row[pad..pad + w].iter().sum::<f64>())
        .sum();
    sum / (w * h) as f64
}

/// Y planes of SR and HR after shaving `shave` pixels from every border, with their size.
/// `None` when the inputs are invalid or nothing is left.
fn shaved_y(
    sr: &[u8],
    hr: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    shave: usize,
) -> Option<(Vec<u8>, Vec<u8>, usize, usize)> {
    let n = width.checked_mul(height)?.checked_mul(channels)?;
    if channels < 3 || sr.len() < n || hr.len() < n {
        return None;
    }
    let w = width
        .checked_sub(shave.checked_mul(2)?)
        .filter(|&w| w > 0)?;
    let h = height.checked_sub(shave * 2).filter(|&h| h > 0)?;
    let y_of = |img: &[u8]| -> Vec<u8> {
        img.chunks_exact(width * channels)
            .skip(shave)
            .take(h)
            .flat_map(|row| row[shave * channels..(shave + w) * channels].chunks_exact(channels))
            .map(|px| rgb_to_y(px[0], px[1], px[2]))
            .collect()
    };
    Some((y_of(sr), y_of(hr), w, h))
}

/// PSNR on Y of two interleaved RGB(A) u8 images of the same size, after shaving `shave`
/// pixels from every border (the authors use `shave = scale`). `f64::NAN` on invalid input.
pub fn psnr_y(
    sr: &[u8],
    hr: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    shave: usize,
) -> f64 {
    match shaved_y(sr, hr, width, height, channels, shave) {
        Some((a, b, _, _)) => psnr(&a, &b),
        None => f64::NAN,
    }
}

/// SSIM on Y, same protocol as [`psnr_y`]. `f64::NAN` on invalid input or when less than
/// 11×11 pixels are left after shaving.
pub fn ssim_y(
    sr: &[u8],
    hr: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    shave: usize,
) -> f64 {
    match shaved_y(sr, hr, width, height, channels, shave) {
        Some((a, b, w, h)) => ssim(&a, &b, w, h),
        None => f64::NAN,
    }
}

/// `(PSNR, SSIM)` on Y with one Y conversion; see [`psnr_y`] and [`ssim_y`].
pub fn psnr_ssim_y(
    sr: &[u8],
    hr: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    shave: usize,
) -> (f64, f64) {
    match shaved_y(sr, hr, width, height, channels, shave) {
        Some((a, b, w, h)) => (psnr(&a, &b), ssim(&a, &b, w, h)),
        None => (f64::NAN, f64::NAN),
    }
}
