//! What the infer thread runs: the IMDN network from the `imdn` library (or, built with the
//! `test-backends` feature, a stand-in from `test_backends.rs`).

use std::path::PathBuf;

use gst_video::VideoInfo;

use imdn::acs::EdgeMode;
use imdn::cpu::Threads;
use imdn::engine::{CudaKernels, DeviceChoice, Options, Precision, Upscaler};
use imdn::model::Variant;
use imdn::weights::shipped::{self, SHIPPED, Shipped};

use super::pixels::device::{self, DeviceScratch};
#[cfg(feature = "test-backends")]
use super::test_backends::TestBackend;

/// A network behind the worker. Owned by the infer thread, which is the only one that uses it.
pub trait Backend: Send {
    /// Upscales planar RGB f32 (values in [0, 1]) from `sizes.0` to exactly `sizes.1` (planar
    /// RGB f32, not clamped) into `dst`, resized to fit: the worker passes the buffer of an
    /// earlier frame, so a backend that writes in place allocates nothing per frame.
    fn upscale(&mut self, input: &[f32], sizes: Sizes, dst: &mut Vec<f32>) -> Result<(), String>;

    /// Whether frames may come to [`Backend::submit_on_device`] unconverted.
    fn converts_on_device(&self) -> bool {
        false
    }

    /// The threads a CPU network runs on, for the worker's conversions ([`Threads`]).
    fn cpu_threads(&self) -> Option<Threads> {
        None
    }

    /// Queues `input` to be upscaled on the device, converted there, into a frame of
    /// `output`'s size and layout, and returns without waiting for it: the device works on it
    /// while the host goes on (our CUDA executor: it goes up while the frame before it
    /// computes). [`Backend::finish_on_device`] then writes it into `output`, oldest first;
    /// the worker finishes one frame before it queues a third, or a frame of other sizes.
    /// `Ok(false)` where it does not take these frames so (the worker then converts them on
    /// the host for [`Backend::upscale`]).
    fn submit_on_device(
        &mut self,
        _input: (&gst::BufferRef, &VideoInfo),
        _output: (&gst::BufferRef, &VideoInfo),
    ) -> Result<bool, String> {
        Ok(false)
    }

    /// Waits for the oldest frame queued by [`Backend::submit_on_device`] and writes it into
    /// `output`, the buffer it was queued for.
    fn finish_on_device(
        &mut self,
        _output: (&mut gst::BufferRef, &VideoInfo),
    ) -> Result<(), String> {
        Err("no frame queued on the device".into())
    }
}

/// A frame's (input, output) sizes, each (width, height).
pub type Sizes = ((usize, usize), (usize, usize));

/// IMDN, IMDN_RTC or IMDN_AS from a weights file.
pub struct Imdn {
    upscaler: Upscaler,
    device_scratch: DeviceScratch,
}

impl Backend for Imdn {
    /// Exactly `out`, whatever the network's scale (scale=0): [`Upscaler::upscale_planar_into`].
    fn upscale(&mut self, input: &[f32], sizes: Sizes, dst: &mut Vec<f32>) -> Result<(), String> {
        let (size, out) = sizes;
        self.upscaler
            .upscale_planar_into(input, size, out, dst)
            .map_err(|e| e.to_string())
    }

    /// Our CUDA executor converts, pads and crops whole frames itself
    /// ([`Upscaler::raw_framing`]).
    fn converts_on_device(&self) -> bool {
        self.upscaler.cuda_net().is_some()
    }

    fn cpu_threads(&self) -> Option<Threads> {
        self.upscaler.cpu_threads()
    }

    fn submit_on_device(
        &mut self,
        input: (&gst::BufferRef, &VideoInfo),
        output: (&gst::BufferRef, &VideoInfo),
    ) -> Result<bool, String> {
        let size = |i: &VideoInfo| (i.width() as usize, i.height() as usize);
        let at = self.upscaler.raw_framing(size(input.1), size(output.1));
        let (Some(net), Some(at)) = (self.upscaler.cuda_net(), at) else {
            return Ok(false);
        };
        device::with_raw_input(input, output, &mut self.device_scratch, |frame, convert| {
            (net.submit_raw(at, frame, convert)).map_err(|e| e.to_string())
        })?;
        Ok(true)
    }

    fn finish_on_device(
        &mut self,
        output: (&mut gst::BufferRef, &VideoInfo),
    ) -> Result<(), String> {
        let net = (self.upscaler.cuda_net()).ok_or("no frame queued on the device")?;
        device::with_raw_output(output, |planes| {
            net.finish_raw(planes).map_err(|e| e.to_string())
        })
    }
}

