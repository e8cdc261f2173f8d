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

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::engine::Upscaler;
use crate::eval::{LrSource, evaluate};
use crate::model::{Config, INPUT_SKIP, Network, SCALE_EMBED, Variant};
use crate::weights::{self, Tensors};
use crate::{Error, Result};

use adam::{Adam, AdamParams};
use average::WeightAverage;
use checkpoint::{Checkpoint, State};
use data::{Dataset, Sampler};
pub use loss::Loss;
use rng::Rng;

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

/// One validation: PSNR on Y of the network and of bicubic, per scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    pub step: u64,
    /// (scale, network PSNR, bicubic PSNR), dB.
    pub scores: Vec<(usize, f64, f64)>,
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

/// Messages go above the progress bar, or to stderr without one.
struct Reporter {
    bar: ProgressBar,
    show: bool,
    log: Option<std::fs::File>,
}

impl Reporter {
    /// A progress bar on a terminal (when `opts.progress`), and the run's log, appended to.
    fn new(opts: &TrainOptions) -> Self {
        let bar = if opts.progress && std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(opts.steps), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(opts.out.join(LOG_NAME))
            .ok();
        Reporter {
            bar,
            show: opts.progress,
            log,
        }
    }

    fn say(&self, msg: &str) {
        if !self.show {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.bar.println(msg);
        }
    }

    fn log(&mut self, value: serde_json::Value) {
        if let Some(f) = &mut self.log {
            // the log is a convenience: a full disk must not stop training
            let _ = writeln!(f, "{value}");
        }
    }
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

/// The checkpoint to continue from: the newest in `opts.out` with `opts.resume` (none there
/// starts a new run), and refusal to start over a run without it. Checked before the data load
/// so that a wrong folder fails at once.
fn checkpoint_to_resume(
    opts: &TrainOptions,
    rep: &Reporter,
) -> Result<Option<(Checkpoint, PathBuf)>> {
    if !opts.resume {
        if let Some((step, path)) = checkpoint::latest(&opts.out)? {
            return Err(Error::InvalidInput(format!(
                "{} already holds a run (step {step}: {}); pass --resume to continue it or \
                 choose another output folder",
                opts.out.display(),
                path.display()
            )));
        }
        return Ok(None);
    }
    let Some((_, path)) = checkpoint::latest(&opts.out)? else {
        rep.say(&format!(
            "no checkpoint in {}: starting a new run",
            opts.out.display()
        ));
        return Ok(None);
    };
    let ck = checkpoint::load(&path)?;
    let s = &ck.state;
    if s.config != opts.config || s.patch != opts.patch || s.batch != opts.batch {
        return Err(Error::InvalidInput(format!(
            "{} is a run of {} with patch {} and batch {}; asked for {} with patch {} and \
             batch {}",
            path.display(),
            s.config,
            s.patch,
            s.batch,
            opts.config,
            opts.patch,
            opts.batch
        )));
    }
    Ok(Some((ck, path)))
}

/// What a session sets up the same way whether its run is fresh or resumed: the data and the
/// network, its parameters not yet set.
struct Setup {
    rep: Reporter,
    sampler: Sampler,
    data: Dataset,
    net: Network,
    /// The network's variables, sorted by name.
    vars: Vec<(String, Var)>,
}

impl Setup {
    fn new(opts: &TrainOptions, rep: Reporter) -> Result<Self> {
        let sampler = Sampler::new(&opts.config, opts.patch)?.with_min_detail(opts.min_detail);
        let t_load = Instant::now();
        let data = Dataset::load(&opts.data, sampler.hr_side())?;
        rep.say(&format!(
            "data: {} images from {} ({:.0} MB decoded, {} smaller than {}×{} left out) in \
             {:.1} s",
            data.len(),
            data.dir.display(),
            data.bytes() as f64 / 1e6,
            data.skipped,
            sampler.hr_side(),
            sampler.hr_side(),
            t_load.elapsed().as_secs_f64()
        ));
        let device = &opts.device;
        single_stream(device);
        let varmap = VarMap::new();
        let net = Network::new(
            &opts.config,
            VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        // the variables outlive the map: each is a handle on the tensor the network reads
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::Model("variable map lock poisoned".into()))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            rep,
            sampler,
            data,
            net,
            vars,
        })
    }
}

