//! What the subcommands that run a model share: the run flags, loading the weights, and the
//! parsers of flag values.

use std::ffi::OsStr;
use std::marker::PhantomData;

use anyhow::{Context, Result};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, ValueEnum};

use imdn::acs::EdgeMode;
use imdn::engine::{CudaKernels, DeviceChoice, Precision, Upscaler};
use imdn::kernels::Kernels;
use imdn::kernels::rowconv::Isa;
use imdn::model::Variant;
use imdn::weights;
use imdn::weights::shipped;

#[derive(Args)]
pub struct RunArgs {
    /// Weights: a file (safetensors or the authors' PyTorch .pth) or a shipped model's name
    /// (`imdn info` lists them). Default: the shipped IMDN_RTC for the scale.
    #[arg(long)]
    pub weights: Option<String>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
    /// ACS tile side in input pixels; 0 = whole frame. Default: on the CPU whole frames, or
    /// 256-pixel tiles when a whole frame would not fit the memory available; on CUDA whole
    /// frames up to 512×512 network input pixels, 256-pixel tiles above.
    #[arg(long)]
    pub tile: Option<usize>,
    /// Overlap between ACS tiles, in input pixels. Default: twice the model's reach (IMDN 54,
    /// IMDN_RTC 44, IMDN_AS 96), where tiles equal the whole frame.
    #[arg(long)]
    pub overlap: Option<usize>,
    /// What the network sees past the frame border: replicate (the border pixels, by the
    /// model's edge margin, cropped after: flat areas stay flat) or zero (the convolutions'
    /// zero padding, the authors' protocol). Default: replicate for upscale, zero elsewhere.
    #[arg(long, value_parser = named::<EdgeArg>("edge mode").map(EdgeMode::from))]
    pub edge: Option<EdgeMode>,
    /// Arithmetic (tf32, f16 and bf16 need CUDA; int8: IMDN_RTC's block convs in 8 bits on a
    /// CPU with AVX-512 VNNI, from weights calibrated by `imdn calibrate`).
    #[arg(
        long,
        default_value = "f32",
        value_parser = named::<PrecisionArg>("precision").map(Precision::from)
    )]
    pub precision: Precision,
    /// The widest instruction set our streamed CPU kernels may use (IMDN_RTC): avx512, avx2
    /// or portable. Default: the CPU's widest.
    #[arg(long, default_value = "avx512")]
    pub isa: Isa,
    /// What runs the network on CUDA: candle (its cuDNN convs) or ours (the fused steps of
    /// src/cuda, direct kernels compiled by NVRTC; f32 or f16).
    #[arg(
        long,
        default_value = "candle",
        value_parser = named::<CudaKernelsArg>("CUDA kernels").map(CudaKernels::from)
    )]
    pub cuda_kernels: CudaKernels,
}

/// `--device`: not a closed set (`cuda:N` carries the ordinal), so parsed by hand.
pub fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    Ok(match s {
        "auto" => DeviceChoice::Auto(0),
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse) {
            Some(Ok(id)) => DeviceChoice::Cuda(id),
            _ => {
                return Err(format!(
                    "unknown device {other:?}: use cpu, cuda, cuda:N or auto"
                ));
            }
        },
    })
}

/// `--edge` (the library's [`EdgeMode`] has no clap derive).
#[derive(Clone, Copy, ValueEnum)]
pub enum EdgeArg {
    Replicate,
    Zero,
}

impl From<EdgeArg> for EdgeMode {
    fn from(e: EdgeArg) -> Self {
        match e {
            EdgeArg::Replicate => EdgeMode::Replicate,
            EdgeArg::Zero => EdgeMode::Zero,
        }
    }
}

/// `--cuda-kernels` (the library's [`CudaKernels`] has no clap derive).
#[derive(Clone, Copy, ValueEnum)]
pub enum CudaKernelsArg {
    Candle,
    Ours,
}

impl From<CudaKernelsArg> for CudaKernels {
    fn from(k: CudaKernelsArg) -> Self {
        match k {
            CudaKernelsArg::Candle => CudaKernels::Candle,
            CudaKernelsArg::Ours => CudaKernels::Ours,
        }
    }
}