/// Everything needed to build a backend, snapshot from the settings in `start`.
#[derive(Clone, Debug)]
pub enum BackendSpec {
    Imdn(ImdnSpec),
    /// A stand-in for the network (`model-path=test:...`), for the element's own tests.
    #[cfg(feature = "test-backends")]
    Test(TestBackend),
}

/// A network from a weights file.
#[derive(Clone, Debug)]
pub struct ImdnSpec {
    /// `model-path`: a weights file or a shipped model's name; `None`: the shipped default.
    pub path: Option<PathBuf>,
    pub device: DeviceChoice,
    /// `precision`: f32, tf32 or f16 on CUDA (the CPU then runs f32), int8 on the CPU;
    /// `cuda-kernels`: on CUDA only.
    pub precision: Precision,
    pub cuda_kernels: CudaKernels,
    pub tile: usize,
    /// `edge-mode`.
    pub edge: EdgeMode,
    pub threads: usize,
    /// The element's `scale`: 2–4 (a fixed-scale network must match), or 0 (any network).
    pub scale: usize,
    /// The network the `model` property asks for; `None` takes what the file holds.
    pub expect: Option<Variant>,
}

/// Why a backend could not be built; the element maps each to a GStreamer error domain.
#[derive(Debug)]
pub enum BuildError {
    /// The weights file does not exist.
    NotFound(String),
    /// The weights file exists but could not be read or does not hold a network we know.
    BadWeights(String),
    /// The requested device cannot be opened.
    Device(String),
    /// The settings do not fit the weights (e.g. a ×4 network for scale=2).
    Settings(String),
    /// A worker thread could not be started.
    Thread(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::NotFound(m)
            | BuildError::BadWeights(m)
            | BuildError::Device(m)
            | BuildError::Settings(m)
            | BuildError::Thread(m) => f.write_str(m),
        }
    }
}

/// A built backend with what the element should tell the user about it.
pub struct Loaded {
    pub backend: Box<dyn Backend>,
    /// e.g. "IMDN_RTC ×2 on Cpu", for the debug log.
    pub description: String,
    /// Set when `device=auto` could not use the CUDA this build has and fell back to the CPU.
    pub warning: Option<String>,
    pub on_cuda: bool,
    /// What to rebuild on the CPU after a runtime error (`fallback-to-cpu`); `None` on the CPU.
    pub fallback: Option<BackendSpec>,
    /// The factor scale=0 prefers when downstream leaves the size free: the network's own
    /// scale, or 2 where any factor is as good (IMDN_AS, test backends).
    pub preferred_scale: u32,
}

impl Loaded {
    /// A backend that needs no device and no weights.
    #[cfg(feature = "test-backends")]
    pub fn test(backend: Box<dyn Backend>, description: &str) -> Self {
        Loaded {
            backend,
            description: description.into(),
            warning: None,
            on_cuda: false,
            fallback: None,
            preferred_scale: 2,
        }
    }
}

impl BackendSpec {
    /// Builds the backend; called on the infer thread, which then owns the device.
    pub fn build(self) -> Result<Loaded, BuildError> {
        match self {
            BackendSpec::Imdn(spec) => spec.build(),
            #[cfg(feature = "test-backends")]
            BackendSpec::Test(test) => Ok(test.build()),
        }
    }
}

