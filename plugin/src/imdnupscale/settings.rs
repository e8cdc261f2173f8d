//! The element's properties: their settings, defaults and ParamSpecs, and what they ask the
//! infer thread to build.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use imdn::engine::DeviceChoice;

use super::backend::{BackendSpec, ImdnSpec};
use super::caps::MAX_SIDE;
use super::imp::{ImdnUpscale, lock};
use super::worker::MAX_DEPTH;
use super::{CudaKernels, Device, EdgeMode, Model, Precision};

const DEFAULT_SCALE: u32 = 2;
const DEFAULT_DEVICE_ID: u32 = 0;
const DEFAULT_TILE_SIZE: u32 = 0;
const DEFAULT_MAX_FRAMES_IN_FLIGHT: i32 = -1;
const DEFAULT_N_THREADS: u32 = 0;
const DEFAULT_PROCESSING_LATENCY: u64 = 0;
const DEFAULT_FALLBACK_TO_CPU: bool = true;
const DEFAULT_STEADY: u32 = 0;

/// The element's properties (but the read-only `frames-processed`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// 2–4, or 0: the output size comes from downstream caps.
    pub scale: u32,
    pub model: Model,
    pub model_path: Option<String>,
    pub device: Device,
    pub fallback_to_cpu: bool,
    pub device_id: u32,
    pub precision: Precision,
    pub cuda_kernels: CudaKernels,
    pub tile_size: u32,
    pub edge_mode: EdgeMode,
    pub max_frames_in_flight: i32,
    pub n_threads: u32,
    pub processing_latency: gst::ClockTime,
    /// Input change in 8-bit levels under which a pixel counts as still; 0 = off.
    pub steady: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scale: DEFAULT_SCALE,
            model: Model::default(),
            model_path: None,
            device: Device::default(),
            fallback_to_cpu: DEFAULT_FALLBACK_TO_CPU,
            device_id: DEFAULT_DEVICE_ID,
            precision: Precision::default(),
            cuda_kernels: CudaKernels::default(),
            tile_size: DEFAULT_TILE_SIZE,
            edge_mode: EdgeMode::default(),
            max_frames_in_flight: DEFAULT_MAX_FRAMES_IN_FLIGHT,
            n_threads: DEFAULT_N_THREADS,
            processing_latency: gst::ClockTime::from_nseconds(DEFAULT_PROCESSING_LATENCY),
            steady: DEFAULT_STEADY,
        }
    }
}

/// What the settings ask the infer thread to build.
pub fn backend_spec(settings: &Settings) -> BackendSpec {
    let model_path = settings.model_path.as_deref().filter(|p| !p.is_empty());
    #[cfg(feature = "test-backends")]
    if let Some(test) = model_path.and_then(super::test_backends::parse) {
        return BackendSpec::Test(test);
    }
    BackendSpec::Imdn(ImdnSpec {
        path: model_path.map(Into::into),
        device: match settings.device {
            Device::Auto => DeviceChoice::Auto(settings.device_id as usize),
            Device::Cpu => DeviceChoice::Cpu,
            Device::Cuda => DeviceChoice::Cuda(settings.device_id as usize),
        },
        precision: settings.precision.into(),
        cuda_kernels: settings.cuda_kernels.into(),
        tile: settings.tile_size as usize,
        edge: settings.edge_mode.into(),
        threads: settings.n_threads as usize,
        scale: settings.scale as usize,
        expect: settings.model.variant(),
    })
}

