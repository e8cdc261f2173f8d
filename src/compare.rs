//! Before/after pictures: bicubic and the network side by side, with an enlarged crop of the
//! region where they differ most in detail, so that a user sees what the network adds.
//!
//! All images are interleaved 8-bit RGB.

/// Width of the grey lines between the panels.
pub const GAP: usize = 4;
const GAP_GREY: u8 = 96;
/// The crop's outline in the upper panels.
const OUTLINE: [u8; 3] = [255, 200, 0];

/// Where the crop is and how it is enlarged in a [`compose`]d picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    pub x: usize,
    pub y: usize,
    pub side: usize,
    /// Each crop pixel becomes `zoom`×`zoom` pixels below.
    pub zoom: usize,
}

/// The top-left corner of the `side`×`side` window with the most detail: the largest sum of
/// absolute luma steps to the right and downward neighbours, on a grid of `side / 4` steps.
pub fn most_detailed(rgb: &[u8], (w, h): (usize, usize), side: usize) -> (usize, usize) {
    let side = side.min(w).min(h).max(1);
    // the authors' Y (BT.601), as the metrics read detail
    let luma: Vec<i32> = crate::image_ops::rgb_u8_to_y(rgb, w, h, 3)
        .into_iter()
        .map(i32::from)
        .collect();
    // detail per pixel, then summed-area table for O(1) window sums
    let mut sat = vec![0i64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0i64;
        for x in 0..w {
            let v = luma[y * w + x];
            let right = if x + 1 < w {
                (luma[y * w + x + 1] - v).abs()
            } else {
                0
            };
            let down = if y + 1 < h {
                (luma[(y + 1) * w + x] - v).abs()
            } else {
                0
            };
            row += i64::from(right + down);
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    let window = |x: usize, y: usize| {
        let at = |x: usize, y: usize| sat[y * (w + 1) + x];
        at(x + side, y + side) - at(x, y + side) - at(x + side, y) + at(x, y)
    };
    let step = (side / 4).max(1);
    let positions = |len: usize| {
        let last = len - side;
        (0..=last).step_by(step).chain(std::iter::once(last))
    };
    let mut best = ((0, 0), -1);
    for y in positions(h) {
        for x in positions(w) {
            let score = window(x, y);
            if score > best.1 {
                best = ((x, y), score);
            }
        }
    }
    best.0
}

/// One picture: `bicubic` | `network` (both `size`) above, and below each the crop of the most
/// detailed region of `network` (about `side` pixels square) enlarged to fill the panel's width;
/// the crop is outlined above. Returns the picture and its size.
pub fn compose(
    bicubic: &[u8],
    network: &[u8],
    (w, h): (usize, usize),
    side: usize,
) -> (Vec<u8>, (usize, usize), Crop) {
    let side = side.min(w).min(h).max(1);
    let (x, y) = most_detailed(network, (w, h), side);
    let crop = Crop {
        x,
        y,
        side,
        zoom: (w / side).max(1),
    };
    let (cw, ch) = (2 * w + GAP, h + GAP + side * crop.zoom);
    let mut out = vec![GAP_GREY; cw * ch * 3];
    for (panel, src) in [bicubic, network].into_iter().enumerate() {
        let left = panel * (w + GAP);
        for row in 0..h {
            let dst = ((row * cw) + left) * 3;
            out[dst..dst + w * 3].copy_from_slice(&src[row * w * 3..(row + 1) * w * 3]);
        }
        for row in 0..side * crop.zoom {
            for col in 0..side * crop.zoom {
                let s = ((y + row / crop.zoom) * w + x + col / crop.zoom) * 3;
                let d = ((h + GAP + row) * cw + left + col) * 3;
                out[d..d + 3].copy_from_slice(&src[s..s + 3]);
            }
        }
        outline(&mut out, cw, left, crop);
    }
    (out, (cw, ch), crop)
}

/// Draws the crop's border (one pixel, inside the crop) into the upper panel at `left`.
fn outline(out: &mut [u8], cw: usize, left: usize, c: Crop) {
    let mut put = |x: usize, y: usize| {
        let i = (y * cw + left + x) * 3;
        out[i..i + 3].copy_from_slice(&OUTLINE);
    };
    for i in 0..c.side {
        put(c.x + i, c.y);
        put(c.x + i, c.y + c.side - 1);
        put(c.x, c.y + i);
        put(c.x + c.side - 1, c.y + i);
    }
}
