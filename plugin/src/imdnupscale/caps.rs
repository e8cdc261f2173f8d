//! Caps arithmetic of `imdnupscale`: sizes × scale in both directions, and scale=0's
//! fixation of an output size that keeps the display aspect ratio.

use gst::glib;
use gst::prelude::*;

/// Largest side in the caps templates: keeps size arithmetic far from i32 overflow.
pub const MAX_SIDE: i32 = 32767;

/// The caps on the other pad: sizes × or ÷ `scale`, or (scale=0) any size.
pub fn transform(caps: &gst::Caps, direction: gst::PadDirection, scale: u32) -> gst::Caps {
    match scale {
        0 => widen_caps(caps),
        s => scale_caps(caps, direction, s),
    }
}

/// One axis of the caps: a fixed size or a range with a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    Fixed(i32),
    Range(i32, i32, i32),
}

impl Dim {
    fn from_bounds(min: i64, max: i64, step: i64) -> Option<Dim> {
        let (min, max, step) = (
            i32::try_from(min).ok()?,
            i32::try_from(max).ok()?,
            i32::try_from(step).ok()?,
        );
        match min.cmp(&max) {
            std::cmp::Ordering::Less => Some(Dim::Range(min, max, step)),
            std::cmp::Ordering::Equal => Some(Dim::Fixed(min)),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// Sizes times `s` (sink → src). Ranges keep only the multiples of `s`.
    fn up(self, s: i64) -> Option<Dim> {
        match self {
            Dim::Fixed(v) => Dim::from_bounds(i64::from(v) * s, i64::from(v) * s, 1),
            Dim::Range(min, max, step) => {
                let step = i64::from(step) * s;
                let min = i64::from(min) * s;
                // clamp to i32 on a multiple of the step (GStreamer requires that)
                let max = (i64::from(max) * s).min(i64::from(i32::MAX) / step * step);
                Dim::from_bounds(min, max, step)
            }
        }
    }

    /// Sizes whose `s`-fold is in the set (src → sink); none for an indivisible fixed size.
    fn down(self, s: i64) -> Option<Dim> {
        match self {
            Dim::Fixed(v) => {
                let v = i64::from(v);
                (v % s == 0).then(|| Dim::from_bounds(v / s, v / s, 1))?
            }
            Dim::Range(min, max, step) => {
                let (min, max, step) = (i64::from(min), i64::from(max), i64::from(step));
                // v·s ≡ 0 (mod step) ⇔ v ≡ 0 (mod step / gcd(step, s))
                let m = step / gcd(step, s);
                let lo = (min.div_euclid(s) + i64::from(min.rem_euclid(s) != 0)).max(1);
                let lo = (lo + m - 1) / m * m;
                let hi = max.div_euclid(s) / m * m;
                Dim::from_bounds(lo, hi, m)
            }
        }
    }

    fn to_send_value(self) -> glib::SendValue {
        match self {
            Dim::Fixed(v) => v.to_send_value(),
            Dim::Range(min, max, 1) => gst::IntRange::new(min, max).to_send_value(),
            Dim::Range(min, max, step) => gst::IntRange::with_step(min, max, step).to_send_value(),
        }
    }

    fn from_value(v: &glib::SendValue) -> Option<Dim> {
        if let Ok(v) = v.get::<i32>() {
            return Some(Dim::Fixed(v));
        }
        let r = v.get::<gst::IntRange<i32>>().ok()?;
        Dim::from_bounds(r.min().into(), r.max().into(), r.step().max(1).into())
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}

/// Maps one size field; `None` when no value survives.
fn map_dim(value: &glib::SendValue, f: &dyn Fn(Dim) -> Option<Dim>) -> Option<glib::SendValue> {
    if let Ok(list) = value.get::<gst::List>() {
        let mapped: Vec<glib::SendValue> = list
            .iter()
            .filter_map(|v| Dim::from_value(v).and_then(f).map(Dim::to_send_value))
            .collect();
        return match mapped.len() {
            0 => None,
            1 => mapped.into_iter().next(),
            _ => Some(gst::List::new(mapped).to_send_value()),
        };
    }
    Dim::from_value(value).and_then(f).map(Dim::to_send_value)
}

/// Scales width and height of every structure; structures with no possible size are dropped.
fn scale_caps(caps: &gst::Caps, direction: gst::PadDirection, scale: u32) -> gst::Caps {
    let s = i64::from(scale);
    let f = |d: Dim| match direction {
        gst::PadDirection::Sink => d.up(s),
        _ => d.down(s),
    };
    let mut out = gst::Caps::new_empty();
    {
        let out = out.make_mut();
        for (structure, features) in caps.iter_with_features() {
            let mut st = structure.to_owned();
            let mut ok = true;
            for field in ["width", "height"] {
                if let Ok(v) = structure.value(field) {
                    match map_dim(v, &f) {
                        Some(nv) => st.set_value(field, nv),
                        None => ok = false,
                    }
                }
            }
            if ok {
                out.append_structure_full(st, Some(features.to_owned()));
            }
        }
    }
    out
}

/// scale=0: any size on the other side, and any pixel aspect ratio where one is given (the
/// fixation then picks one that keeps the display aspect ratio).
fn widen_caps(caps: &gst::Caps) -> gst::Caps {
    let mut out = gst::Caps::new_empty();
    for (structure, features) in caps.iter_with_features() {
        let mut st = structure.to_owned();
        st.set("width", gst::IntRange::new(1, MAX_SIDE));
        st.set("height", gst::IntRange::new(1, MAX_SIDE));
        if st.has_field("pixel-aspect-ratio") {
            st.set(
                "pixel-aspect-ratio",
                gst::FractionRange::new(
                    gst::Fraction::new(1, i32::MAX),
                    gst::Fraction::new(i32::MAX, 1),
                ),
            );
        }
        // structures that differed only in size collapse into one
        out.merge_structure_full(st, Some(features.to_owned()));
    }
    out
}

/// `a × b` of two fractions, reduced; `None` on a zero denominator or if it leaves i32
/// (`gst_util_fraction_multiply`'s contract).
fn frac_mul((an, ad): (i32, i32), (bn, bd): (i32, i32)) -> Option<(i32, i32)> {
    let (n, d) = (i64::from(an) * i64::from(bn), i64::from(ad) * i64::from(bd));
    if d == 0 {
        return None;
    }
    let g = gcd(n, d);
    let (n, d) = if d < 0 {
        (-n / g, -d / g)
    } else {
        (n / g, d / g)
    };
    Some((i32::try_from(n).ok()?, i32::try_from(d).ok()?))
}

/// `v × num / den` rounded, for positive `num / den`, at least 1.
fn scale_round(v: i32, (num, den): (i32, i32)) -> i32 {
    let (v, num, den) = (i64::from(v), i64::from(num), i64::from(den).max(1));
    let r = (v * num + den / 2) / den;
    r.clamp(1, i64::from(i32::MAX)) as i32
}

fn par_of(s: &gst::StructureRef) -> Option<(i32, i32)> {
    s.get::<gst::Fraction>("pixel-aspect-ratio")
        .ok()
        .map(|f| (f.numer(), f.denom()))
}

/// The value of `field` nearest `target` that `s` allows (`target` where `s` has no such
/// field, which allows anything).
fn nearest_int(s: &gst::StructureRef, field: &str, target: i32) -> i32 {
    if !s.has_field(field) {
        return target;
    }
    let mut tmp = s.to_owned();
    tmp.fixate_field_nearest_int(field, target);
    tmp.get::<i32>(field).unwrap_or(target)
}

/// The pixel aspect ratio nearest `target` that `s` allows.
fn nearest_par(s: &gst::StructureRef, target: (i32, i32)) -> (i32, i32) {
    if !s.has_field("pixel-aspect-ratio") {
        return target;
    }
    let mut tmp = s.to_owned();
    tmp.fixate_field_nearest_fraction("pixel-aspect-ratio", gst::Fraction::new(target.0, target.1));
    par_of(&tmp).unwrap_or(target)
}

/// Writes `par` unless it is the 1/1 that an absent field means anyway.
fn set_par(s: &mut gst::StructureRef, (n, d): (i32, i32)) {
    if s.has_field("pixel-aspect-ratio") || n != d {
        s.set("pixel-aspect-ratio", gst::Fraction::new(n, d));
    }
}

/// scale=0: fixates width, height and pixel aspect ratio of `outs` given the fixed `ins` on
/// the other pad, keeping the display aspect ratio (DAR) wherever `outs` leaves a choice.
///
/// The approach of videoconvertscale's `fixate_size`, with two differences that suit an
/// upscaler: a free size prefers `ins × factor` (`factor` = the model's scale; `ins ÷ factor`
/// when fixating the sink side) rather than the same size, and with one side fixed the other
/// is first derived from the DAR at the input's PAR (square pixels stay square; videoscale
/// keeps the input's other side and changes the PAR instead). When downstream fixes width,
/// height and PAR, they are used as given even if the picture is then stretched (as
/// videoscale does).
pub fn fixate_auto_size(
    ins: &gst::StructureRef,
    outs: &mut gst::StructureRef,
    direction: gst::PadDirection,
    factor: i32,
) -> Result<(), String> {
    let overflow = || "integer overflow computing the output size and aspect ratio".to_string();
    let (Ok(from_w), Ok(from_h)) = (ins.get::<i32>("width"), ins.get::<i32>("height")) else {
        return Err(format!("no fixed size in {ins}"));
    };
    let from_par = par_of(ins).unwrap_or((1, 1));
    let fixed_par = match (outs.value("pixel-aspect-ratio"), direction) {
        (Ok(v), _) => v
            .get::<gst::Fraction>()
            .ok()
            .map(|f| (f.numer(), f.denom())),
        // as videoconvertscale: upstream of us, a missing PAR means 1/1
        (Err(_), gst::PadDirection::Src) => {
            outs.set("pixel-aspect-ratio", gst::Fraction::new(1, 1));
            Some((1, 1))
        }
        (Err(_), _) => None,
    };
    let pref = |v: i32| match direction {
        gst::PadDirection::Sink => v.saturating_mul(factor).min(MAX_SIDE),
        _ => (v / factor).max(1),
    };
    let (pref_w, pref_h) = (pref(from_w), pref(from_h));
    let dar = frac_mul((from_w, from_h), from_par).ok_or_else(overflow)?;
    // the PAR to aim for: downstream's if fixed, else the input's (or the nearest allowed)
    let par = fixed_par.unwrap_or_else(|| nearest_par(outs, from_par));
    // output width / height at that PAR
    let ratio = frac_mul(dar, (par.1, par.0)).ok_or_else(overflow)?;
    let inverse = (ratio.1, ratio.0);
    let w = outs.get::<i32>("width").ok();
    let h = outs.get::<i32>("height").ok();
    match (w, h) {
        (Some(w), Some(h)) => {
            if fixed_par.is_none() {
                let keep = frac_mul(dar, (h, w)).ok_or_else(overflow)?;
                let p = nearest_par(outs, keep);
                set_par(outs, p);
            }
        }
        (Some(w), None) => {
            let want = scale_round(w, inverse);
            let set_h = nearest_int(outs, "height", want);
            outs.set("height", set_h);
            if fixed_par.is_none() {
                let p = if set_h == want {
                    par
                } else {
                    nearest_par(outs, frac_mul(dar, (set_h, w)).ok_or_else(overflow)?)
                };
                set_par(outs, p);
            }
        }
        (None, Some(h)) => {
            let want = scale_round(h, ratio);
            let set_w = nearest_int(outs, "width", want);
            outs.set("width", set_w);
            if fixed_par.is_none() {
                let p = if set_w == want {
                    par
                } else {
                    nearest_par(outs, frac_mul(dar, (h, set_w)).ok_or_else(overflow)?)
                };
                set_par(outs, p);
            }
        }
        (None, None) => {
            // 1. the preferred height, the width from the DAR
            let h1 = nearest_int(outs, "height", pref_h);
            let want_w = scale_round(h1, ratio);
            let w1 = nearest_int(outs, "width", want_w);
            // 2. the preferred width, the height from the DAR
            let w2 = nearest_int(outs, "width", pref_w);
            let want_h = scale_round(w2, inverse);
            let h2 = nearest_int(outs, "height", want_h);
            // the first that keeps the DAR, else the one whose DAR is closer
            let second = w1 != want_w
                && (h2 == want_h
                    || i64::from(w2) * i64::from((h2 - want_h).abs())
                        < i64::from((w1 - want_w).abs()) * i64::from(h1));
            let (mut ow, mut oh, mut p) = if second { (w2, h2, par) } else { (w1, h1, par) };
            // 3. neither keeps the DAR at that PAR: keep the preferred size, adjust the PAR
            if w1 != want_w && h2 != want_h && fixed_par.is_none() {
                let (sw, sh) = (
                    nearest_int(outs, "width", pref_w),
                    nearest_int(outs, "height", pref_h),
                );
                let keep = frac_mul(dar, (sh, sw)).ok_or_else(overflow)?;
                if nearest_par(outs, keep) == keep {
                    (ow, oh, p) = (sw, sh, keep);
                }
            }
            outs.set("width", ow);
            outs.set("height", oh);
            if fixed_par.is_none() {
                set_par(outs, p);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_scale_up() {
        assert_eq!(Dim::Fixed(33).up(3), Some(Dim::Fixed(99)));
        assert_eq!(Dim::Fixed(i32::MAX).up(2), None);
        assert_eq!(Dim::Range(1, 32767, 1).up(2), Some(Dim::Range(2, 65534, 2)));
        assert_eq!(
            Dim::Range(1, i32::MAX, 1).up(3),
            Some(Dim::Range(3, i32::MAX / 3 * 3, 3))
        );
    }

    fn fixate(ins: &str, outs: &str, direction: gst::PadDirection) -> Result<String, String> {
        gst::init().map_err(|e| e.to_string())?;
        let ins: gst::Structure = ins.parse().map_err(|e| format!("{e}"))?;
        let mut outs: gst::Structure = outs.parse().map_err(|e| format!("{e}"))?;
        fixate_auto_size(&ins, &mut outs, direction, 2)?;
        let get = |f: &str| outs.get::<i32>(f).map_or("?".into(), |v| v.to_string());
        let par = par_of(&outs).map_or("-".into(), |(n, d)| format!("{n}/{d}"));
        Ok(format!("{}x{} {par}", get("width"), get("height")))
    }

    #[test]
    fn auto_size_fixation() {
        use gst::PadDirection::{Sink, Src};
        let free = "video/x-raw,width=[1,32767],height=[1,32767]";
        let free_par = "video/x-raw,width=[1,32767],height=[1,32767],\
                        pixel-aspect-ratio=[1/2147483647,2147483647/1]";
        let vga = "video/x-raw,width=640,height=480";
        assert_eq!(fixate(vga, free, Sink).unwrap(), "1280x960 -");
        assert_eq!(fixate(vga, free_par, Sink).unwrap(), "1280x960 1/1");
        // fixating the sink side from the src side: ÷ 2, and a missing PAR means 1/1
        assert_eq!(fixate(vga, free, Src).unwrap(), "320x240 1/1");
        // sizes capped by downstream: the DAR still holds
        let capped = "video/x-raw,width=[1,800],height=[1,32767]";
        assert_eq!(fixate(vga, capped, Sink).unwrap(), "800x600 -");
        // height fixed: the width from the DAR, rounded (square pixels kept)
        let h100 = "video/x-raw,width=[1,32767],height=100,\
                        pixel-aspect-ratio=[1/2147483647,2147483647/1]";
        assert_eq!(fixate(vga, h100, Sink).unwrap(), "133x100 1/1");
        // width and height fixed, PAR free: the PAR keeps the DAR
        let both = "video/x-raw,width=1000,height=700,\
                    pixel-aspect-ratio=[1/2147483647,2147483647/1]";
        assert_eq!(fixate(vga, both, Sink).unwrap(), "1000x700 14/15");
        // odd DAR with a fixed PAR and fixed width: nearest height
        let par11 = "video/x-raw,width=1001,height=[1,32767],pixel-aspect-ratio=1/1";
        assert_eq!(fixate(vga, par11, Sink).unwrap(), "1001x751 1/1");
        // overflow in the DAR is an error, not a panic
        let huge = "video/x-raw,width=32767,height=1,pixel-aspect-ratio=2147483647/1";
        assert!(fixate(huge, free, Sink).is_err());
    }

    #[test]
    fn dims_scale_down() {
        assert_eq!(Dim::Fixed(66).down(2), Some(Dim::Fixed(33)));
        assert_eq!(Dim::Fixed(63).down(2), None);
        assert_eq!(
            Dim::Range(1, 32767, 1).down(2),
            Some(Dim::Range(1, 16383, 1))
        );
        assert_eq!(
            Dim::Range(2, 65534, 2).down(2),
            Some(Dim::Range(1, 32767, 1))
        );
        // multiples of 4 that are 2·v: v even
        assert_eq!(Dim::Range(4, 40, 4).down(2), Some(Dim::Range(2, 20, 2)));
        assert_eq!(Dim::Range(5, 7, 1).down(4), None);
        assert_eq!(Dim::Range(5, 8, 1).down(4), Some(Dim::Fixed(2)));
    }
}