/// The weight average a checkpoint carries.
struct SavedAverage {
    decay: f64,
    updates: u64,
    tensors: Tensors,
}

/// One session of a run, started fresh ([`Session::fresh`]) or from a checkpoint
/// ([`Session::resume`]): what its steps, checkpoints, validations and export share.
struct Session<'a> {
    opts: &'a TrainOptions,
    rep: Reporter,
    sampler: Sampler,
    data: Dataset,
    net: Network,
    rng: Rng,
    adam: Adam,
    average: Option<WeightAverage>,
    /// The seed the run started from (a resumed run continues from the PRNG state instead).
    seed: u64,
    /// The `init_from` the run started with, for checkpoints and the model card.
    init_from: Option<String>,
    /// The step this session starts at.
    start: u64,
    /// Training seconds of the run's earlier sessions.
    elapsed_before: f64,
    /// The smoothed loss (none before the run's first step).
    loss_ema: Option<f64>,
    resumed_from: Option<PathBuf>,
    /// Names of the tensors `init_from` supplied.
    init_copied: Vec<String>,
}

impl<'a> Session<'a> {
    /// A new run: parameters from the seed, then the tensors of `init_from` that match.
    fn fresh(opts: &'a TrainOptions, setup: Setup) -> Result<Self> {
        let device = &opts.device;
        let mut rng = Rng::new(opts.seed);
        init_parameters(&setup.vars, &mut rng, device)?;
        let init_copied = match &opts.init_from {
            Some(src) => copy_matching(&setup.vars, src, device, &setup.rep)?,
            None => Vec::new(),
        };
        let adam = Adam::new(setup.vars, AdamParams::default())?;
        let average = start_average(opts.ema, &adam, None, device, &setup.rep)?;
        Ok(Self {
            opts,
            rep: setup.rep,
            sampler: setup.sampler,
            data: setup.data,
            net: setup.net,
            rng,
            adam,
            average,
            seed: opts.seed,
            init_from: opts.init_from.as_ref().map(|p| p.display().to_string()),
            start: 0,
            elapsed_before: 0.0,
            loss_ema: None,
            resumed_from: None,
            init_copied,
        })
    }

    /// The run of checkpoint `ck` (read from `path`), where it stopped: parameters, Adam's
    /// moments, the PRNG and the weight average as they were.
    fn resume(opts: &'a TrainOptions, setup: Setup, ck: Checkpoint, path: PathBuf) -> Result<Self> {
        let Checkpoint {
            state,
            params,
            m,
            v,
            ema,
        } = ck;
        let rep = &setup.rep;
        if state.data_fingerprint != setup.data.fingerprint() {
            rep.say(&format!(
                "warning: the data differ from the checkpoint's ({} images then, {} now): the \
                 run will not match an uninterrupted one",
                state.data_images,
                setup.data.len()
            ));
        }
        if state.min_detail != opts.min_detail {
            rep.say(&format!(
                "note: minimum patch detail changed from {} to {}",
                state.min_detail, opts.min_detail
            ));
        }
        if state.loss != opts.loss {
            rep.say(&format!(
                "note: loss changed from {} to {}",
                state.loss.describe(),
                opts.loss.describe()
            ));
        }
        if state.lr != opts.lr || state.halve_every != opts.halve_every {
            rep.say(&format!(
                "note: learning rate schedule changed from {} halved every {} to {} halved \
                 every {}",
                state.lr, state.halve_every, opts.lr, opts.halve_every
            ));
        }
        let device = &opts.device;
        let mut adam = Adam::new(setup.vars, AdamParams::default())?;
        for slot in &mut adam.slots {
            let get = |t: &Tensors, what: &str| -> Result<Tensor> {
                let x = t.get(&slot.name).ok_or_else(|| {
                    Error::InvalidInput(format!("{}: no {what} for {}", path.display(), slot.name))
                })?;
                if x.dims() != slot.var.dims() {
                    return Err(Error::InvalidInput(format!(
                        "{}: {what} of {} has shape {:?}, the network {:?}",
                        path.display(),
                        slot.name,
                        x.dims(),
                        slot.var.dims()
                    )));
                }
                Ok(x.to_device(device)?)
            };
            slot.var.set(&get(&params, "parameter")?)?;
            slot.m = get(&m, "first moment")?;
            slot.v = get(&v, "second moment")?;
        }
        adam.t = state.adam_t;
        let rng = Rng::from_state(state.rng).ok_or_else(|| {
            Error::InvalidInput(format!("{}: invalid PRNG state", path.display()))
        })?;
        rep.say(&format!(
            "resuming {} from {} (step {})",
            opts.config,
            path.display(),
            state.step
        ));
        let saved = SavedAverage {
            decay: state.ema_decay,
            updates: state.ema_updates,
            tensors: ema,
        };
        let average = start_average(opts.ema, &adam, Some(saved), device, rep)?;
        Ok(Self {
            opts,
            rep: setup.rep,
            sampler: setup.sampler,
            data: setup.data,
            net: setup.net,
            rng,
            adam,
            average,
            seed: state.seed,
            init_from: state.init_from,
            start: state.step,
            elapsed_before: state.elapsed_s,
            loss_ema: Some(state.loss_ema),
            resumed_from: Some(path),
            init_copied: Vec::new(),
        })
    }

