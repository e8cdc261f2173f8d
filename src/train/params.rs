//! The parameters of a run: their initialisation, the weights it scores and exports, and its
//! weight average.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor, Var};

use super::adam::Adam;
use super::average::WeightAverage;
use super::report::Reporter;
use super::rng::Rng;
use crate::names::{self, BIAS, INPUT_SKIP, SCALE_EMBED, UPSAMPLER};
use crate::weights::{self, Tensors};
use crate::{Error, Result};

/// The weight average a checkpoint carries.
pub(super) struct SavedAverage {
    pub(super) decay: f64,
    pub(super) updates: u64,
    pub(super) tensors: Tensors,
}

/// PyTorch's default initialisation of `nn.Conv2d` (the authors' models), from `rng`: weights
/// uniform in ±1/√fan_in (`kaiming_uniform_(a=√5)`), biases uniform in ±1/√fan_in of their
/// layer's weight. Variables in name order.
pub(super) fn init_parameters(
    vars: &[(String, Var)],
    rng: &mut Rng,
    device: &Device,
) -> Result<()> {
    let dims: HashMap<&str, Vec<usize>> = vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.dims().to_vec()))
        .collect();
    let fan_in = |d: &[usize]| d.iter().skip(1).product::<usize>().max(1);
    let has_skip = dims.contains_key(INPUT_SKIP);
    let upsampler = [names::weight(UPSAMPLER), names::bias(UPSAMPLER)];
    for (name, var) in vars {
        let fan = match name.rsplit_once('.') {
            Some((layer, BIAS)) => dims
                .get(names::weight(layer).as_str())
                .map(|d| fan_in(d))
                .unwrap_or(1),
            _ => fan_in(var.dims()),
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
            n if has_skip && upsampler.iter().any(|u| u == n) => vec![0.0; values.len()],
            _ => values,
        };
        let t = Tensor::from_vec(values, var.dims(), &Device::Cpu)?.to_device(device)?;
        var.set(&t)?;
    }
    Ok(())
}

/// Copies every tensor of `src` whose name and shape match a variable; returns their names.
pub(super) fn copy_matching(
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
pub(super) fn scored_weights(adam: &Adam, average: Option<&WeightAverage>) -> Result<Tensors> {
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
pub(super) fn start_average(
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
