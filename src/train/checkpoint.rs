//! Checkpoints: one safetensors file per saved step, `checkpoint-<step>.safetensors`, holding
//! the parameters (`param.<name>`), Adam's moments (`adam_m.<name>`, `adam_v.<name>`), the
//! weight average if the run keeps one (`ema.<name>`, [`super::average`]) and, in
//! the header's metadata under [`STATE_KEY`], a JSON object with the step, Adam's `t`, the PRNG
//! state, the network configuration and the run's settings. Files are written to a temporary
//! sibling and renamed into place, so a checkpoint on disk is always whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde_json::{Value, json};

use super::loss::Loss;
use crate::model::{Config, Variant};
use crate::names::{
    CHECKPOINT_ADAM_M, CHECKPOINT_ADAM_V, CHECKPOINT_EMA, CHECKPOINT_PARAM, join, under,
};
use crate::weights::{self, Tensors};
use crate::{Error, Result};

/// The metadata key of the training state.
pub const STATE_KEY: &str = "imdn_train_state";
const FORMAT: u64 = 1;

/// Everything of a run that is not a tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Steps done.
    pub step: u64,
    /// Adam's update count.
    pub adam_t: u64,
    pub rng: [u64; 4],
    pub config: Config,
    pub patch: usize,
    pub batch: usize,
    pub seed: u64,
    pub lr: f64,
    pub halve_every: u64,
    /// Minimum patch detail of the sampler (0: off).
    pub min_detail: f32,
    pub loss: Loss,
    pub data_fingerprint: u64,
    pub data_images: usize,
    /// Training wall time over all sessions of the run, in seconds.
    pub elapsed_s: f64,
    /// Running mean of the loss at this step.
    pub loss_ema: f64,
    /// Where the starting weights came from, if not a fresh init.
    pub init_from: Option<String>,
    /// The weight average's decay (0: the run keeps none) and the steps it has folded in.
    pub ema_decay: f64,
    pub ema_updates: u64,
}

impl State {
    pub fn to_json(&self) -> Value {
        let c = &self.config;
        json!({
            "format": FORMAT,
            "step": self.step,
            "adam_t": self.adam_t,
            // as strings: JSON readers often hold numbers as f64
            "rng": self.rng.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "config": {
                "variant": c.variant.key(),
                "channels": c.channels,
                "blocks": c.blocks,
                "upsampler_scale": c.upsampler_scale,
                "input_skip": c.input_skip,
                "scale_input": c.scale_input,
            },
            "patch": self.patch,
            "batch": self.batch,
            "seed": self.seed.to_string(),
            "lr": self.lr,
            "halve_every": self.halve_every,
            "min_detail": self.min_detail,
            "loss": self.loss.key(),
            "data_fingerprint": format!("{:016x}", self.data_fingerprint),
            "data_images": self.data_images,
            "elapsed_s": self.elapsed_s,
            "loss_ema": self.loss_ema,
            "init_from": self.init_from,
            "ema_decay": self.ema_decay,
            "ema_updates": self.ema_updates,
        })
    }

