//! Random square crops under the eight symmetries of the square (flips and 90° rotations),
//! taken straight from an interleaved RGB u8 image in one pass.

/// One of the eight symmetries of the square: bit 0 flips x, bit 1 flips y, bit 2 transposes
/// (applied first). Together they give the identity, both flips, the three rotations and the
/// two transpositions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dihedral(pub u8);

impl Dihedral {
    pub const IDENTITY: Dihedral = Dihedral(0);

    /// Where output pixel (x, y) of a `side`×`side` square comes from in the source square.
    #[inline]
    pub fn source(self, x: usize, y: usize, side: usize) -> (usize, usize) {
        let (mut sx, mut sy) = if self.0 & 4 != 0 { (y, x) } else { (x, y) };
        if self.0 & 1 != 0 {
            sx = side - 1 - sx;
        }
        if self.0 & 2 != 0 {
            sy = side - 1 - sy;
        }
        (sx, sy)
    }
}

/// The `side`×`side` square at (`x0`, `y0`) of an interleaved RGB u8 image `width` pixels wide,
/// transformed by `t`; interleaved RGB u8 out.
pub fn crop_rgb(
    img: &[u8],
    width: usize,
    x0: usize,
    y0: usize,
    side: usize,
    t: Dihedral,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(side * side * 3);
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = t.source(x, y, side);
            let i = ((y0 + sy) * width + x0 + sx) * 3;
            out.extend_from_slice(&img[i..i + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_distinct_symmetries() {
        // a 3×3 square with distinct pixels
        let img: Vec<u8> = (0..27).collect();
        let mut seen = Vec::new();
        for t in 0..8 {
            let c = crop_rgb(&img, 3, 0, 0, 3, Dihedral(t));
            let mut sorted = c.clone();
            sorted.sort();
            assert_eq!(sorted, img, "a symmetry permutes pixels");
            assert!(!seen.contains(&c), "symmetry {t} repeats another");
            seen.push(c);
        }
        assert_eq!(seen[0], img);
    }

    #[test]
    fn crop_offset() {
        // 4×2 image, crop the 2×2 square at x = 2
        let img: Vec<u8> = (0..24).collect();
        let c = crop_rgb(&img, 4, 2, 0, 2, Dihedral::IDENTITY);
        assert_eq!(c, vec![6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23]);
    }
}
