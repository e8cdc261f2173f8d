//! `imdn convert`: weights or an `imdn train` checkpoint to safetensors.

use std::path::Path;

use anyhow::Result;

use imdn::model::Config;
use imdn::weights;
use imdn::weights::parameter_count;

/// Writes `input` (weights, or a training checkpoint with its model card) as safetensors.
pub fn convert(input: &Path, output: &Path) -> Result<()> {
    let is_checkpoint = weights::load_metadata(input)
        .is_ok_and(|m| m.contains_key(imdn::train::checkpoint::STATE_KEY));
    let tensors = if is_checkpoint {
        imdn::train::export_checkpoint(input, output)?
    } else {
        let tensors = weights::load(input)?;
        weights::save_safetensors(&tensors, output)?;
        tensors
    };
    let described = match Config::detect(&tensors) {
        Ok(c) => c.to_string(),
        Err(e) => format!("not a known IMDN variant ({e})"),
    };
    eprintln!(
        "{} → {}: {} tensors, {} parameters, {described}",
        input.display(),
        output.display(),
        tensors.len(),
        parameter_count(&tensors)
    );
    Ok(())
}