    pub fn from_json(v: &Value) -> std::result::Result<Self, String> {
        let u = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("`{k}` is missing or not an integer"))
        };
        let f = |k: &str| {
            v.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("`{k}` is missing or not a number"))
        };
        let format = u("format")?;
        if format != FORMAT {
            return Err(format!(
                "checkpoint format {format}, this build reads {FORMAT}"
            ));
        }
        let rng: Vec<u64> = v
            .get("rng")
            .and_then(Value::as_array)
            .ok_or("`rng` is missing")?
            .iter()
            .map(|s| s.as_str().and_then(|s| s.parse().ok()))
            .collect::<Option<_>>()
            .ok_or("`rng` is not four integers")?;
        let rng: [u64; 4] = rng.try_into().map_err(|_| "`rng` is not four integers")?;
        let c = v.get("config").ok_or("`config` is missing")?;
        let cu = |k: &str| {
            c.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| format!("`config.{k}` is missing"))
        };
        let variant = c
            .get("variant")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Variant>().ok())
            .ok_or("`config.variant` is missing or unknown")?;
        let config = Config {
            variant,
            channels: cu("channels")?,
            blocks: cu("blocks")?,
            upsampler_scale: cu("upsampler_scale")?,
            // absent from checkpoints written before IMDN_AS had the skip
            input_skip: c
                .get("input_skip")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            // and before it had the scale input
            scale_input: c
                .get("scale_input")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        let fingerprint = v
            .get("data_fingerprint")
            .and_then(Value::as_str)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or("`data_fingerprint` is missing")?;
        Ok(Self {
            step: u("step")?,
            adam_t: u("adam_t")?,
            rng,
            config,
            patch: u("patch")? as usize,
            batch: u("batch")? as usize,
            seed: v
                .get("seed")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or("`seed` is missing")?,
            lr: f("lr")?,
            halve_every: u("halve_every")?,
            // absent in checkpoints written before the option existed
            min_detail: v.get("min_detail").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            // absent in checkpoints written before L2 existed: they are all L1
            loss: match v.get("loss").and_then(Value::as_str) {
                None => Loss::L1,
                Some(k) => Loss::parse(k).ok_or_else(|| format!("unknown loss {k:?}"))?,
            },
            data_fingerprint: fingerprint,
            data_images: u("data_images")? as usize,
            elapsed_s: f("elapsed_s")?,
            loss_ema: f("loss_ema")?,
            init_from: v
                .get("init_from")
                .and_then(Value::as_str)
                .map(str::to_owned),
            // absent in checkpoints written before the weight average existed
            ema_decay: v.get("ema_decay").and_then(Value::as_f64).unwrap_or(0.0),
            ema_updates: v.get("ema_updates").and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

/// A checkpoint in memory: parameters, moments and weight average by parameter name.
pub struct Checkpoint {
    pub state: State,
    pub params: Tensors,
    pub m: Tensors,
    pub v: Tensors,
    /// Empty when the run keeps no weight average.
    pub ema: Tensors,
}

/// One parameter as a checkpoint stores it.
pub struct Slot {
    pub name: String,
    pub param: Tensor,
    pub m: Tensor,
    pub v: Tensor,
    pub ema: Option<Tensor>,
}

pub fn file_name(step: u64) -> String {
    format!("checkpoint-{step:08}.safetensors")
}

/// The step of a checkpoint file name, `None` for any other file.
fn step_of(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix("checkpoint-")?
        .strip_suffix(".safetensors")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every checkpoint in `dir`, by step.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(step) = entry.file_name().to_str().and_then(step_of) {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The checkpoint with the highest step in `dir`.
pub fn latest(dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list(dir)?.pop())
}

/// Writes `checkpoint-<step>.safetensors` into `dir` (atomically) and returns its path.
pub fn save(dir: &Path, state: &State, slots: impl Iterator<Item = Slot>) -> Result<PathBuf> {
    let mut tensors = Tensors::new();
    for s in slots {
        if let Some(ema) = s.ema {
            tensors.insert(join(CHECKPOINT_EMA, &s.name), ema);
        }
        tensors.insert(join(CHECKPOINT_PARAM, &s.name), s.param);
        tensors.insert(join(CHECKPOINT_ADAM_M, &s.name), s.m);
        tensors.insert(join(CHECKPOINT_ADAM_V, &s.name), s.v);
    }
    let mut meta = HashMap::new();
    meta.insert(STATE_KEY.to_owned(), state.to_json().to_string());
    let path = dir.join(file_name(state.step));
    weights::save_safetensors_with_metadata(&tensors, &meta, &path)?;
    Ok(path)
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bad = |msg: String| Error::InvalidInput(format!("{}: {msg}", path.display()));
    let meta = weights::load_metadata(path)?;
    let json = meta.get(STATE_KEY).ok_or_else(|| {
        bad(format!(
            "not a training checkpoint (no `{STATE_KEY}` metadata)"
        ))
    })?;
    let value: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let state = State::from_json(&value).map_err(bad)?;
    let (mut params, mut m, mut v) = (Tensors::new(), Tensors::new(), Tensors::new());
    let mut ema = Tensors::new();
    for (name, t) in weights::load_all(path)? {
        if let Some(n) = under(CHECKPOINT_EMA, &name) {
            ema.insert(n.to_owned(), t);
        } else if let Some(n) = under(CHECKPOINT_PARAM, &name) {
            params.insert(n.to_owned(), t);
        } else if let Some(n) = under(CHECKPOINT_ADAM_M, &name) {
            m.insert(n.to_owned(), t);
        } else if let Some(n) = under(CHECKPOINT_ADAM_V, &name) {
            v.insert(n.to_owned(), t);
        } else {
            return Err(bad(format!("unexpected tensor {name:?}")));
        }
    }
    Ok(Checkpoint {
        state,
        params,
        m,
        v,
        ema,
    })
}

/// Removes all but the `keep` newest checkpoints of `dir` (`keep` 0 keeps all).
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let all = list(dir)?;
    for (_, path) in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(step_of(&file_name(42)), Some(42));
        assert_eq!(step_of("checkpoint-.safetensors"), None);
        assert_eq!(step_of("checkpoint-12.safetensors.tmp"), None);
        assert_eq!(step_of("model.safetensors"), None);
    }

    #[test]
    fn state_round_trip() {
        let s = State {
            step: 7,
            adam_t: 7,
            rng: [u64::MAX, 1, 2, 3],
            config: Config::rtc(3),
            patch: 48,
            batch: 16,
            seed: u64::MAX - 5,
            lr: 2e-4,
            halve_every: 200_000,
            min_detail: 3.5,
            loss: Loss::L2,
            data_fingerprint: 0xdead_beef_0123_4567,
            data_images: 12,
            elapsed_s: 1.5,
            loss_ema: 0.03,
            init_from: Some("x.safetensors".into()),
            ema_decay: 0.999,
            ema_updates: 5,
        };
        let text = s.to_json().to_string();
        let back = State::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, s);
        // a checkpoint from before the weight average reads as one without it
        let mut old = s.to_json();
        let obj = old.as_object_mut().unwrap();
        obj.remove("ema_decay");
        obj.remove("ema_updates");
        // and one from before L2 as an L1 run
        obj.remove("loss");
        let back = State::from_json(&old).unwrap();
        assert_eq!((back.ema_decay, back.ema_updates), (0.0, 0));
        assert_eq!(back.loss, Loss::L1);
        let mut unknown = s.to_json();
        unknown["loss"] = "huber".into();
        assert!(State::from_json(&unknown).unwrap_err().contains("huber"));
    }
}