    /// Trains from `start` up to `opts.steps` (or the time limit), then checkpoints, validates
    /// and exports.
    fn run(mut self) -> Result<Summary> {
        let opts = self.opts;
        self.announce()?;
        let t0 = Instant::now();
        let mut validation_time = Duration::ZERO;
        let elapsed_before = self.elapsed_before;
        let elapsed = |t0: &Instant| elapsed_before + t0.elapsed().as_secs_f64();
        let mut losses = Vec::new();
        let mut validations = Vec::new();
        let mut last_checkpoint = None;
        let mut step = self.start;
        let ema_alpha = 0.02;
        while step < opts.steps {
            let lr = opts.lr_at(step);
            let loss = self.step(lr)?;
            if !loss.is_finite() {
                return Err(Error::Model(format!(
                    "the loss is {loss} at step {}: lower the learning rate",
                    step + 1
                )));
            }
            losses.push(loss);
            let ema = match self.loss_ema {
                Some(e) => e + ema_alpha * (f64::from(loss) - e),
                None => f64::from(loss),
            };
            self.loss_ema = Some(ema);
            step += 1;
            self.rep
                .bar
                .set_message(format!("loss {ema:.5} lr {lr:.2e}"));
            self.rep.bar.set_position(step);
            let out_of_time = opts.time_limit.is_some_and(|t| t0.elapsed() >= t);

            if opts.log_every > 0 && step.is_multiple_of(opts.log_every) {
                let secs = elapsed(&t0);
                self.rep.log(
                    json!({"step": step, "loss": loss, "loss_ema": ema, "lr": lr,
                           "elapsed_s": secs}),
                );
                if self.rep.show && self.rep.bar.is_hidden() {
                    let rate = (step - self.start) as f64 / t0.elapsed().as_secs_f64();
                    eprintln!(
                        "step {step}/{}: loss {ema:.5} lr {lr:.2e} {rate:.3} steps/s, ETA {:.0} s",
                        opts.steps,
                        (opts.steps - step) as f64 / rate
                    );
                }
            }
            if out_of_time {
                self.rep
                    .say(&format!("time limit reached after step {step}"));
                break;
            }
            if opts.checkpoint_every > 0
                && step.is_multiple_of(opts.checkpoint_every)
                && step < opts.steps
            {
                let state = self.state(step, elapsed(&t0), ema);
                last_checkpoint = Some(self.save(&state)?);
            }
            if let Some(val) = &opts.val
                && opts.val_every > 0
                && step.is_multiple_of(opts.val_every)
                && step < opts.steps
            {
                let tv = Instant::now();
                let weights = scored_weights(&self.adam, self.average.as_ref())?;
                validations.push(self.validate(weights, val, step)?);
                validation_time += tv.elapsed();
            }
        }
        let ema = self.loss_ema.unwrap_or(f64::NAN);
        let elapsed_s = elapsed(&t0);
        let state = self.state(step, elapsed_s, ema);
        if step > self.start || last_checkpoint.is_none() {
            last_checkpoint = Some(self.save(&state)?);
        }
        let weights = scored_weights(&self.adam, self.average.as_ref())?;
        if let Some(val) = &opts.val {
            validations.push(self.validate(weights.clone(), val, step)?);
        }
        self.rep
            .log(json!({"step": step, "loss_ema": ema, "elapsed_s": elapsed_s, "end": true}));
        let export = opts.export_path();
        export_weights(weights, &state, &self.data, &opts.device, &export)?;
        self.rep.bar.finish_and_clear();
        self.rep.say(&format!(
            "step {step}: loss {ema:.5}; {:.1} s this session ({:.1} s validating), {:.1} s over \
             the run; weights: {}",
            elapsed_s - elapsed_before,
            validation_time.as_secs_f64(),
            elapsed_s,
            export.display()
        ));
        Ok(Summary {
            start_step: self.start,
            step,
            losses,
            validations,
            resumed_from: self.resumed_from,
            init_copied: self.init_copied,
            checkpoint: last_checkpoint
                .unwrap_or_else(|| opts.out.join(checkpoint::file_name(step))),
            export,
            elapsed_s,
        })
    }

