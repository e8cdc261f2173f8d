//! The weights this project trained (weights/README.md: data, commands, scores), built into
//! the library so that the CLI and the element work without a path.

use std::path::Path;

use super::{Tensors, WeightsError, into_tensors, st};
use crate::model::Variant;

/// One model of `weights/`, embedded at build time.
pub struct Shipped {
    /// File stem in `weights/`, e.g. `imdn_rtc_x2`; also the name users pass instead of a path.
    pub name: &'static str,
    pub variant: Variant,
    /// The network's upsampling factor.
    pub scale: usize,
    bytes: &'static [u8],
}

macro_rules! shipped {
    ($name:literal, $variant:expr, $scale:expr) => {
        Shipped {
            name: $name,
            variant: $variant,
            scale: $scale,
            bytes: include_bytes!(concat!("../../weights/", $name, ".safetensors")),
        }
    };
}

/// Every shipped model.
pub const SHIPPED: &[Shipped] = &[
    shipped!("imdn_rtc_x2", Variant::Rtc, 2),
    shipped!("imdn_rtc_x3", Variant::Rtc, 3),
    shipped!("imdn_rtc_x4", Variant::Rtc, 4),
];

impl Shipped {
    /// The parameters, as [`super::load`] returns them for the file.
    pub fn tensors(&self) -> Result<Tensors, WeightsError> {
        let label = Path::new(self.name);
        into_tensors(label, st::load_bytes(label, self.bytes)?)
    }
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
