//! Training (candle autograd on the CPU or CUDA): L1 loss (L2 for a last stage), Adam, the
//! learning rate halved on a schedule, random patches with flips and 90° rotations, LR by our
//! MATLAB-style bicubic, checkpoints that resume bit-identically, validation PSNR, and the final
//! weights exported as safetensors with a model card in the metadata.
//!
//! - [`rng`]: the one seeded PRNG (xoshiro256**) every random choice comes from; its state is in
//!   each checkpoint.
//! - [`augment`]: crops under the eight symmetries of the square.
//! - [`data`]: the data set in memory and the batch sampler (IMDN/RTC ×s; IMDN_AS at random
//!   scales).
//! - [`adam`]: Adam with its moments in the open.
//! - [`checkpoint`]: the checkpoint files.
//! - [`loss`]: L1 or L2.
//!
//! A run, in private files: `setup` (the checkpoint to resume, the data, the network),
//! `session` (the step loop, checkpoints, validation, export), `params` (initialisation, the
//! weights scored), `report` (messages, the log, validation) and `export` (the model card).
//!
//! Determinism: a run is a function of its options, seed, data and thread count. The
//! parameters are initialised from the PRNG (PyTorch's default conv init: weights and biases
//! uniform in ±1/√fan_in), every batch is drawn from it, and a checkpoint stores the parameters,
//! Adam's moments and `t`, and the PRNG state, so `--resume` continues exactly where the
//! uninterrupted run would be.

pub mod adam;
pub mod augment;
pub mod average;
pub mod checkpoint;
pub mod data;
pub mod loss;
pub mod rng;

mod export;
mod params;
mod report;
mod session;
mod setup;

use std::path::PathBuf;
use std::time::Duration;

use candle_core::Device;

use crate::model::{Config, Variant};
use crate::{Error, Result};

pub use export::export_checkpoint;
pub use loss::Loss;
use report::Reporter;
use session::Session;
use setup::{Setup, checkpoint_to_resume};

/// The file the final weights go to when no export path is given.
pub const EXPORT_NAME: &str = "model.safetensors";
/// The JSON-lines log of a run in its output folder.
pub const LOG_NAME: &str = "train-log.jsonl";

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub config: Config,
    /// Folder of HR images (png, jpg, bmp).
    pub data: PathBuf,
    /// Folder for checkpoints, the log and (by default) the exported weights.
    pub out: PathBuf,
    /// Total steps of the run (a resumed run continues up to this step).
    pub steps: u64,
    /// LR patch side for IMDN/RTC (HR = `patch·s`); for IMDN_AS the side its body runs at
    /// (network input and HR = `4·patch`).
    pub patch: usize,
    pub batch: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// The learning rate is halved every this many steps (0: never).
    pub halve_every: u64,
    /// Prefer HR patches with at least this much detail ([`data::detail`]; 0: uniform patches).
    pub min_detail: f32,
    /// L1 (the paper's) or L2, for a last stage aimed at PSNR.
    pub loss: Loss,
    pub seed: u64,
    /// Weights whose tensors of matching name and shape replace the fresh initialisation.
    pub init_from: Option<PathBuf>,
    /// Keep an exponential moving average of the weights with this decay (0: none; 0.999
    /// averages about the last 1000 steps): validation scores it, the export writes it and
    /// checkpoints carry it. Training itself is the same with or without ([`average`]).
    pub ema: f64,
    /// Folder of HR images for validation PSNR (LR made by our bicubic).
    pub val: Option<PathBuf>,
    /// A second validation folder, scored beside `val` at every validation (the structured
    /// tiles of `scripts/structured_data.py`: what the photographs lack); needs `val`.
    pub val_structured: Option<PathBuf>,
    /// Validate every this many steps (0: only at the end, when `val` is set).
    pub val_every: u64,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept in `out` (0: all).
    pub keep: usize,
    /// Continue from the newest checkpoint in `out`, if there is one.
    pub resume: bool,
    /// Where the final weights go (default `out/model.safetensors`).
    pub export: Option<PathBuf>,
    /// Write a line to the log (and, without a terminal, to stderr) every this many steps.
    pub log_every: u64,
    /// Show a progress bar and messages on stderr.
    pub progress: bool,
    /// Stop after the first step that ends past this much training time in this session (as if
    /// `steps` had been reached there: checkpoint, validation, export), for machines lent for
    /// a fixed time. A later `resume` continues where it stopped.
    pub time_limit: Option<Duration>,
    pub device: Device,
}

