//! The weights this project trained (weights/README.md: data, commands, scores), built into
//! the library so that the CLI and the element work without a path.

use std::path::Path;

use super::{Tensors, WeightsError, into_tensors, st};
use crate::variant::Variant;

/// One model of `weights/`, embedded at build time.
pub struct Shipped {
    /// File stem in `weights/`, e.g. `imdn_rtc_x2`; also the name users pass instead of a path.
    pub name: &'static str,
    pub variant: Variant,
    /// The network's upsampling factor (IMDN_AS: its ×4 upsampler; it runs at any scale).
    pub scale: usize,
    /// Set5 mean Y PSNR in dB (the authors' protocol, LR by our bicubic) per scale, as its
    /// model card in weights/README.md gives it; `tests/shipped.rs` checks each.
    pub set5: &'static [(usize, f64)],
    bytes: &'static [u8],
}

macro_rules! shipped {
    ($name:literal, $variant:expr, $scale:expr, $set5:expr) => {
        Shipped {
            name: $name,
            variant: $variant,
            scale: $scale,
            set5: $set5,
            bytes: include_bytes!(concat!("../../weights/", $name, ".safetensors")),
        }
    };
}

/// Every shipped model.
pub const SHIPPED: &[Shipped] = &[
    shipped!("imdn_rtc_x2", Variant::Rtc, 2, &[(2, 37.0026)]),
    shipped!("imdn_rtc_x3", Variant::Rtc, 3, &[(3, 32.5522)]),
    shipped!("imdn_rtc_x4", Variant::Rtc, 4, &[(4, 30.6214)]),
    shipped!("imdn_x2", Variant::Imdn, 2, &[(2, 37.3533)]),
    shipped!("imdn_x3", Variant::Imdn, 3, &[(3, 33.6497)]),
    shipped!("imdn_x4", Variant::Imdn, 4, &[(4, 31.5566)]),
    shipped!(
        "imdn_as",
        Variant::As,
        4,
        &[(2, 35.1445), (3, 32.2418), (4, 30.1652)]
    ),
];

impl Shipped {
    /// The parameters, as [`super::load`] returns them for the file.
    pub fn tensors(&self) -> Result<Tensors, WeightsError> {
        let label = Path::new(self.name);
        into_tensors(label, st::load_bytes(label, self.bytes)?)
    }
}

impl Shipped {
    /// Its Set5 score at `scale`, if its model card gives one.
    pub fn set5_at(&self, scale: usize) -> Option<f64> {
        self.set5.iter().find(|(s, _)| *s == scale).map(|(_, p)| *p)
    }
}

/// The shipped IMDN or IMDN_RTC ×`scale` that scores highest on Set5.
pub fn best(scale: usize) -> Option<&'static Shipped> {
    SHIPPED
        .iter()
        .filter(|m| m.variant != Variant::As && m.scale == scale)
        .max_by(|a, b| {
            a.set5_at(scale)
                .unwrap_or(0.0)
                .total_cmp(&b.set5_at(scale).unwrap_or(0.0))
        })
}

/// The shipped model of this variant and scale, if there is one.
pub fn find(variant: Variant, scale: usize) -> Option<&'static Shipped> {
    SHIPPED
        .iter()
        .find(|m| m.variant == variant && m.scale == scale)
}

/// The shipped model called `name` (`imdn_rtc_x2`; a `.safetensors` suffix is accepted).
pub fn by_name(name: &str) -> Option<&'static Shipped> {
    let name = name.strip_suffix(".safetensors").unwrap_or(name);
    SHIPPED.iter().find(|m| m.name == name)
}

/// The names of the shipped models, for messages.
pub fn names() -> String {
    SHIPPED
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads `spec`: a weights file when such a file exists, else the shipped model of that name.
pub fn load_file_or_shipped(spec: &str) -> Result<Tensors, WeightsError> {
    let path = Path::new(spec);
    match by_name(spec) {
        Some(m) if !path.exists() => m.tensors(),
        _ => super::load(path),
    }
}