    /// The log's mark of a resumed session, the settings line, and the progress bar at `start`.
    fn announce(&mut self) -> Result<()> {
        let (opts, start) = (self.opts, self.start);
        if let Some(path) = &self.resumed_from {
            // records after this one replace the log's records of steps past `resumed_at`,
            // which an interrupted session may have written after its last checkpoint
            self.rep
                .log(json!({"resumed_at": start, "checkpoint": path.display().to_string()}));
        }
        let params: usize = self.adam.slots.iter().map(|s| s.var.elem_count()).sum();
        let sampler = &self.sampler;
        self.rep.say(&format!(
            "training {}, {params} parameters, on {:?} with {} threads: steps {start}→{}, \
             batch {} of {}×{} → {}×{}, lr {}{}{}",
            opts.config,
            opts.device.location(),
            candle_core::utils::get_num_threads(),
            opts.steps,
            opts.batch,
            sampler.input_side(),
            sampler.input_side(),
            sampler.hr_side(),
            sampler.hr_side(),
            opts.lr,
            if opts.halve_every == 0 {
                " (constant)".to_owned()
            } else {
                format!(" halved every {} steps", opts.halve_every)
            },
            match &self.average {
                Some(a) => format!(", weight average of decay {}", a.decay),
                None => String::new(),
            }
        ));
        self.rep.bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} {per_sec} ETA {eta}",
            )
            .map_err(|e| Error::InvalidInput(e.to_string()))?
            .progress_chars("=> "),
        );
        self.rep.bar.set_position(start);
        self.rep.bar.reset_eta();
        Ok(())
    }

    /// One Adam step at learning rate `lr` on a batch drawn from the PRNG; returns its loss.
    fn step(&mut self, lr: f64) -> Result<f32> {
        let device = &self.opts.device;
        let batch = self
            .sampler
            .sample(&self.data, &mut self.rng, self.opts.batch)?;
        let (n, is, hs) = (batch.n, batch.input_side, batch.target_side);
        let input =
            Tensor::from_vec(batch.input, (n, 3, is, is), &Device::Cpu)?.to_device(device)?;
        let target =
            Tensor::from_vec(batch.target, (n, 3, hs, hs), &Device::Cpu)?.to_device(device)?;
        let codes = match batch.scale_codes.is_empty() {
            true => None,
            false => Some(Tensor::new(batch.scale_codes.as_slice(), device)?),
        };
        let pred = self.net.forward_at(&input, codes.as_ref())?;
        let loss = self.opts.loss.of(&pred, &target)?;
        let grads = loss.backward()?;
        self.adam.step(&grads, lr)?;
        if let Some(a) = &mut self.average {
            a.update(&self.adam)?;
        }
        Ok(loss.to_scalar::<f32>()?)
    }

    /// The checkpoint state after `step` steps.
    fn state(&self, step: u64, elapsed_s: f64, loss_ema: f64) -> State {
        let opts = self.opts;
        let average = self.average.as_ref();
        State {
            step,
            adam_t: self.adam.t,
            rng: self.rng.state(),
            config: opts.config,
            patch: opts.patch,
            batch: opts.batch,
            seed: self.seed,
            lr: opts.lr,
            halve_every: opts.halve_every,
            min_detail: opts.min_detail,
            loss: opts.loss,
            data_fingerprint: self.data.fingerprint(),
            data_images: self.data.len(),
            elapsed_s,
            loss_ema,
            init_from: self.init_from.clone(),
            ema_decay: average.map_or(0.0, |a| a.decay),
            ema_updates: average.map_or(0, |a| a.updates),
        }
    }

    /// Writes a checkpoint of `state` with the parameters, moments and average, and prunes
    /// the old ones; returns its path.
    fn save(&self, state: &State) -> Result<PathBuf> {
        let average = self.average.as_ref();
        let slots = self
            .adam
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| checkpoint::Slot {
                name: s.name.clone(),
                param: s.var.as_tensor().clone(),
                m: s.m.clone(),
                v: s.v.clone(),
                ema: average.map(|a| a.tensors[i].clone()),
            });
        let path = checkpoint::save(&self.opts.out, state, slots)?;
        checkpoint::prune(&self.opts.out, self.opts.keep)?;
        Ok(path)
    }

    /// Validates `weights` on `dir` at `step`, reported and logged.
    fn validate(&mut self, weights: Tensors, dir: &Path, step: u64) -> Result<Validation> {
        let v = validate(weights, &self.opts.config, dir, &self.opts.device, step)?;
        self.rep.say(&validation_line(&v));
        self.rep.log(validation_json(&v));
        Ok(v)
    }
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