impl ImdnSpec {
    fn build(self) -> Result<Loaded, BuildError> {
        if let Some(path) = &self.path
            && !path.exists()
            && shipped::by_name(&path.to_string_lossy()).is_none()
        {
            let hint = if path.starts_with("test:") {
                "; test backends are in builds with the cargo feature test-backends only"
            } else {
                ""
            };
            return Err(BuildError::NotFound(format!(
                "model-path {}: no such file (nor a shipped model: {}){hint}",
                path.display(),
                shipped::names()
            )));
        }
        let opened = self
            .device
            .open_explained()
            .map_err(|e| BuildError::Device(e.to_string()))?;
        let (dev, warning) = (opened.device, opened.fallback);
        // n-threads sizes the thread pool of the library's CPU kernels (0 = all cores)
        let on_cuda = dev.is_cuda();
        let options = Options {
            precision: match (on_cuda, self.precision) {
                (true, _) | (false, Precision::Int8) => self.precision,
                (false, _) => Precision::F32,
            },
            cuda_kernels: match on_cuda {
                true => self.cuda_kernels,
                false => CudaKernels::Candle,
            },
            cpu_threads: self.threads,
            ..Options::default()
        };
        let (tensors, source) = match &self.path {
            Some(path) => {
                let spec = path.to_string_lossy();
                let tensors = shipped::load_file_or_shipped(&spec).map_err(|e| {
                    BuildError::BadWeights(format!("model-path {}: {e}", path.display()))
                })?;
                (tensors, format!("model-path {}", path.display()))
            }
            None => {
                let m = self.default_model(on_cuda)?;
                let tensors = m
                    .tensors()
                    .map_err(|e| BuildError::BadWeights(e.to_string()))?;
                (tensors, format!("the shipped model {}", m.name))
            }
        };
        let mut upscaler = Upscaler::with_options(tensors, &dev, options)
            .map_err(|e| BuildError::BadWeights(format!("{source}: {e}")))?;
        let config = *upscaler.config();
        let held = format!(
            "{source} holds {} {} network",
            match config.variant {
                Variant::As => "an arbitrary-scale".to_string(),
                _ => format!("a ×{}", config.net_scale()),
            },
            config.variant.name(),
        );
        if let Some(expect) = self.expect
            && expect != config.variant
        {
            return Err(BuildError::Settings(format!(
                "model={} expects {} weights, but {held}: set model=auto or model={}, or give \
                 {} weights",
                expect.key(),
                expect.name(),
                config.variant.key(),
                expect.name()
            )));
        }
        let scale = self.scale;
        if scale != 0 && config.variant != Variant::As && config.net_scale() != scale {
            return Err(BuildError::Settings(format!(
                "{held}, but scale={scale}: use ×{scale} weights, set scale={}, or scale=0 \
                 (output size from downstream caps)",
                config.net_scale()
            )));
        }
        let tile = self.tile;
        upscaler.acs.tile = tile;
        // the overlap is the network's (twice its reach)
        upscaler
            .acs
            .check()
            .map_err(|e| BuildError::Settings(format!("tile-size: {e}")))?;
        upscaler.set_edge_mode(self.edge);
        // device=auto on the CPU without a fallback to explain: a build without CUDA
        let cpu_only_build =
            matches!(self.device, DeviceChoice::Auto(_)) && !on_cuda && warning.is_none();
        let description = format!(
            "{} {} on {:?}{}{}",
            config.variant.name(),
            match scale {
                0 => "(scale=0: size from downstream)".to_string(),
                s => format!("×{s}"),
            },
            dev.location(),
            if tile > 0 {
                format!(", tiles of {tile}")
            } else {
                String::new()
            },
            if cpu_only_build {
                " (device=auto in a build without CUDA)"
            } else {
                ""
            }
        );
        let preferred_scale = match config.variant {
            Variant::As => 2,
            _ => config.net_scale() as u32,
        };
        Ok(Loaded {
            backend: Box::new(Imdn {
                upscaler,
                device_scratch: DeviceScratch::default(),
            }),
            description,
            warning,
            on_cuda,
            fallback: on_cuda.then_some(BackendSpec::Imdn(ImdnSpec {
                device: DeviceChoice::Cpu,
                ..self
            })),
            preferred_scale,
        })
    }
}

impl ImdnSpec {
    /// The shipped weights used without `model-path`: what `model` asks for, where auto means
    /// IMDN_RTC on the CPU, where the 64-channel IMDN takes seconds per HD frame, and on CUDA
    /// whichever of the shipped IMDN and IMDN_RTC scores higher on Set5 at the scale. scale=0
    /// runs a ×2 network, resized to the downstream size (IMDN_AS only with model=as).
    fn default_model(&self, on_cuda: bool) -> Result<&'static Shipped, BuildError> {
        let scale = if self.scale == 0 { 2 } else { self.scale };
        let wanted = match self.expect {
            Some(v) => v,
            None if on_cuda => shipped::best(scale).map_or(Variant::Rtc, |m| m.variant),
            None => Variant::Rtc,
        };
        let found = match wanted {
            Variant::As => SHIPPED.iter().find(|m| m.variant == Variant::As),
            v => shipped::find(v, scale),
        };
        found.ok_or_else(|| {
            let what = match wanted {
                Variant::As => wanted.name().to_string(),
                v => format!("{} ×{scale}", v.name()),
            };
            BuildError::NotFound(format!(
                "no shipped {what} weights (shipped: {}): set model-path to a weights file, \
                 or model=auto",
                shipped::names()
            ))
        })
    }
}
