//! One session of a run: its steps, checkpoints, validations and export.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use indicatif::ProgressStyle;
use serde_json::json;

use super::adam::{Adam, AdamParams};
use super::average::WeightAverage;
use super::checkpoint::{self, Checkpoint, State};
use super::data::{Dataset, Sampler};
use super::export::export_weights;
use super::params::{SavedAverage, copy_matching, init_parameters, scored_weights, start_average};
use super::report::{Reporter, validate, validation_json, validation_line};
use super::rng::Rng;
use super::setup::Setup;
use super::{Summary, TrainOptions, Validation};
use crate::model::Network;
use crate::weights::Tensors;
use crate::{Error, Result};

/// One session of a run, started fresh ([`Session::fresh`]) or from a checkpoint
/// ([`Session::resume`]): what its steps, checkpoints, validations and export share.
pub(super) struct Session<'a> {
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
    pub(super) fn fresh(opts: &'a TrainOptions, setup: Setup) -> Result<Self> {
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
    pub(super) fn resume(
        opts: &'a TrainOptions,
        setup: Setup,
        ck: Checkpoint,
        path: PathBuf,
    ) -> Result<Self> {
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
    pub(super) fn run(mut self) -> Result<Summary> {
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
            if opts.val.is_some()
                && opts.val_every > 0
                && step.is_multiple_of(opts.val_every)
                && step < opts.steps
            {
                let tv = Instant::now();
                let weights = scored_weights(&self.adam, self.average.as_ref())?;
                validations.push(self.validate(weights, step)?);
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
        if opts.val.is_some() {
            validations.push(self.validate(weights.clone(), step)?);
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

    /// Validates `weights` at `step` on the run's validation folders, reported and logged.
    fn validate(&mut self, weights: Tensors, step: u64) -> Result<Validation> {
        let opts = self.opts;
        let Some(dir) = &opts.val else {
            return Err(Error::InvalidInput("no validation folder".into()));
        };
        let structured = opts.val_structured.as_deref();
        let v = validate(weights, &opts.config, dir, structured, &opts.device, step)?;
        self.rep.say(&validation_line(&v));
        self.rep.log(validation_json(&v));
        Ok(v)
    }
}
