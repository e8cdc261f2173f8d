//! What a run says: messages above the progress bar, the JSON-lines log, and validation.

use std::io::{IsTerminal, Write};
use std::path::Path;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::json;

use super::{LOG_NAME, Scores, TrainOptions, Validation};
use crate::Result;
use crate::engine::Upscaler;
use crate::eval::{LrSource, evaluate};
use crate::model::{Config, Variant};
use crate::weights::Tensors;

/// Messages go above the progress bar, or to stderr without one.
pub(super) struct Reporter {
    pub(super) bar: ProgressBar,
    pub(super) show: bool,
    log: Option<std::fs::File>,
}

impl Reporter {
    /// A progress bar on a terminal (when `opts.progress`), and the run's log, appended to.
    pub(super) fn new(opts: &TrainOptions) -> Self {
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

    pub(super) fn say(&self, msg: &str) {
        if !self.show {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.bar.println(msg);
        }
    }

    pub(super) fn log(&mut self, value: serde_json::Value) {
        if let Some(f) = &mut self.log {
            // the log is a convenience: a full disk must not stop training
            let _ = writeln!(f, "{value}");
        }
    }
}

/// Validation PSNR (Y, the authors' protocol) of `weights` on `dir` and, when given, on
/// `structured`, LR by our bicubic: at the model's scale, or at ×2, ×3, ×4 for IMDN_AS.
pub(super) fn validate(
    weights: Tensors,
    config: &Config,
    dir: &Path,
    structured: Option<&Path>,
    device: &Device,
    step: u64,
) -> Result<Validation> {
    let mut up = Upscaler::from_tensors(weights, device)?;
    up.acs.tile = 0;
    let scales = match config.variant {
        Variant::As => vec![2, 3, 4],
        _ => vec![config.upsampler_scale],
    };
    let mut scores_on = |dir: &Path| -> Result<Scores> {
        let mut scores = Vec::new();
        for &s in &scales {
            let report = evaluate(&mut up, dir, LrSource::Downscale, s, |_| {})?;
            scores.push((s, report.mean_sr().0, report.mean_bicubic().0));
        }
        Ok(scores)
    };
    let scores = scores_on(dir)?;
    let structured = structured.map(&mut scores_on).transpose()?;
    Ok(Validation {
        step,
        scores,
        structured,
    })
}

fn scores_text(scores: &Scores) -> String {
    let parts: Vec<String> = scores
        .iter()
        .map(|(s, p, b)| format!("×{s} {p:.3} dB (bicubic {b:.3}, {:+.3})", p - b))
        .collect();
    parts.join(", ")
}

pub(super) fn validation_line(v: &Validation) -> String {
    let structured = match &v.structured {
        Some(s) => format!("; structured {}", scores_text(s)),
        None => String::new(),
    };
    format!(
        "step {}: validation PSNR {}{structured}",
        v.step,
        scores_text(&v.scores)
    )
}

/// `[{"scale", "psnr_y", "bicubic_psnr_y"}, …]`: the log's and the CLI summary's form.
fn scores_json(scores: &Scores) -> serde_json::Value {
    scores
        .iter()
        .map(|(s, p, b)| json!({"scale": s, "psnr_y": p, "bicubic_psnr_y": b}))
        .collect()
}

pub(super) fn validation_json(v: &Validation) -> serde_json::Value {
    let mut line = json!({"step": v.step, "validation": scores_json(&v.scores)});
    if let Some(s) = &v.structured {
        line["structured_validation"] = scores_json(s);
    }
    line
}