/// `--precision` (the library's [`Precision`] has no clap derive: the library has no clap).
#[derive(Clone, Copy, ValueEnum)]
pub enum PrecisionArg {
    F32,
    Tf32,
    F16,
    Bf16,
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Tf32 => Precision::Tf32,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

/// Parses the [`ValueEnum`] `E` as clap does (its values listed in `--help`), but refuses an
/// unknown value with `unknown WHAT "VALUE": use A, B or C`, the words the CLI used before clap
/// parsed these flags (scripts and tests match them).
pub fn named<E: ValueEnum + Clone + Send + Sync + 'static>(what: &'static str) -> Named<E> {
    Named(what, PhantomData)
}

/// See [`named`].
#[derive(Clone)]
pub struct Named<E>(&'static str, PhantomData<E>);

impl<E: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Named<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<E, clap::Error> {
        let ignore_case = arg.is_some_and(clap::Arg::is_ignore_case_set);
        let what = self.0;
        // a closure parser gets clap's "invalid value 'V' for '--flag <FLAG>': " before our words
        let parse = move |s: &str| {
            E::from_str(s, ignore_case).map_err(|_| {
                let names: Vec<String> = E::value_variants()
                    .iter()
                    .filter_map(|v| Some(v.to_possible_value()?.get_name().to_owned()))
                    .collect();
                let listed = match names.split_last() {
                    Some((last, [])) => last.clone(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                format!("unknown {what} {s:?}: use {listed}")
            })
        };
        parse.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

/// The tensors of `--weights`, or of the shipped IMDN_RTC at `scale` without it.
pub fn load_tensors(run: &RunArgs, scale: usize) -> Result<weights::Tensors> {
    match &run.weights {
        Some(spec) => Ok(shipped::load_file_or_shipped(spec)?),
        None => {
            let m = shipped::find(Variant::Rtc, scale).with_context(|| {
                format!(
                    "no shipped model for ×{scale} (shipped: {}); pass --weights",
                    shipped::names()
                )
            })?;
            Ok(m.tensors()?)
        }
    }
}

/// What `--weights` names, for reports.
pub fn weights_label(run: &RunArgs, scale: usize) -> String {
    run.weights
        .clone()
        .unwrap_or_else(|| format!("imdn_rtc_x{scale} (shipped)"))
}

/// Loads the weights (see [`load_tensors`]) on the chosen device with the chosen tiling and
/// `--edge`, else `edge`: the subcommand's default.
pub fn load(run: &RunArgs, scale: usize, edge: EdgeMode) -> Result<Upscaler> {
    let device = run.device.open()?;
    let options = imdn::engine::Options {
        precision: run.precision,
        cuda_kernels: run.cuda_kernels,
        kernels: Kernels {
            isa: run.isa,
            ..Kernels::default()
        },
        ..Default::default()
    };
    let mut up = Upscaler::with_options(load_tensors(run, scale)?, &device, options)
        .with_context(|| format!("weights {}", weights_label(run, scale)))?;
    up.acs.tile = run.tile.unwrap_or(0);
    if let Some(overlap) = run.overlap {
        up.acs.overlap = overlap;
    }
    up.acs.check()?;
    up.set_edge_mode(run.edge.unwrap_or(edge));
    Ok(up)
}

/// With no --tile: on the CPU, whole frames where they fit the memory available and 256-pixel
/// tiles where not (IMDN's and IMDN_AS's tiles equal the whole frame but take several times
/// as long: each block's attention needs a pass over the tiles for the frame's statistics);
/// through candle (CUDA), whose memory is not checked, whole frames up to 512×512
/// network-input pixels and 256-pixel tiles above (each tile's attention on its own
/// statistics).
pub fn auto_tile(up: &mut Upscaler, run: &RunArgs, net_input: (usize, usize)) {
    if run.tile.is_some() {
        return;
    }
    up.acs.tile = 0;
    let tile = match up.device().is_cpu() {
        true => up.check_memory(net_input).is_err(),
        false => net_input.0 * net_input.1 > 512 * 512,
    };
    if tile {
        up.acs.tile = 256;
    }
}
