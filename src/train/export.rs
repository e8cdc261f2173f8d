//! The exported weights and the model card in their metadata.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;

use super::checkpoint::{self, State};
use super::data::Dataset;
use crate::Result;
use crate::model::Variant;
use crate::weights::{self, Tensors};

/// Writes `weights` alone, with a model card in the metadata.
pub(super) fn export_weights(
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
