//! `imdn train`: the flags to [`TrainOptions`], the run in `imdn::train`, its summary as JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::builder::TypedValueParser;
use clap::{Args, ValueEnum};

use imdn::engine::DeviceChoice;
use imdn::model::{Config, Variant};
use imdn::train::{Loss, Scores, Summary, TrainOptions};

use crate::common::{named, parse_device};

#[derive(Args)]
pub struct TrainArgs {
    /// The network: imdn, rtc or as (the paper's IMDN, IMDN_RTC, IMDN_AS also do).
    #[arg(long, value_parser = |s: &str| s.parse::<Variant>().map_err(|e| e.to_string()))]
    variant: Variant,
    /// Scale of IMDN/RTC (IMDN_AS trains at random scales in [1.1, 4]).
    #[arg(long)]
    scale: Option<usize>,
    /// Channels (default: the paper's, 64 for imdn/as, 12 for rtc).
    #[arg(long)]
    channels: Option<usize>,
    /// Distillation blocks (default: the paper's, 6 for imdn/as, 5 for rtc).
    #[arg(long)]
    blocks: Option<usize>,
    /// IMDN_AS without the scale input (as the first run behind weights/imdn_as was trained).
    #[arg(long)]
    no_scale_input: bool,
    /// Folder of HR training images (scripts/prepare-data.sh makes one).
    #[arg(long)]
    data: PathBuf,
    /// Folder for checkpoints, the log and model.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Total steps (with --resume: the step to continue up to).
    #[arg(long)]
    steps: u64,
    /// LR patch side (HR = patch·scale); IMDN_AS: the body's side (input = 4·patch).
    #[arg(long, default_value_t = 48)]
    patch: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Halve the learning rate every N steps (0: never).
    #[arg(long, default_value_t = 0)]
    halve_every: u64,
    /// Prefer patches with at least this detail (mean |∇luma| in 8-bit levels; flat sky ≈0.5,
    /// texture ≥8): up to 8 positions are tried per patch. 0: uniform patches.
    #[arg(long, default_value_t = 0.0)]
    min_detail: f32,
    /// l1 (the paper's) or l2 (mean squared error: a last fine-tuning stage for PSNR).
    #[arg(
        long,
        default_value = "l1",
        ignore_case = true,
        value_parser = named::<LossArg>("loss").map(Loss::from)
    )]
    loss: Loss,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start from the tensors of this file that match by name and shape (e.g. a ×2 body).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999, about
    /// the last 1000 steps; 0: none). Validation scores it, the export writes it, checkpoints
    /// carry it; the training itself is unchanged.
    #[arg(long, default_value_t = 0.0)]
    ema: f64,
    /// Folder of HR validation images (LR by our bicubic).
    #[arg(long)]
    val: Option<PathBuf>,
    /// A second validation folder scored beside --val at every validation, e.g. the
    /// structured tiles of scripts/prepare-data.sh (DATA/val-structured).
    #[arg(long, requires = "val")]
    val_structured: Option<PathBuf>,
    /// Validation PSNR every N steps (and at the end).
    #[arg(long, default_value_t = 0)]
    val_every: u64,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Checkpoints kept (0: all).
    #[arg(long, default_value_t = 3)]
    keep: usize,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Where the final weights go (default: OUT/model.safetensors).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Log line every N steps (to OUT/train-log.jsonl; also stderr without a terminal).
    #[arg(long, default_value_t = 100)]
    log_every: u64,
    /// Stop after the step that ends past this many seconds of training (then checkpoint,
    /// validate and export as at --steps; --resume continues).
    #[arg(long)]
    time_limit: Option<f64>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: DeviceChoice,
}

/// `--loss`.
#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    L1,
    L2,
}

impl From<LossArg> for Loss {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::L1 => Loss::L1,
            LossArg::L2 => Loss::L2,
        }
    }
}

/// Trains (or resumes, with --resume) as the flags say; prints a JSON summary on stdout.
pub fn train(a: TrainArgs) -> Result<()> {
    let summary = imdn::train::train(&options(a)?)?;
    println!("{}", summary_json(&summary));
    Ok(())
}

/// The network the flags describe: the paper's for the variant, with the sizes given.
fn config(a: &TrainArgs) -> Result<Config> {
    let mut config = match (a.variant, a.scale) {
        (Variant::As, Some(_)) => {
            bail!("IMDN_AS trains at random scales in [1.1, 4]: drop --scale")
        }
        (Variant::As, None) => Config::imdn_as(),
        (Variant::Imdn, s) => Config::imdn(s.unwrap_or(2)),
        (Variant::Rtc, s) => Config::rtc(s.unwrap_or(2)),
    };
    config.channels = a.channels.unwrap_or(config.channels);
    config.blocks = a.blocks.unwrap_or(config.blocks);
    if a.no_scale_input {
        if a.variant != Variant::As {
            bail!("--no-scale-input: only IMDN_AS (--variant as) has a scale input");
        }
        config.scale_input = false;
    }
    Ok(config)
}

fn options(a: TrainArgs) -> Result<TrainOptions> {
    let mut o = TrainOptions::new(config(&a)?, a.data, a.out);
    o.steps = a.steps;
    o.patch = a.patch;
    o.batch = a.batch;
    o.lr = a.lr;
    o.halve_every = a.halve_every;
    o.min_detail = a.min_detail;
    o.loss = a.loss;
    o.seed = a.seed;
    o.init_from = a.init_from;
    o.val = a.val;
    o.val_structured = a.val_structured;
    o.val_every = a.val_every;
    o.checkpoint_every = a.checkpoint_every;
    o.keep = a.keep;
    o.ema = a.ema;
    o.resume = a.resume;
    o.export = a.export;
    o.log_every = a.log_every;
    o.progress = true;
    o.time_limit = match a.time_limit {
        Some(s) if !(s.is_finite() && s >= 0.0) => bail!("--time-limit {s}: give seconds ≥ 0"),
        s => s.map(Duration::from_secs_f64),
    };
    o.device = a.device.open()?;
    Ok(o)
}

/// The line scripts read after a run: where it ended, its files, its last validation.
fn summary_json(s: &Summary) -> serde_json::Value {
    let scores = |v: &Scores| {
        v.iter()
            .map(|(sc, p, b)| serde_json::json!({"scale": sc, "psnr_y": p, "bicubic_psnr_y": b}))
            .collect::<Vec<_>>()
    };
    let last = s.validations.last();
    serde_json::json!({
        "step": s.step,
        "start_step": s.start_step,
        "final_loss": s.losses.last(),
        "checkpoint": s.checkpoint.display().to_string(),
        "weights": s.export.display().to_string(),
        "elapsed_s": s.elapsed_s,
        "validation": last.map(|v| scores(&v.scores)),
        "structured_validation": last.and_then(|v| v.structured.as_ref().map(scores)),
    })
}