/// PyTorch's default initialisation of `nn.Conv2d` (the authors' models), from `rng`: weights
/// uniform in ±1/√fan_in (`kaiming_uniform_(a=√5)`), biases uniform in ±1/√fan_in of their
/// layer's weight. Variables in name order.
fn init_parameters(vars: &[(String, Var)], rng: &mut Rng, device: &Device) -> Result<()> {
    let dims: HashMap<&str, Vec<usize>> = vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.dims().to_vec()))
        .collect();
    let fan_in = |d: &[usize]| d.iter().skip(1).product::<usize>().max(1);
    let has_skip = dims.contains_key(INPUT_SKIP);
    for (name, var) in vars {
        let fan = match name.strip_suffix(".bias") {
            Some(layer) => dims
                .get(format!("{layer}.weight").as_str())
                .map(|d| fan_in(d))
                .unwrap_or(1),
            None => fan_in(var.dims()),
        };
        let bound = 1.0 / (fan as f64).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.uniform(-bound, bound) as f32)
            .collect();
        // With IMDN_AS's input skip the network starts as the identity (gains 1, upsampler
        // 0): its output is the bicubic frame until it learns the detail. Its scale
        // embedding starts at 0, so that a run initialised from a network without one
        // starts where that network was.
        let values = match name.as_str() {
            INPUT_SKIP => vec![1.0; values.len()],
            SCALE_EMBED => vec![0.0; values.len()],
            "upsampler.0.weight" | "upsampler.0.bias" if has_skip => vec![0.0; values.len()],
            _ => values,
        };
        let t = Tensor::from_vec(values, var.dims(), &Device::Cpu)?.to_device(device)?;
        var.set(&t)?;
    }
    Ok(())
}

