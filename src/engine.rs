//! A loaded model ready for frames: device choice, weights, variant, ACS.
//! The CLI and the GStreamer element both get their model here.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::acs::{Acs, AcsScratch, EdgeMode, Forward, FrameStats, Framing, Nhw, Rect};
use crate::cpu::{CpuNet, Int8Stats, Threads};
use crate::cuda::CudaNet;
use crate::cuda::args::Storage;
use crate::image_ops::{self, Resizer};
use crate::kernels::Kernels;
use crate::model::{Config, Network, Variant, scale_code, scale_code_between};
use crate::weights::{self, Tensors};
use crate::{Error, Result};

/// Where the network runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device `id` when this build has CUDA and the device answers, else the CPU.
    Auto(usize),
    Cpu,
    Cuda(usize),
}

impl Default for DeviceChoice {
    fn default() -> Self {
        DeviceChoice::Auto(0)
    }
}

/// An opened device, and why `Auto` settled for the CPU in a build that has CUDA (worth a
/// warning; a build without CUDA runs on the CPU as expected, so that gives none).
pub struct Opened {
    pub device: Device,
    pub fallback: Option<String>,
}

impl DeviceChoice {
    /// Opens the device. `Auto` falls back to the CPU silently; ask `Cuda` to get the error.
    pub fn open(self) -> Result<Device> {
        Ok(self.open_explained()?.device)
    }

    /// As [`DeviceChoice::open`], saying why `Auto` fell back to the CPU.
    pub fn open_explained(self) -> Result<Opened> {
        let cpu = |fallback| Opened {
            device: Device::Cpu,
            fallback,
        };
        match self {
            DeviceChoice::Cpu => Ok(cpu(None)),
            DeviceChoice::Cuda(id) => Ok(Opened {
                device: open_cuda(id)?,
                fallback: None,
            }),
            DeviceChoice::Auto(_) if !CUDA_BUILT => Ok(cpu(None)),
            DeviceChoice::Auto(id) => Ok(match open_cuda(id) {
                Ok(device) => Opened {
                    device,
                    fallback: None,
                },
                Err(e) => cpu(Some(format!("CUDA unavailable ({e}); running on the CPU"))),
            }),
        }
    }
}

/// Whether this build has CUDA support (the `cuda` feature).
const CUDA_BUILT: bool = cfg!(feature = "cuda");

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
    /// The CPU: IMDN_RTC's block 3×3 convs on 8-bit integers (AVX-512 VNNI), their inputs
    /// rounded on ranges calibrated into the weights file (`imdn calibrate`); the rest f32.
    Int8,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 | Precision::Tf32 | Precision::Int8 => DType::F32,
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
            "int8" => Precision::Int8,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown precision {other:?}: use f32, tf32, f16, bf16 or int8"
                )));
            }
        })
    }
}

/// What runs the network on CUDA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CudaKernels {
    /// candle's network (cuDNN convs).
    #[default]
    Candle,
    /// Our executor ([`crate::cuda`]: the schedule's fused steps, kernels compiled by NVRTC),
    /// in f32 or f16.
    Ours,
}

/// How to build an [`Upscaler`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub precision: Precision,
    pub cuda_kernels: CudaKernels,
    /// Threads of our CPU kernels; 0 = all cores (or `RAYON_NUM_THREADS`).
    pub cpu_threads: usize,
    /// Our CPU kernels (the fastest by default).
    pub kernels: Kernels,
}

/// A network on a device, with the cropping strategy it runs under.
pub struct Upscaler {
    candle: CandleNet,
    /// On the CPU: the same network on our kernels, which run every frame.
    cpu: Option<CpuNet>,
    /// On CUDA, when asked: the same network on our executor, which runs every frame.
    gpu: Option<CudaNet>,
    config: Config,
    device: Device,
    pub acs: Acs,
    /// ACS's buffers, kept between frames by [`Upscaler::forward_planar_into`].
    scratch: AcsScratch,
    /// The frame size and tiling [`Upscaler::forward_planar_into`] last checked against the
    /// memory available: a stream of same-sized frames reads the system's figures once.
    memory_checked: Option<((usize, usize), Acs)>,
    /// IMDN_AS with a scale input: the scale code of the frames given to the `forward_*`
    /// methods (see [`Upscaler::set_refine_scale`]).
    refine_code: Option<f32>,
    /// [`Upscaler::upscale_planar_into`]'s bicubic step and the frame before or after it,
    /// kept between frames.
    resizer: Resizer,
    staging: Vec<f32>,
}

