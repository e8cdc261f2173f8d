//! Pixel conversion, BT.601 luma and a MATLAB-style bicubic `imresize`.
//!
//! Conventions: 8-bit images are interleaved HWC (row-major, `channels` values per pixel, the
//! first three being R, G, B); float images are planar CHW `f32` in [0, 1].
//!
//! The resize reproduces MATLAB's `imresize(img, [h w], 'bicubic')` (antialiased when
//! downscaling), which is how the Set5 LR images of the IMDN authors were made: the tests check
//! them bit for bit. Like MATLAB, the axis with the smaller scale is resized first (the height
//! on a tie, e.g. every uniform scale), and uint8 images are rounded to u8 between the passes.
//! [`ResizeTable`] holds one axis' weights so a video path can build them once per frame size.
//!
//! Invalid sizes never panic. Functions that return `Result` report them as
//! [`Error::InvalidInput`]; the plain `Vec`-returning convenience functions document what they
//! return instead (an empty `Vec`).

mod resize;

use crate::{Error, Result};

pub(crate) use resize::mirror_index;
pub use resize::{
    ResizeScratch, ResizeTable, Resizer, imresize_f32_chw, imresize_f32_chw_into,
    imresize_f32_chw_with, imresize_u8, imresize_u8_with, try_imresize_f32_chw, try_imresize_u8,
};

/// RGB is taken from the first three channels of each pixel.
const RGB: usize = 3;

/// Checks that `src` holds at least `width * height * channels` values, without overflow.
fn check_len(
    len: usize,
    width: usize,
    height: usize,
    channels: usize,
    what: &str,
) -> Result<usize> {
    let need = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .ok_or_else(|| {
            Error::InvalidInput(format!("{what}: {width}x{height}x{channels} overflows"))
        })?;
    if len < need {
        return Err(Error::InvalidInput(format!(
            "{what}: buffer holds {len} values, {width}x{height}x{channels} needs {need}"
        )));
    }
    Ok(need)
}