/// Copies every tensor of `src` whose name and shape match a variable; returns their names.
fn copy_matching(
    vars: &[(String, Var)],
    src: &Path,
    device: &Device,
    rep: &Reporter,
) -> Result<Vec<String>> {
    let tensors = weights::load(src)?;
    let mut copied = Vec::new();
    let mut reshaped = Vec::new();
    for (name, var) in vars {
        match tensors.get(name) {
            Some(t) if t.dims() == var.dims() => {
                var.set(&t.to_device(device)?)?;
                copied.push(name.clone());
            }
            Some(t) => reshaped.push(format!("{name} {:?}≠{:?}", t.dims(), var.dims())),
            None => {}
        }
    }
    let n_copied: usize = copied
        .iter()
        .filter_map(|n| tensors.get(n))
        .map(Tensor::elem_count)
        .sum();
    let total: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();
    rep.say(&format!(
        "init from {}: {} of {} tensors copied ({n_copied} of {total} parameters); {} of the \
         file's {} unused{}",
        src.display(),
        copied.len(),
        vars.len(),
        tensors.len() - copied.len(),
        tensors.len(),
        if reshaped.is_empty() {
            String::new()
        } else {
            format!("; other shape: {}", reshaped.join(", "))
        }
    ));
    if copied.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no tensor matches the network by name and shape",
            src.display()
        )));
    }
    Ok(copied)
}

/// The current parameters, copied to the CPU.
fn parameters(adam: &Adam) -> Result<Tensors> {
    adam.slots
        .iter()
        .map(|s| {
            Ok((
                s.name.clone(),
                s.var.as_tensor().to_device(&Device::Cpu)?.copy()?,
            ))
        })
        .collect()
}

/// The weights a run validates and exports: the weight average if it keeps one, else the
/// current parameters; copied to the CPU.
fn scored_weights(adam: &Adam, average: Option<&WeightAverage>) -> Result<Tensors> {
    let Some(average) = average else {
        return parameters(adam);
    };
    adam.slots
        .iter()
        .zip(&average.tensors)
        // no copy: each update replaces the average's tensors rather than writing into them
        .map(|(s, t)| Ok((s.name.clone(), t.to_device(&Device::Cpu)?)))
        .collect()
}

/// The weight average a run keeps (`decay` 0: none): the checkpoint's if it has one of that
/// decay, else a new one from the current parameters.
fn start_average(
    decay: f64,
    adam: &Adam,
    saved: Option<SavedAverage>,
    device: &Device,
    rep: &Reporter,
) -> Result<Option<WeightAverage>> {
    let saved_decay = saved.as_ref().map_or(0.0, |s| s.decay);
    if decay == 0.0 {
        if saved_decay > 0.0 {
            rep.say("note: the checkpoint's weight average is dropped (no --ema)");
        }
        return Ok(None);
    }
    match saved {
        Some(SavedAverage {
            decay: d,
            updates,
            tensors,
        }) if d == decay && !tensors.is_empty() => {
            let tensors = adam
                .slots
                .iter()
                .map(|s| match tensors.get(&s.name) {
                    Some(t) if t.dims() == s.var.dims() => Ok(t.to_device(device)?),
                    _ => Err(Error::InvalidInput(format!(
                        "the checkpoint's weight average lacks {} or has another shape",
                        s.name
                    ))),
                })
                .collect::<Result<_>>()?;
            Ok(Some(WeightAverage {
                decay,
                updates,
                tensors,
            }))
        }
        Some(_) => {
            rep.say(&format!(
                "note: the weight average (decay {decay}) starts here from the checkpoint's \
                 parameters{}",
                if saved_decay > 0.0 {
                    format!(", replacing its average of decay {saved_decay}")
                } else {
                    String::new()
                }
            ));
            Ok(Some(WeightAverage::new(decay, adam)?))
        }
        None => Ok(Some(WeightAverage::new(decay, adam)?)),
    }
}

/// Validation PSNR (Y, the authors' protocol) of `weights` on `dir`, LR by our bicubic: at the
/// model's scale, or at ×2, ×3, ×4 for IMDN_AS.
fn validate(
    weights: Tensors,
    config: &Config,
    dir: &Path,
    device: &Device,
    step: u64,
) -> Result<Validation> {
    let mut up = Upscaler::from_tensors(weights, device)?;
    up.acs.tile = 0;
    let scales = match config.variant {
        Variant::As => vec![2, 3, 4],
        _ => vec![config.upsampler_scale],
    };
    let mut scores = Vec::new();
    for s in scales {
        let report = evaluate(&mut up, dir, LrSource::Downscale, s, |_| {})?;
        scores.push((s, report.mean_sr().0, report.mean_bicubic().0));
    }
    Ok(Validation { step, scores })
}