// The element builds an upscaler on one thread and keeps it on its infer thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Upscaler>();
};

/// candle's network in its working precision behind ACS's f32 interface.
struct CandleNet {
    net: Network,
    dtype: DType,
    device: Device,
}

impl CandleNet {
    fn forward_tensor(&self, input: &Tensor, scale_code: Option<f32>) -> Result<Tensor> {
        let codes = match scale_code {
            Some(code) => Some(Tensor::full(code, input.dim(0)?, &self.device)?),
            None => None,
        };
        let out = self
            .net
            .forward_at(&input.to_dtype(self.dtype)?, codes.as_ref())?;
        Ok(out.to_dtype(DType::F32)?)
    }
}

/// What runs frames under ACS, with the scale code of the frames (IMDN_AS with a scale input).
enum Runner<'a> {
    /// Our kernels (on the CPU).
    Cpu(&'a CpuNet, Option<f32>),
    /// Our executor on CUDA.
    Gpu(&'a CudaNet, Option<f32>),
    /// candle (CUDA).
    Candle(&'a CandleNet, Option<f32>),
}

impl<'a> Runner<'a> {
    /// Our kernels where the upscaler has them, candle elsewhere. Takes the fields, not the
    /// upscaler, so that its ACS scratch can be borrowed beside it.
    fn new(
        (cpu, gpu): (Option<&'a CpuNet>, Option<&'a CudaNet>),
        candle: &'a CandleNet,
        scale_code: Option<f32>,
    ) -> Self {
        match (cpu, gpu) {
            (Some(cpu), _) => Runner::Cpu(cpu, scale_code),
            (None, Some(gpu)) => Runner::Gpu(gpu, scale_code),
            (None, None) => Runner::Candle(candle, scale_code),
        }
    }
}

impl Forward for Runner<'_> {
    fn forward_batch_into(&self, input: &[f32], (n, h, w): Nhw, out: &mut Vec<f32>) -> Result<()> {
        match *self {
            Runner::Cpu(cpu, code) => cpu.forward_at_into(input, n, h, w, code, out),
            Runner::Gpu(gpu, code) => gpu.forward_at_into(input, (n, h, w), code, out),
            Runner::Candle(net, code) => {
                let x = Tensor::from_slice(input, (n, 3, h, w), &net.device)?;
                *out = net
                    .forward_tensor(&x, code)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                Ok(())
            }
        }
    }

    /// Our streamed CPU network pads and crops as it reads and writes, our CUDA executor on
    /// the device.
    fn forward_framed_into(
        &self,
        input: &[f32],
        framing: Framing,
        padded: (usize, usize),
        out: &mut Vec<f32>,
    ) -> Result<bool> {
        match *self {
            Runner::Cpu(cpu, _) => cpu.forward_framed_into(input, framing, padded, out),
            Runner::Gpu(gpu, code) => {
                (gpu.forward_framed_into(input, framing, padded, code, out)).map(|()| true)
            }
            Runner::Candle(..) => Ok(false),
        }
    }

    /// Our kernels take the whole frame's attention statistics from its tiles; candle's tiles
    /// each use their own.
    fn frame_stages(&self) -> usize {
        match *self {
            Runner::Cpu(cpu, _) => cpu.frame_stages(),
            Runner::Gpu(..) | Runner::Candle(..) => 0,
        }
    }

    fn add_stage_sums(
        &self,
        input: &[f32],
        nhw: Nhw,
        shares: &[Rect],
        stage: usize,
        stats: &mut FrameStats,
    ) -> Result<()> {
        match *self {
            Runner::Cpu(cpu, code) => {
                cpu.add_block_sums_at(input, nhw, code, (shares, stage), stats)
            }
            Runner::Gpu(..) | Runner::Candle(..) => {
                Err(Error::Model("only the CPU gathers frame statistics".into()))
            }
        }
    }

    fn forward_batch_with_stats_into(
        &self,
        input: &[f32],
        nhw: Nhw,
        stats: &FrameStats,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        match *self {
            Runner::Cpu(cpu, code) => cpu.forward_with_stats_at_into(input, nhw, code, stats, out),
            Runner::Gpu(..) | Runner::Candle(..) => self.forward_batch_into(input, nhw, out),
        }
    }
}

impl Upscaler {
    /// Loads weights (safetensors or PyTorch .pth), detects the variant, builds it on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        Self::load_with(path, device, Options::default())
    }

    /// As [`Upscaler::load`], with `options`.
    pub fn load_with(path: &Path, device: &Device, options: Options) -> Result<Self> {
        let tensors = weights::load(path)?;
        Self::with_options(tensors, device, options).map_err(|e| match e {
            Error::Model(m) => Error::Model(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Builds the network that fits `tensors`, in f32.
    pub fn from_tensors(tensors: Tensors, device: &Device) -> Result<Self> {
        Self::with_options(tensors, device, Options::default())
    }

    /// Builds the network that fits `tensors` with `options`.
    pub fn with_options(tensors: Tensors, device: &Device, options: Options) -> Result<Self> {
        let precision = options.precision;
        let dtype = precision.dtype();
        if device.is_cpu() && dtype != DType::F32 {
            return Err(Error::InvalidInput(format!(
                "precision {precision:?} needs CUDA; the CPU runs f32"
            )));
        }
        if device.is_cuda() && precision == Precision::Int8 {
            return Err(Error::InvalidInput(
                "precision int8 runs on the CPU; CUDA runs f32, tf32 or f16".into(),
            ));
        }
        if device.is_cuda() {
            // process-wide in candle: cuBLAS products in TF32 for f32 tensors
            candle_core::cuda::set_gemm_reduced_precision_f32(precision == Precision::Tf32);
        }
        // candle's builder first: it names a missing or mis-shaped tensor best
        let (net, config) =
            Network::from_tensors(tensors.clone(), device, dtype).map_err(Error::Model)?;
        let cpu = if device.is_cpu() {
            let kernels = Kernels {
                int8: precision == Precision::Int8,
                ..options.kernels
            };
            Some(CpuNet::with_kernels(
                &config,
                &tensors,
                options.cpu_threads,
                kernels,
            )?)
        } else {
            None
        };
        let gpu = match (options.cuda_kernels, device.is_cuda()) {
            (CudaKernels::Candle, _) => None,
            (CudaKernels::Ours, true) => {
                let storage = match precision {
                    Precision::F32 | Precision::Tf32 => Storage::F32,
                    Precision::F16 => Storage::F16,
                    Precision::Bf16 | Precision::Int8 => {
                        return Err(Error::InvalidInput(
                            "our CUDA executor runs f32 or f16".into(),
                        ));
                    }
                };
                Some(CudaNet::open(&config, &tensors, device, storage)?)
            }
            (CudaKernels::Ours, false) => {
                return Err(Error::InvalidInput(
                    "our CUDA executor needs a CUDA device".into(),
                ));
            }
        };
        let candle = CandleNet {
            net,
            dtype,
            device: device.clone(),
        };
        Ok(Self {
            candle,
            cpu,
            gpu,
            config,
            device: device.clone(),
            acs: Acs::for_reach(config.reach()),
            scratch: AcsScratch::default(),
            memory_checked: None,
            refine_code: None,
            resizer: Resizer::default(),
            staging: Vec::new(),
        })
    }

    /// The threads our CPU network runs on (none on CUDA): see [`Threads`].
    pub fn cpu_threads(&self) -> Option<Threads> {
        self.cpu.as_ref().map(CpuNet::thread_pool)
    }

    /// What the CPU's 8-bit network has run (None without one): how far frames fell outside
    /// its calibrated ranges, and which ran again in f32 because they fell far outside.
    pub fn int8_stats(&self) -> Option<Int8Stats> {
        self.cpu.as_ref().and_then(CpuNet::int8_stats)
    }

    /// Whether the network runs streamed on the CPU ([`CpuNet::streams`]): whole frames then
    /// hold little memory, and tiles only cost halos.
    pub fn streams(&self) -> bool {
        self.cpu.as_ref().is_some_and(CpuNet::streams)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the network sees past the frame border: sets the ACS margin to the network's
    /// edge margin, or none.
    pub fn set_edge_mode(&mut self, mode: EdgeMode) {
        self.acs.margin = match mode {
            EdgeMode::Zero => 0,
            EdgeMode::Replicate => self.config.edge_margin(),
        };
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// IMDN_AS: the frames given to the `forward_*` methods were bicubic-upscaled from `from`
    /// to `to`, which a network with a scale input is told (and needs: it refuses frames until
    /// this is set). [`Upscaler::upscale_planar`] works it out by itself.
    pub fn set_refine_sizes(&mut self, from: (usize, usize), to: (usize, usize)) {
        self.refine_code = Some(scale_code_between(from, to));
    }

    /// As [`Upscaler::set_refine_sizes`], by a factor `scale` on both axes (finite and
    /// positive; the network is told the nearest scale it was trained on, 1.1–4).
    pub fn set_refine_scale(&mut self, scale: f64) -> Result<()> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidInput(format!(
                "refine scale {scale}: expected a positive factor"
            )));
        }
        self.refine_code = Some(scale_code(scale));
        Ok(())
    }

    /// The network alone on an f32 NCHW tensor (no padding, no tiling, no clamping), by the
    /// path frames take: our kernels on the CPU, candle elsewhere.
    pub fn forward_raw(&self, input: &Tensor) -> Result<Tensor> {
        let runner = Runner::new(
            (self.cpu.as_ref(), self.gpu.as_ref()),
            &self.candle,
            self.refine_code,
        );
        match runner {
            Runner::Candle(..) => self.candle.forward_tensor(input, self.refine_code),
            _ => {
                let (n, _, h, w) = input.dims4()?;
                let s = self.config.net_scale();
                let mut out = Vec::new();
                let x = input.flatten_all()?.to_vec1::<f32>()?;
                runner.forward_batch_into(&x, (n, h, w), &mut out)?;
                Ok(Tensor::from_vec(out, (n, 3, h * s, w * s), input.device())?)
            }
        }
    }

    /// Our CUDA executor, when it runs the frames ([`CudaKernels::Ours`]).
    pub fn cuda_net(&self) -> Option<&CudaNet> {
        self.gpu.as_ref()
    }

    /// Where a `size` frame goes as bytes to our CUDA executor ([`CudaNet::run_raw`]), which
    /// converts, pads and crops it on the device: the network's frames and the frame's place
    /// in them. `None` where the frame goes through [`Upscaler::upscale_planar_into`] instead:
    /// not our executor, an output not the network's scale × `size`, IMDN_AS (resampled on
    /// the host first), or a frame cut into tiles.
    pub fn raw_framing(
        &self,
        (w, h): (usize, usize),
        out: (usize, usize),
    ) -> Option<(Nhw, Framing)> {
        let c = self.config;
        let s = c.net_scale();
        if self.gpu.is_none() || c.variant == Variant::As || out != (w * s, h * s) || w * h == 0 {
            return None;
        }
        let (pw, ph, margin) = self.acs.whole_frame((w, h), c.input_multiple())?;
        let framing = Framing {
            frame: (h, w),
            margin,
        };
        Some(((1, ph, pw), framing))
    }

    /// candle's own implementation of the network (the reference for our CPU kernels).
    pub fn forward_candle(&self, input: &Tensor) -> Result<Tensor> {
        self.candle.forward_tensor(input, self.refine_code)
    }

    /// Runs the network under ACS on planar RGB f32 (`w`×`h`, values in [0, 1]); the output is
    /// exactly `net_scale ×` the input and not clamped.
    pub fn forward_planar(&self, input: &[f32], size: (usize, usize)) -> Result<Vec<f32>> {
        let c = &self.config;
        self.check_memory(size)?;
        self.acs.run(
            &Runner::new(
                (self.cpu.as_ref(), self.gpu.as_ref()),
                &self.candle,
                self.refine_code,
            ),
            input,
            size,
            c.net_scale(),
            c.input_multiple(),
        )
    }

    /// As [`Upscaler::forward_planar`], into `out` (resized to fit), reusing the buffers of
    /// the previous frame: the per-frame path of a video.
    pub fn forward_planar_into(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let c = self.config;
        if self.memory_checked != Some((size, self.acs)) {
            self.check_memory(size)?;
            self.memory_checked = Some((size, self.acs));
        }
        let net = Runner::new(
            (self.cpu.as_ref(), self.gpu.as_ref()),
            &self.candle,
            self.refine_code,
        );
        self.acs.run_into(
            &net,
            input,
            size,
            c.net_scale(),
            c.input_multiple(),
            &mut self.scratch,
            out,
        )
    }

    /// On the CPU, refuses a `w`×`h` network input whose working set under the current ACS
    /// (buffers and activations) exceeds the memory available, naming the cure: a failed
    /// allocation would abort the process. CUDA reports its own out-of-memory errors.
    pub fn check_memory(&self, (w, h): (usize, usize)) -> Result<()> {
        // below this, reading the system's figures costs more than it could save
        const CHECK_ABOVE: u64 = 256 << 20;
        let Some(cpu) = &self.cpu else {
            return Ok(());
        };
        let c = self.config;
        let floats =
            self.acs
                .peak_floats((w, h), c.net_scale(), c.input_multiple(), |tw, th, n| {
                    cpu.working_floats(n, th, tw)
                });
        let needed = floats as u64 * 4;
        if needed < CHECK_ABOVE {
            return Ok(());
        }
        match crate::memory::available_bytes() {
            Some(available) if needed > available => Err(Error::OutOfMemory(format!(
                "a {w}×{h} frame through {c} {} needs about {} MiB, {} MiB are available: \
                 use tiles (a tile size of 256 keeps it under {} MiB)",
                if self.acs.tile == 0 {
                    "as a whole frame".to_string()
                } else {
                    format!("in tiles of {}", self.acs.tile)
                },
                needed >> 20,
                available >> 20,
                (Acs {
                    tile: 256,
                    ..self.acs
                }
                .peak_floats(
                    (w, h),
                    c.net_scale(),
                    c.input_multiple(),
                    |tw, th, n| { cpu.working_floats(n, th, tw) }
                ) as u64
                    * 4)
                    >> 20
            ))),
            _ => Ok(()),
        }
    }

    /// Upscales planar RGB f32 from `size` to exactly `out_size` (values not clamped): the
    /// one rule that reaches any output size, for the CLI and the element alike.
    /// - IMDN_AS: bicubic to `out_size`, then the network refines it (any factor ≥ 1).
    /// - IMDN / IMDN_RTC ×s: the network; when `out_size` is not `s ×` the input, its output is
    ///   then resized (bicubic) to `out_size`.
    pub fn upscale_planar(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        out_size: (usize, usize),
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.upscale_planar_into(input, size, out_size, &mut out)?;
        Ok(out)
    }

    /// As [`Upscaler::upscale_planar`], into `out` (resized to fit), reusing the buffers of
    /// the previous frame: the per-frame path of a video.
    pub fn upscale_planar_into(
        &mut self,
        input: &[f32],
        (w, h): (usize, usize),
        (ow, oh): (usize, usize),
        out: &mut Vec<f32>,
    ) -> Result<()> {
        if ow == 0 || oh == 0 {
            return Err(Error::InvalidInput(format!(
                "output size {ow}×{oh} is empty"
            )));
        }
        let mut staging = std::mem::take(&mut self.staging);
        let result = match self.config.variant {
            Variant::As => {
                self.set_refine_sizes((w, h), (ow, oh));
                if (ow, oh) == (w, h) {
                    self.forward_planar_into(input, (w, h), out)
                } else {
                    self.resizer
                        .resize_into(input, ((w, h), (ow, oh)), &mut staging)
                        .and_then(|()| self.forward_planar_into(&staging, (ow, oh), out))
                }
            }
            Variant::Imdn | Variant::Rtc => {
                let s = self.config.net_scale();
                if (ow, oh) == (w * s, h * s) {
                    self.forward_planar_into(input, (w, h), out)
                } else {
                    self.forward_planar_into(input, (w, h), &mut staging)
                        .and_then(|()| {
                            self.resizer
                                .resize_into(&staging, ((w * s, h * s), (ow, oh)), out)
                        })
                }
            }
        };
        self.staging = staging;
        result
    }

    /// Upscales interleaved 8-bit RGB (`channels` = 3) or RGBA (4; alpha resized bicubically,
    /// not by the network) to `out_size`; values are clamped and rounded half to even.
    pub fn upscale_u8(
        &mut self,
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