fn check_rgb_channels(channels: usize, what: &str) -> Result<()> {
    if channels < RGB {
        return Err(Error::InvalidInput(format!(
            "{what}: needs at least 3 channels per pixel, got {channels}"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// u8 <-> f32
// ---------------------------------------------------------------------------------------------

/// Interleaved u8 (first three channels of each pixel) into three planes of `value / 255`.
///
/// `dst` must hold `3 * width * height` values. Panic-free contract: if `channels < 3` or a
/// buffer is too short, nothing is written; [`try_hwc_u8_to_chw_f32`] reports why instead.
pub fn hwc_u8_to_chw_f32(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    dst: &mut [f32],
) {
    let _ = try_hwc_u8_to_chw_f32(src, width, height, channels, dst);
}

/// [`hwc_u8_to_chw_f32`] that reports invalid sizes.
pub fn try_hwc_u8_to_chw_f32(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    dst: &mut [f32],
) -> Result<()> {
    check_rgb_channels(channels, "hwc_u8_to_chw_f32")?;
    check_len(
        src.len(),
        width,
        height,
        channels,
        "hwc_u8_to_chw_f32 source",
    )?;
    check_len(
        dst.len(),
        width,
        height,
        RGB,
        "hwc_u8_to_chw_f32 destination",
    )?;
    let plane = width * height;
    let (r, rest) = dst.split_at_mut(plane);
    let (g, rest) = rest.split_at_mut(plane);
    let b = &mut rest[..plane];
    for (i, px) in src.chunks_exact(channels).take(plane).enumerate() {
        r[i] = f32::from(px[0]) / 255.0;
        g[i] = f32::from(px[1]) / 255.0;
        b[i] = f32::from(px[2]) / 255.0;
    }
    Ok(())
}

/// Allocating [`hwc_u8_to_chw_f32`]: returns `3 * width * height` values.
pub fn hwc_u8_to_chw_f32_vec(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
) -> Result<Vec<f32>> {
    // Validate the source before allocating, so absurd sizes fail instead of aborting.
    check_rgb_channels(channels, "hwc_u8_to_chw_f32")?;
    check_len(
        src.len(),
        width,
        height,
        channels,
        "hwc_u8_to_chw_f32 source",
    )?;
    let mut dst = vec![0.0; width * height * RGB];
    try_hwc_u8_to_chw_f32(src, width, height, channels, &mut dst)?;
    Ok(dst)
}

/// One float sample to u8 the way the authors' script does it: clamp to [0, 1], ×255, numpy's
/// round (half to even). NaN becomes 0.
#[inline]
pub fn f32_to_u8(v: f32) -> u8 {
    // `as` saturates and maps NaN to 0, so no value can panic here.
    (v.clamp(0.0, 1.0) * 255.0).round_ties_even() as u8
}

/// Three planes of floats into the first three channels of each interleaved u8 pixel of `dst`;
/// other channels (e.g. alpha) are left untouched.
///
/// `src` must hold `3 * width * height` values. Panic-free contract: if `channels < 3` or a
/// buffer is too short, nothing is written; [`try_chw_f32_to_hwc_u8`] reports why instead.
pub fn chw_f32_to_hwc_u8(
    src: &[f32],
    width: usize,
    height: usize,
    dst: &mut [u8],
    channels: usize,
) {
    let _ = try_chw_f32_to_hwc_u8(src, width, height, dst, channels);
}

/// [`chw_f32_to_hwc_u8`] that reports invalid sizes.
pub fn try_chw_f32_to_hwc_u8(
    src: &[f32],
    width: usize,
    height: usize,
    dst: &mut [u8],
    channels: usize,
) -> Result<()> {
    check_rgb_channels(channels, "chw_f32_to_hwc_u8")?;
    check_len(src.len(), width, height, RGB, "chw_f32_to_hwc_u8 source")?;
    check_len(
        dst.len(),
        width,
        height,
        channels,
        "chw_f32_to_hwc_u8 destination",
    )?;
    let plane = width * height;
    let (r, g, b) = (
        &src[..plane],
        &src[plane..2 * plane],
        &src[2 * plane..3 * plane],
    );
    for (i, px) in dst.chunks_exact_mut(channels).take(plane).enumerate() {
        px[0] = f32_to_u8(r[i]);
        px[1] = f32_to_u8(g[i]);
        px[2] = f32_to_u8(b[i]);
    }
    Ok(())
}

/// Allocating [`chw_f32_to_hwc_u8`]: returns interleaved RGB (`3 * width * height` values).
pub fn chw_f32_to_hwc_u8_vec(src: &[f32], width: usize, height: usize) -> Result<Vec<u8>> {
    // Validate the source before allocating, so absurd sizes fail instead of aborting.
    let len = check_len(src.len(), width, height, RGB, "chw_f32_to_hwc_u8 source")?;
    let mut dst = vec![0; len];
    try_chw_f32_to_hwc_u8(src, width, height, &mut dst, RGB)?;
    Ok(dst)
}

// ---------------------------------------------------------------------------------------------
// BT.601 luma
// ---------------------------------------------------------------------------------------------

/// BT.601 luma of one pixel as skimage's `rgb2ycbcr` then numpy's clip/round compute it.
#[inline]
pub fn rgb_to_y(r: u8, g: u8, b: u8) -> u8 {
    // skimage scales u8 by multiplying with 1/255 (img_as_float), then a matrix product whose
    // terms are summed left to right; keeping that order matches it to the last bit.
    let k = 1.0 / 255.0;
    let (r, g, b) = (f64::from(r) * k, f64::from(g) * k, f64::from(b) * k);
    let y = r * 65.481 + g * 128.553 + b * 24.966 + 16.0;
    y.clamp(0.0, 255.0).round_ties_even() as u8
}

/// Y plane (`width * height` values) of an interleaved image with at least three channels.
///
/// Panic-free contract: returns an empty `Vec` if `channels < 3` or `src` is too short.
pub fn rgb_u8_to_y(src: &[u8], width: usize, height: usize, channels: usize) -> Vec<u8> {
    try_rgb_u8_to_y(src, width, height, channels).unwrap_or_default()
}

/// [`rgb_u8_to_y`] that reports invalid sizes.
pub fn try_rgb_u8_to_y(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
) -> Result<Vec<u8>> {
    check_rgb_channels(channels, "rgb_u8_to_y")?;
    let need = check_len(src.len(), width, height, channels, "rgb_u8_to_y")?;
    Ok(src[..need]
        .chunks_exact(channels)
        .map(|px| rgb_to_y(px[0], px[1], px[2]))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Mod-crop
// ---------------------------------------------------------------------------------------------

/// Crops the bottom/right so both sizes are multiples of `s`, as the authors do before
/// downscaling. Returns `(pixels, width, height)`.
///
/// Panic-free contract: `s == 0` is treated as 1 (no crop); a `src` shorter than
/// `width * height * channels` gives `(vec![], 0, 0)`.
pub fn modcrop_u8(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    s: usize,
) -> (Vec<u8>, usize, usize) {
    if check_len(src.len(), width, height, channels, "modcrop_u8").is_err() {
        return (Vec::new(), 0, 0);
    }
    let s = s.max(1);
    let (w, h) = (width - width % s, height - height % s);
    if w * h * channels == 0 {
        return (Vec::new(), w, h);
    }
    let mut out = Vec::with_capacity(w * h * channels);
    for row in src.chunks_exact(width * channels).take(h) {
        out.extend_from_slice(&row[..w * channels]);
    }
    (out, w, h)
}