fn validation_line(v: &Validation) -> String {
    let parts: Vec<String> = v
        .scores
        .iter()
        .map(|(s, p, b)| format!("×{s} {p:.3} dB (bicubic {b:.3}, {:+.3})", p - b))
        .collect();
    format!("step {}: validation PSNR {}", v.step, parts.join(", "))
}

fn validation_json(v: &Validation) -> serde_json::Value {
    let scores: Vec<_> = v
        .scores
        .iter()
        .map(|(s, p, b)| json!({"scale": s, "psnr_y": p, "bicubic_psnr_y": b}))
        .collect();
    json!({"step": v.step, "validation": scores})
}

/// Writes `weights` alone, with a model card in the metadata.
fn export_weights(
    weights: Tensors,
    state: &State,
    data: &Dataset,
    device: &Device,
    path: &Path,
) -> Result<()> {
    let data = format!(
        "{} images from {} (fingerprint {:016x})",
        data.len(),
        data.dir.display(),
        state.data_fingerprint
    );
    let mut meta = model_card(state, data);
    // of the session that exported (a run may have sessions with other counts)
    meta.insert(
        "threads".into(),
        candle_core::utils::get_num_threads().to_string(),
    );
    meta.insert("device".into(), format!("{:?}", device.location()));
    weights::save_safetensors_with_metadata(&weights, &meta, path)?;
    Ok(())
}

/// Writes the weights of the checkpoint at `checkpoint` (its weight average if it keeps one,
/// as [`weights::load`] reads it) to `path` with the run's model card, as the run's own
/// export would at that step: for exporting a chosen step while the run goes on.
pub fn export_checkpoint(checkpoint: &Path, path: &Path) -> Result<Tensors> {
    let state = checkpoint::load(checkpoint)?.state;
    let tensors = weights::load(checkpoint)?;
    let data = format!(
        "{} images (fingerprint {:016x})",
        state.data_images, state.data_fingerprint
    );
    let mut meta = model_card(&state, data);
    meta.insert(
        "exported_from".into(),
        checkpoint
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    );
    weights::save_safetensors_with_metadata(&tensors, &meta, path)?;
    Ok(tensors)
}

/// The model card a run writes into its exported weights' metadata.
fn model_card(state: &State, data: String) -> HashMap<String, String> {
    let c = &state.config;
    let mut meta = HashMap::new();
    let mut put = |k: &str, v: String| {
        meta.insert(k.to_owned(), v);
    };
    put("format", "imdn-weights".into());
    put("variant", c.variant.name().into());
    put(
        "scale",
        match c.variant {
            Variant::As => "any (trained on bicubic ×1.1–4)".into(),
            _ => c.upsampler_scale.to_string(),
        },
    );
    put("channels", c.channels.to_string());
    put("blocks", c.blocks.to_string());
    put("steps", state.step.to_string());
    put("data", data);
    put(
        "degradation",
        "MATLAB-style bicubic (imdn::image_ops)".into(),
    );
    put("patch", state.patch.to_string());
    put("batch", state.batch.to_string());
    put("lr", state.lr.to_string());
    put("halve_every", state.halve_every.to_string());
    put("min_detail", state.min_detail.to_string());
    put("seed", state.seed.to_string());
    put("loss", state.loss.describe().into());
    put("optimizer", "Adam (0.9, 0.999, 1e-8)".into());
    put("final_loss_ema", format!("{:.6}", state.loss_ema));
    if state.ema_decay > 0.0 {
        put(
            "weights",
            format!(
                "exponential moving average, decay {} ({} steps folded in)",
                state.ema_decay, state.ema_updates
            ),
        );
    }
    put("train_seconds", format!("{:.1}", state.elapsed_s));
    if let Some(i) = &state.init_from {
        put("init_from", i.clone());
    }
    put(
        "created_by",
        format!("imdn train {}", env!("CARGO_PKG_VERSION")),
    );
    meta
}