impl TrainOptions {
    /// The paper's settings (patch 48, batch 16, lr 2e-4, no halving, seed 0) for `config`.
    pub fn new(config: Config, data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            config,
            data: data.into(),
            out: out.into(),
            steps: 1000,
            patch: 48,
            batch: 16,
            lr: 2e-4,
            halve_every: 0,
            min_detail: 0.0,
            loss: Loss::L1,
            seed: 0,
            init_from: None,
            ema: 0.0,
            val: None,
            val_structured: None,
            val_every: 0,
            checkpoint_every: 0,
            keep: 3,
            resume: false,
            export: None,
            log_every: 100,
            progress: false,
            time_limit: None,
            device: Device::Cpu,
        }
    }

    /// The learning rate of the step that follows `done` steps.
    pub fn lr_at(&self, done: u64) -> f64 {
        match self.halve_every {
            0 => self.lr,
            n => self.lr * 0.5f64.powi((done / n).min(1000) as i32),
        }
    }

    fn export_path(&self) -> PathBuf {
        self.export
            .clone()
            .unwrap_or_else(|| self.out.join(EXPORT_NAME))
    }
}

/// (scale, network PSNR, bicubic PSNR), dB: one validation set's scores.
pub type Scores = Vec<(usize, f64, f64)>;

/// One validation: PSNR on Y of the network and of bicubic, per scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    pub step: u64,
    /// On `val`.
    pub scores: Scores,
    /// On `val_structured`, when the run has one.
    pub structured: Option<Scores>,
}

/// What a call to [`train`] did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The step the call started from (0, or the resumed checkpoint's).
    pub start_step: u64,
    /// The step it ended at.
    pub step: u64,
    /// The loss of every step this call ran, in order.
    pub losses: Vec<f32>,
    pub validations: Vec<Validation>,
    pub resumed_from: Option<PathBuf>,
    /// Names of the tensors `init_from` supplied.
    pub init_copied: Vec<String>,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
    /// The exported weights.
    pub export: PathBuf,
    /// Wall time of training over all sessions of the run, in seconds.
    pub elapsed_s: f64,
}

fn check_options(o: &TrainOptions) -> Result<()> {
    let bad = |m: &str| Err(Error::InvalidInput(m.to_owned()));
    let c = &o.config;
    if o.batch == 0 {
        return bad("batch must be at least 1");
    }
    if o.patch == 0 {
        return bad("patch must be at least 1");
    }
    if c.channels == 0 || !c.channels.is_multiple_of(4) || c.blocks == 0 {
        return bad("channels must be a positive multiple of 4 and blocks at least 1");
    }
    if c.variant == Variant::As && c.upsampler_scale != 4 {
        return bad("IMDN_AS has a ×4 upsampler");
    }
    if c.upsampler_scale == 0 {
        return bad("scale must be at least 1");
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return bad("the learning rate must be a positive number");
    }
    if !(0.0..1.0).contains(&o.ema) {
        return bad("the weight average's decay must be in [0, 1)");
    }
    if !(o.min_detail.is_finite() && o.min_detail >= 0.0) {
        return bad("the minimum detail must be a number ≥ 0");
    }
    if o.val_structured.is_some() && o.val.is_none() {
        return bad(
            "a structured validation folder is scored beside a validation folder: give both",
        );
    }
    Ok(())
}

/// Trains (or continues training) as `opts` says; see the module documentation. On a CUDA
/// device it switches off cudarc's event tracking for the tensors created from then on (see
/// [`single_stream`]): use that device from this thread only while it runs.
pub fn train(opts: &TrainOptions) -> Result<Summary> {
    check_options(opts)?;
    std::fs::create_dir_all(&opts.out)?;
    let rep = Reporter::new(opts);
    let resume = checkpoint_to_resume(opts, &rep)?;
    let setup = Setup::new(opts, rep)?;
    let session = match resume {
        Some((ck, path)) => Session::resume(opts, setup, ck, path)?,
        None => Session::fresh(opts, setup)?,
    };
    session.run()
}

/// Turns off cudarc's per-tensor event tracking on a CUDA device. The events order work across
/// streams; training runs every op on the calling thread's one stream, where they only add
/// driver calls (an event created per tensor, recorded and waited on per launch), thousands a
/// step.
pub fn single_stream(device: &Device) {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        // SAFETY: the tensors made from here on are used on this thread's stream alone (the
        // caller's promise, above), so stream order alone keeps their uses and frees in order.
        unsafe { d.disable_event_tracking() }
    }
    #[cfg(not(feature = "cuda"))]
    let _ = device;
}
