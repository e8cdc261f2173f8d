//! `imdnupscale`: IMDN super-resolution as a `GstVideoFilter`.
//!
//! - `imp.rs`: the element (negotiation, events, properties, latency).
//! - `worker.rs`: the pre → infer → post threads and the channels between them.
//! - `settings.rs`: the properties (settings, defaults, ParamSpecs) and the backend they ask for.
//! - `caps.rs`: sizes × scale in caps, and scale=0's fixation of the output size.
//! - `backend.rs`: what the infer thread runs (the IMDN network).
//! - `test_backends.rs`: stand-ins for the network, for the tests (feature `test-backends`).
//! - `pixels/`: video frames ↔ planar RGB f32, YUV matrices, alpha.

use gst::glib;
use gst::prelude::*;

mod backend;
mod caps;
mod imp;
mod pixels;
mod settings;
#[cfg(feature = "test-backends")]
mod test_backends;
mod worker;

/// Where the network runs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstImdnDevice")]
pub enum Device {
    #[default]
    #[enum_value(
        name = "Auto: CUDA if this build has it and a device answers, else the CPU",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 1,
    #[enum_value(name = "CUDA (needs a build with the `cuda` feature)", nick = "cuda")]
    Cuda = 2,
}

/// Which network the element runs (the shipped one, or the one `model-path` must hold).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstImdnModel")]
pub enum Model {
    #[default]
    #[enum_value(
        name = "Auto: with model-path, whatever network the file holds; without, the shipped \
                IMDN_RTC on the CPU, the best-scoring IMDN or IMDN_RTC on CUDA",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "IMDN (64 channels, ×2/×3/×4)", nick = "imdn")]
    Imdn = 1,
    #[enum_value(name = "IMDN_RTC (12 channels, real time)", nick = "rtc")]
    Rtc = 2,
    #[enum_value(
        name = "IMDN_AS (any scale: bicubic, then the network refines)",
        nick = "as"
    )]
    As = 3,
}

impl Model {
    /// The network this asks for; `None`: whatever the file holds, or the shipped default.
    pub fn variant(self) -> Option<imdn::model::Variant> {
        use imdn::model::Variant;
        match self {
            Model::Auto => None,
            Model::Imdn => Some(Variant::Imdn),
            Model::Rtc => Some(Variant::Rtc),
            Model::As => Some(Variant::As),
        }
    }
}

/// What the network sees past the frame border (`edge-mode`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstImdnEdgeMode")]
pub enum EdgeMode {
    #[default]
    #[enum_value(
        name = "Replicate: the border pixels, cropped after (flat areas stay flat)",
        nick = "replicate"
    )]
    Replicate = 0,
    #[enum_value(
        name = "Zero: the convolutions' zero padding, as the authors evaluate (a faint outline)",
        nick = "zero"
    )]
    Zero = 1,
}

/// The network's arithmetic (`precision`): f32, tf32 and f16 on CUDA; f32 or int8 on the CPU.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstImdnPrecision")]
pub enum Precision {
    #[default]
    #[enum_value(name = "F32: single precision", nick = "f32")]
    F32 = 0,
    #[enum_value(
        name = "TF32: f32 data, tensor-core products (candle's kernels)",
        nick = "tf32"
    )]
    Tf32 = 1,
    #[enum_value(name = "F16: half precision, tensor cores", nick = "f16")]
    F16 = 2,
    #[enum_value(
        name = "INT8: IMDN_RTC's block convs on 8-bit integers (CPU with AVX-512 VNNI, calibrated weights)",
        nick = "int8"
    )]
    Int8 = 3,
}

impl From<Precision> for imdn::engine::Precision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => imdn::engine::Precision::F32,
            Precision::Tf32 => imdn::engine::Precision::Tf32,
            Precision::F16 => imdn::engine::Precision::F16,
            Precision::Int8 => imdn::engine::Precision::Int8,
        }
    }
}

/// What runs the network on CUDA (`cuda-kernels`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstImdnCudaKernels")]
pub enum CudaKernels {
    #[default]
    #[enum_value(
        name = "Candle: candle's network (cuDNN convolutions)",
        nick = "candle"
    )]
    Candle = 0,
    #[enum_value(
        name = "Ours: our executor (fused kernels; f16 convolutions on tensor cores)",
        nick = "ours"
    )]
    Ours = 1,
}

impl From<CudaKernels> for imdn::engine::CudaKernels {
    fn from(k: CudaKernels) -> Self {
        match k {
            CudaKernels::Candle => imdn::engine::CudaKernels::Candle,
            CudaKernels::Ours => imdn::engine::CudaKernels::Ours,
        }
    }
}

impl From<EdgeMode> for imdn::acs::EdgeMode {
    fn from(mode: EdgeMode) -> Self {
        match mode {
            EdgeMode::Replicate => imdn::acs::EdgeMode::Replicate,
            EdgeMode::Zero => imdn::acs::EdgeMode::Zero,
        }
    }
}

glib::wrapper! {
    pub struct ImdnUpscale(ObjectSubclass<imp::ImdnUpscale>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // the property enums, documented with the element (gst-inspect, the plugin docs)
    Device::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Model::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    EdgeMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "imdnupscale",
        gst::Rank::NONE,
        ImdnUpscale::static_type(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glib needs the nicks as literals: they must stay the library's short names.
    #[test]
    fn model_nicks_are_the_variants_keys() {
        for model in [Model::Imdn, Model::Rtc, Model::As] {
            let value = model.to_value();
            let (_, nick) = glib::EnumValue::from_value(&value).unwrap();
            assert_eq!(nick.nick(), model.variant().unwrap().key());
        }
    }
}