impl ObjectImpl for ImdnUpscale {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("scale")
                    .nick("Scale")
                    .blurb("Output size as a multiple of the input's (2-4), or 0 for the size downstream caps ask for")
                    .minimum(0)
                    .maximum(4)
                    .default_value(DEFAULT_SCALE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model", Model::default())
                    .nick("Model")
                    .blurb("Which network to run: the shipped one for the scale, or the one model-path must hold")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-path")
                    .nick("Model path")
                    .blurb("Weights file (safetensors or the authors' .pth) or a shipped model's name; unset: the shipped model for scale and model")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("device", Device::default())
                    .nick("Device")
                    .blurb("Where the network runs")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("device-id")
                    .nick("Device ID")
                    .blurb("CUDA device ordinal")
                    .maximum(255)
                    .default_value(DEFAULT_DEVICE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("precision", Precision::default())
                    .nick("Precision")
                    .blurb("The network's arithmetic: f32, tf32 or f16 on CUDA (the CPU then runs f32); int8 on the CPU (IMDN_RTC)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("cuda-kernels", CudaKernels::default())
                    .nick("CUDA kernels")
                    .blurb("What runs the network on CUDA: candle's network or our executor")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fallback-to-cpu")
                    .nick("Fall back to the CPU")
                    .blurb("After a runtime error on CUDA, rebuild the network on the CPU and go on with a warning")
                    .default_value(DEFAULT_FALLBACK_TO_CPU)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("steady")
                    .nick("Steady")
                    .blurb("Averages over time the pixels whose input changed by at most this many levels, against noise flicker on still cameras (0 = off)")
                    .maximum(255)
                    .default_value(DEFAULT_STEADY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("tile-size")
                    .nick("Tile size")
                    .blurb("Input pixels per side of the overlapping tiles frames are cut into (0 = whole frame)")
                    .maximum(MAX_SIDE as u32)
                    .default_value(DEFAULT_TILE_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("edge-mode", EdgeMode::default())
                    .nick("Edge mode")
                    .blurb("What the network sees past the frame border: the border pixels replicated (flat areas stay flat) or zeros (the authors' protocol)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("max-frames-in-flight")
                    .nick("Max frames in flight")
                    .blurb("Frames held in the worker threads, each adding a frame of latency (-1 = auto, 0 = synchronous)")
                    .minimum(-1)
                    .maximum(MAX_DEPTH as i32)
                    .default_value(DEFAULT_MAX_FRAMES_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("n-threads")
                    .nick("Threads")
                    .blurb("CPU threads of the network's kernels (0 = RAYON_NUM_THREADS if set, else one per core)")
                    .maximum(1024)
                    .default_value(DEFAULT_N_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("processing-latency")
                    .nick("Processing latency")
                    .blurb("Floor in ns for the per-frame processing time the latency query reports")
                    .maximum(u64::MAX - 1)
                    .default_value(DEFAULT_PROCESSING_LATENCY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("frames-processed")
                    .nick("Frames processed")
                    .blurb("Frames upscaled since the element started")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        // The ParamSpecs check types and ranges before we get here.
        const CHECKED: &str = "type checked by the ParamSpec";
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "scale" => settings.scale = value.get().expect(CHECKED),
            "model" => settings.model = value.get().expect(CHECKED),
            "model-path" => settings.model_path = value.get().expect(CHECKED),
            "fallback-to-cpu" => settings.fallback_to_cpu = value.get().expect(CHECKED),
            "device" => settings.device = value.get().expect(CHECKED),
            "device-id" => settings.device_id = value.get().expect(CHECKED),
            "precision" => settings.precision = value.get().expect(CHECKED),
            "cuda-kernels" => settings.cuda_kernels = value.get().expect(CHECKED),
            "tile-size" => settings.tile_size = value.get().expect(CHECKED),
            "edge-mode" => settings.edge_mode = value.get().expect(CHECKED),
            "steady" => settings.steady = value.get().expect(CHECKED),
            "max-frames-in-flight" => settings.max_frames_in_flight = value.get().expect(CHECKED),
            "n-threads" => settings.n_threads = value.get().expect(CHECKED),
            "processing-latency" => {
                settings.processing_latency =
                    gst::ClockTime::from_nseconds(value.get().expect(CHECKED));
                drop(settings);
                self.post_latency_message();
            }
            other => unreachable!("no property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "scale" => settings.scale.to_value(),
            "model" => settings.model.to_value(),
            "model-path" => settings.model_path.to_value(),
            "fallback-to-cpu" => settings.fallback_to_cpu.to_value(),
            "device" => settings.device.to_value(),
            "device-id" => settings.device_id.to_value(),
            "precision" => settings.precision.to_value(),
            "cuda-kernels" => settings.cuda_kernels.to_value(),
            "tile-size" => settings.tile_size.to_value(),
            "edge-mode" => settings.edge_mode.to_value(),
            "steady" => settings.steady.to_value(),
            "max-frames-in-flight" => settings.max_frames_in_flight.to_value(),
            "n-threads" => settings.n_threads.to_value(),
            "processing-latency" => settings.processing_latency.nseconds().to_value(),
            "frames-processed" => self.frames_processed.load(Ordering::Relaxed).to_value(),
            other => unreachable!("no property {other}"),
        }
    }
}
