//! The packed 8-bit RGB family row by row: the component bytes of each pixel ↔ three f32
//! plane rows, in loops the compiler vectorises (one u32 per 4-byte pixel; 3-byte pixels with
//! the order fixed at compile time).

use super::Packed;

/// A value in [0, 1] as a byte, exactly as `imdn::image_ops::f32_to_u8` (clamp, × 255, round
/// half to even) but without the call to libm's `rintf` that `round_ties_even` becomes on
/// baseline x86-64: adding 2^23 rounds a value in [0, 2^23) to an integer with ties to even
/// (the default rounding mode), exactly.
#[inline(always)]
#[expect(
    clippy::manual_clamp,
    reason = "max/min map NaN to 0.0, clamp would keep it"
)]
pub(super) fn unit_to_u8(v: f32) -> u8 {
    const ROUND: f32 = 8_388_608.0;
    // max/min map NaN to 0 (f32_to_u8's `as` does too); 2^23 + k holds the integer k in its
    // low mantissa bits, so no float → int conversion (scalar on baseline x86-64) is needed
    ((v.max(0.0).min(1.0) * 255.0 + ROUND).to_bits() & 0xff) as u8
}

/// A byte as a value in [0, 1] (the division the old reader did, so bit-identical).
#[inline(always)]
fn u8_to_unit(b: u8) -> f32 {
    f32::from(b) / 255.0
}

/// Pixels of one row into three plane rows; the 4th byte into `alpha` when it is alpha.
pub(super) fn unpack_row(
    px: &Packed,
    line: &[u8],
    [r, g, b]: [&mut [f32]; 3],
    alpha: Option<&mut [u8]>,
) {
    match (px.bpp, px.rgb) {
        (4, [o0, o1, o2]) => {
            let (s0, s1, s2) = (8 * o0 as u32, 8 * o1 as u32, 8 * o2 as u32);
            let pixels = line
                .chunks_exact(4)
                .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
            for (((p, r), g), b) in pixels.zip(r).zip(g).zip(b) {
                *r = u8_to_unit((p >> s0) as u8);
                *g = u8_to_unit((p >> s1) as u8);
                *b = u8_to_unit((p >> s2) as u8);
            }
        }
        (3, [0, 1, 2]) => unpack3::<0, 2>(line, [r, g, b]),
        (3, [2, 1, 0]) => unpack3::<2, 0>(line, [r, g, b]),
        _ => {
            for (((p, r), g), b) in line.chunks_exact(px.bpp).zip(r).zip(g).zip(b) {
                *r = u8_to_unit(p[px.rgb[0]]);
                *g = u8_to_unit(p[px.rgb[1]]);
                *b = u8_to_unit(p[px.rgb[2]]);
            }
        }
    }
    if let (Some(a), Some((off, true))) = (alpha, px.fourth) {
        for (a, p) in a.iter_mut().zip(line.chunks_exact(px.bpp)) {
            *a = p[off];
        }
    }
}

/// 3-byte pixels with red at byte `R` and blue at byte `B` (green in the middle).
#[inline(always)]
fn unpack3<const R: usize, const B: usize>(line: &[u8], [r, g, b]: [&mut [f32]; 3]) {
    for (((p, r), g), b) in line.chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = u8_to_unit(p[R]);
        *g = u8_to_unit(p[1]);
        *b = u8_to_unit(p[B]);
    }
}

/// Three plane rows into the pixels of one row; `fourth` holds each pixel's 4th byte (alpha
/// or 0xff padding) where the format has one.
pub(super) fn pack_row(px: &Packed, [r, g, b]: [&[f32]; 3], fourth: &[u8], line: &mut [u8]) {
    match (px.bpp, px.rgb, px.fourth) {
        (4, [o0, o1, o2], Some((o3, _))) => {
            let s = [8 * o0 as u32, 8 * o1 as u32, 8 * o2 as u32, 8 * o3 as u32];
            let pixels = line.chunks_exact_mut(4);
            for ((((p, &r), &g), &b), &f) in pixels.zip(r).zip(g).zip(b).zip(fourth) {
                let word = u32::from(unit_to_u8(r)) << s[0]
                    | u32::from(unit_to_u8(g)) << s[1]
                    | u32::from(unit_to_u8(b)) << s[2]
                    | u32::from(f) << s[3];
                p.copy_from_slice(&word.to_le_bytes());
            }
        }
        (3, [0, 1, 2], None) => pack3::<0, 2>([r, g, b], line),
        (3, [2, 1, 0], None) => pack3::<2, 0>([r, g, b], line),
        _ => {
            for (x, p) in line.chunks_exact_mut(px.bpp).enumerate() {
                p[px.rgb[0]] = unit_to_u8(r[x]);
                p[px.rgb[1]] = unit_to_u8(g[x]);
                p[px.rgb[2]] = unit_to_u8(b[x]);
                if let (Some((off, _)), Some(&f)) = (px.fourth, fourth.get(x)) {
                    p[off] = f;
                }
            }
        }
    }
}

#[inline(always)]
fn pack3<const R: usize, const B: usize>([r, g, b]: [&[f32]; 3], line: &mut [u8]) {
    for (((p, &r), &g), &b) in line.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
        p[R] = unit_to_u8(r);
        p[1] = unit_to_u8(g);
        p[B] = unit_to_u8(b);
    }
}

/// The GPU's arguments (`kernels.cu`'s `packed_in_f32` / `packed_out_f32`) for a frame of
/// `px` at `plane` (rows `stride` bytes apart), planar R'G'B' at `rgb`, alpha at `alpha`.
pub(super) fn gpu_args(
    px: &Packed,
    (plane, stride): (u64, usize),
    (rgb, alpha): (u64, u64),
    (w, h): (usize, usize),
) -> imdn::cuda::args::PackedArgs {
    imdn::cuda::args::PackedArgs {
        plane,
        stride: stride as i64,
        rgb,
        alpha,
        bpp: px.bpp as i32,
        rgb_at: px.rgb.map(|o| o as i32),
        fourth: px.fourth.map_or(-1, |(o, _)| o as i32),
        has_alpha: px.fourth.is_some_and(|(_, a)| a) as i32,
        w: w as i32,
        h: h as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdn::image_ops::f32_to_u8;

    #[test]
    fn bytes_round_as_the_library_does() {
        // every tie (k + 0.5) / 255, its neighbours, and values outside [0, 1]
        let mut values = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 2.0, -1.0];
        for k in 0..=255u32 {
            let tie = (k as f32 + 0.5) / 255.0;
            values.extend([k as f32 / 255.0, tie, tie.next_up(), tie.next_down()]);
        }
        for i in 0..=1_000_000u32 {
            values.push(i as f32 / 1e6);
        }
        for v in values {
            assert_eq!(unit_to_u8(v), f32_to_u8(v), "{v:e}");
        }
    }
}
