//! A loaded model ready for frames: device choice, weights, variant, ACS.
//! The CLI and the GStreamer element both get their model here.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};

use crate::acs::{Acs, Forward};
use crate::image_ops;
use crate::model::{Config, Network, Variant};
use crate::weights::{self, Tensors};
use crate::{Error, Result};

/// Where the network runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA when this build has it and a device answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    /// Opens the device. `Auto` falls back to the CPU silently; ask `Cuda` to get the error.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(id) => open_cuda(id),
            DeviceChoice::Auto => Ok(open_cuda(0).unwrap_or(Device::Cpu)),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(id: usize) -> Result<Device> {
    Device::new_cuda(id).map_err(|e| Error::Device(format!("CUDA device {id}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(id: usize) -> Result<Device> {
    Err(Error::Device(format!(
        "CUDA device {id} requested, but this build has no CUDA support (build with --features cuda)"
    )))
}

/// Arithmetic the network runs in. Frames enter and leave as f32 whatever the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// f32 storage, TF32 tensor-core matrix products (CUDA; the same as F32 on the CPU).
    Tf32,
    /// Half precision weights and activations (CUDA; the CPU has no fast f16 conv).
    F16,
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 | Precision::Tf32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "f32" => Precision::F32,
            "tf32" => Precision::Tf32,
            "f16" => Precision::F16,
            "bf16" => Precision::Bf16,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown precision {other:?}: use f32, tf32, f16 or bf16"
                )));
            }
        })
    }
}

/// A network on a device, with the cropping strategy it runs under.
pub struct Upscaler {
    net: Network,
    config: Config,
    device: Device,
    dtype: DType,
    pub acs: Acs,
}

/// The network in its working precision behind ACS's f32 interface.
struct Cast<'a> {
    net: &'a Network,
    dtype: DType,
}

impl Forward for Cast<'_> {
    fn forward_batch(&self, input: &Tensor) -> Result<Tensor> {
        let out = self.net.forward(&input.to_dtype(self.dtype)?)?;
        Ok(out.to_dtype(DType::F32)?)
    }
}

impl Upscaler {
    /// Loads weights (safetensors or PyTorch .pth), detects the variant, builds it on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        Self::load_with_precision(path, device, Precision::F32)
    }

    /// As [`Upscaler::load`], in `precision`.
    pub fn load_with_precision(path: &Path, device: &Device, precision: Precision) -> Result<Self> {
        let tensors = weights::load(path)?;
        Self::with_precision(tensors, device, precision).map_err(|e| match e {
            Error::Model(m) => Error::Model(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Builds the network that fits `tensors`, in f32.
    pub fn from_tensors(tensors: Tensors, device: &Device) -> Result<Self> {
        Self::with_precision(tensors, device, Precision::F32)
    }

    /// Builds the network that fits `tensors` in `precision`.
    pub fn with_precision(tensors: Tensors, device: &Device, precision: Precision) -> Result<Self> {
        let dtype = precision.dtype();
        if device.is_cpu() && dtype != DType::F32 {
            return Err(Error::InvalidInput(format!(
                "precision {precision:?} needs CUDA; the CPU runs f32"
            )));
        }
        if device.is_cuda() {
            // process-wide in candle: cuBLAS products in TF32 for f32 tensors
            candle_core::cuda::set_gemm_reduced_precision_f32(precision == Precision::Tf32);
        }
        let (net, config) = Network::from_tensors(tensors, device, dtype).map_err(Error::Model)?;
        Ok(Self {
            net,
            config,
            device: device.clone(),
            dtype,
            acs: Acs::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network alone on an f32 NCHW tensor (no padding, no tiling, no clamping).
    pub fn forward_raw(&self, input: &Tensor) -> Result<Tensor> {
        self.cast().forward_batch(input)
    }

    fn cast(&self) -> Cast<'_> {
        Cast {
            net: &self.net,
            dtype: self.dtype,
        }
    }

    /// Runs the network under ACS on planar RGB f32 (`w`×`h`, values in [0, 1]); the output is
    /// exactly `net_scale ×` the input and not clamped.
    pub fn forward_planar(&self, input: &[f32], size: (usize, usize)) -> Result<Vec<f32>> {
        let c = &self.config;
        self.acs.run(
            &self.cast(),
            &self.device,
            input,
            size,
            c.net_scale(),
            c.input_multiple(),
        )
    }

    /// Upscales planar RGB f32 from `size` to exactly `out_size`.
    /// - IMDN_AS: bicubic to `out_size`, then the network refines it (any factor ≥ 1).
    /// - IMDN / IMDN_RTC ×s: the network; when `out_size` is not `s ×` the input, its output is
    ///   then resized (bicubic) to `out_size`.
    pub fn upscale_planar(
        &self,
        input: &[f32],
        (w, h): (usize, usize),
        (ow, oh): (usize, usize),
    ) -> Result<Vec<f32>> {
        if ow == 0 || oh == 0 {
            return Err(Error::InvalidInput(format!(
                "output size {ow}×{oh} is empty"
            )));
        }
        match self.config.variant {
            Variant::As => {
                let big = if (ow, oh) == (w, h) {
                    input.to_vec()
                } else {
                    image_ops::imresize_f32_chw(input, w, h, 3, ow, oh)
                };
                self.forward_planar(&big, (ow, oh))
            }
            Variant::Imdn | Variant::Rtc => {
                let s = self.config.net_scale();
                let out = self.forward_planar(input, (w, h))?;
                if (ow, oh) == (w * s, h * s) {
                    Ok(out)
                } else {
                    Ok(image_ops::imresize_f32_chw(&out, w * s, h * s, 3, ow, oh))
                }
            }
        }
    }

    /// Upscales interleaved 8-bit RGB (`channels` = 3) or RGBA (4; alpha resized bicubically,
    /// not by the network) to `out_size`; values are clamped and rounded half to even.
    pub fn upscale_u8(
        &self,
        src: &[u8],
        (w, h): (usize, usize),
        channels: usize,
        (ow, oh): (usize, usize),
    ) -> Result<Vec<u8>> {
        if !(3..=4).contains(&channels) || src.len() != w * h * channels || w == 0 || h == 0 {
            return Err(Error::InvalidInput(format!(
                "{w}×{h} image with {channels} channels does not fit {} bytes",
                src.len()
            )));
        }
        let mut planar = vec![0.0; 3 * w * h];
        image_ops::hwc_u8_to_chw_f32(src, w, h, channels, &mut planar);
        let out = self.upscale_planar(&planar, (w, h), (ow, oh))?;
        let mut dst = vec![0u8; ow * oh * channels];
        if channels == 4 {
            let alpha: Vec<u8> = src.iter().skip(3).step_by(4).copied().collect();
            let alpha = image_ops::imresize_u8(&alpha, w, h, 1, ow, oh);
            for (px, a) in dst.chunks_exact_mut(4).zip(alpha) {
                px[3] = a;
            }
        }
        image_ops::chw_f32_to_hwc_u8(&out, ow, oh, &mut dst, channels);
        Ok(dst)
    }
}
