//! Weights files: safetensors and PyTorch checkpoints (legacy pre-1.6 and zip format).
//!
//! [`load`] recognises the format from the file's first bytes, whatever its extension, and
//! returns every floating-point tensor as f32 on the CPU. Integer and boolean tensors (such as
//! BatchNorm's `num_batches_tracked`) are not parameters and are left out. A `module.` prefix
//! (left by `nn.DataParallel`) is stripped from every name.
//!
//! Malformed files give a [`WeightsError`] naming the file, never a panic: the legacy reader is
//! ours and works on bounds-checked slices; the zip reader is candle's and runs behind
//! `catch_unwind`, because it can panic on malformed input.

mod cursor;
mod legacy;
mod pickle;
pub mod shipped;
mod sniff;
mod st;
mod torch_zip;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use crate::names::{
    CHECKPOINT_ADAM_M, CHECKPOINT_ADAM_V, CHECKPOINT_EMA, CHECKPOINT_PARAM, DATA_PARALLEL, under,
};

pub use sniff::Format;

/// Parameter name → tensor (f32, on the CPU), names as in the authors' state dicts,
/// with any `module.` prefix stripped.
pub type Tensors = HashMap<String, Tensor>;

/// Why a weights file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Malformed contents: the structure is wrong, not merely cut short.
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
    /// The file could not be opened, read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Neither safetensors nor a PyTorch checkpoint (an image, a text file, an empty file...).
    #[error("{}: not a weights file ({what}); expected safetensors or a PyTorch checkpoint", path.display())]
    UnknownFormat { path: PathBuf, what: String },
    /// The file ends before the data its own headers announce.
    #[error("{}: truncated: {what}", path.display())]
    Truncated { path: PathBuf, what: String },
    /// Well-formed, but uses a feature this reader does not handle (big-endian, odd dtypes...).
    #[error("{}: unsupported: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    /// The safetensors crate refused the file or the tensors to save.
    #[error("{}: safetensors: {source}", path.display())]
    Safetensors {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// candle failed while reading a PyTorch zip checkpoint or converting a tensor.
    #[error("{}: {context}: {source}", path.display())]
    Candle {
        path: PathBuf,
        context: String,
        /// Boxed: candle's error is large, and this one travels in every `Result`.
        #[source]
        source: Box<candle_core::Error>,
    },
    /// A parser panicked on this file; the panic was caught and turned into this error.
    #[error("{}: the file is malformed (the reader panicked: {msg})", path.display())]
    Panicked { path: PathBuf, msg: String },
    /// The file parsed, but holds no floating-point tensor.
    #[error("{}: no floating-point tensors found", path.display())]
    Empty { path: PathBuf },
    /// Two entries give the same name once the `module.` prefix is stripped.
    #[error("{}: duplicate tensor name {name:?} (after stripping `module.`)", path.display())]
    DuplicateName { path: PathBuf, name: String },
}

impl WeightsError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Invalid { path, .. }
            | Self::Io { path, .. }
            | Self::UnknownFormat { path, .. }
            | Self::Truncated { path, .. }
            | Self::Unsupported { path, .. }
            | Self::Safetensors { path, .. }
            | Self::Candle { path, .. }
            | Self::Panicked { path, .. }
            | Self::Empty { path }
            | Self::DuplicateName { path, .. } => path,
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn candle(path: &Path, context: impl Into<String>, source: candle_core::Error) -> Self {
        Self::Candle {
            path: path.to_owned(),
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// A problem found by the in-memory parsers, which do not know the file's path;
/// [`Problem::at`] attaches it.
#[derive(Debug)]
pub(crate) enum Problem {
    Truncated(String),
    Invalid(String),
    Unsupported(String),
}

impl Problem {
    /// Prefixes the message with where in the file the problem was found.
    pub(crate) fn context(self, what: &str) -> Self {
        match self {
            Self::Truncated(m) => Self::Truncated(format!("{what}: {m}")),
            Self::Invalid(m) => Self::Invalid(format!("{what}: {m}")),
            Self::Unsupported(m) => Self::Unsupported(format!("{what}: {m}")),
        }
    }

    pub(crate) fn at(self, path: &Path) -> WeightsError {
        let path = path.to_owned();
        match self {
            Self::Truncated(what) => WeightsError::Truncated { path, what },
            Self::Invalid(msg) => WeightsError::Invalid { path, msg },
            Self::Unsupported(what) => WeightsError::Unsupported { path, what },
        }
    }
}

/// Loads a network's parameters from a safetensors file, a PyTorch checkpoint (legacy or zip
/// format) or an `imdn train` checkpoint: every floating-point tensor as f32 on the CPU,
/// `module.` prefixes stripped (a training checkpoint: its weights, renamed; see `checkpoint_parameters`).
pub fn load(path: &Path) -> Result<Tensors, WeightsError> {
    let tensors = checkpoint_parameters(load_all(path)?);
    if tensors.is_empty() {
        return Err(WeightsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tensors)
}

/// Every floating-point tensor of the file as stored (a training checkpoint's Adam moments
/// included), names as in [`load`].
pub fn load_all(path: &Path) -> Result<Tensors, WeightsError> {
    let named = catching_panics(path, || load_named(path))?;
    let tensors = into_tensors(path, named)?;
    if tensors.is_empty() {
        return Err(WeightsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tensors)
}

/// A training checkpoint of `imdn train` holds `param.<name>` plus Adam's `adam_m.`/`adam_v.`
/// moments and, if the run keeps one, a weight average `ema.<name>`: its weights alone (the
/// average where there is one: what the run validates and exports), under their own names, so
/// checkpoints evaluate and run as weights. Any other set of tensors is returned as it is.
fn checkpoint_parameters(tensors: Tensors) -> Tensors {
    let is_checkpoint = !tensors.is_empty()
        && tensors.keys().all(|k| {
            [
                CHECKPOINT_PARAM,
                CHECKPOINT_ADAM_M,
                CHECKPOINT_ADAM_V,
                CHECKPOINT_EMA,
            ]
            .iter()
            .any(|p| under(p, k).is_some())
        });
    if !is_checkpoint {
        return tensors;
    }
    let prefix = if tensors.keys().any(|k| under(CHECKPOINT_EMA, k).is_some()) {
        CHECKPOINT_EMA
    } else {
        CHECKPOINT_PARAM
    };
    tensors
        .into_iter()
        .filter_map(|(k, v)| under(prefix, &k).map(|n| (n.to_string(), v)))
        .collect()
}

/// Which format `path` holds, judged from its first bytes.
pub fn detect_format(path: &Path) -> Result<Format, WeightsError> {
    let head = sniff::read_head(path)?;
    sniff::detect(path, &head)
}

/// Writes `tensors` as f32 safetensors, names sorted so the same tensors give the same bytes.
/// The file is written next to `path` and renamed into place, so a failed save never leaves
/// a half-written file under `path`.
pub fn save_safetensors(tensors: &Tensors, path: &Path) -> Result<(), WeightsError> {
    st::save(tensors, None, path)
}

/// As [`save_safetensors`], with string metadata (a model card: variant, scale, licence...)
/// stored in the header's `__metadata__`.
pub fn save_safetensors_with_metadata(
    tensors: &Tensors,
    metadata: &HashMap<String, String>,
    path: &Path,
) -> Result<(), WeightsError> {
    st::save(tensors, Some(metadata), path)
}

/// The `__metadata__` map of a safetensors file (empty when it has none). PyTorch checkpoints
/// carry no such map: they give an empty one. Only the header is read.
pub fn load_metadata(path: &Path) -> Result<HashMap<String, String>, WeightsError> {
    match detect_format(path)? {
        Format::Safetensors => st::load_metadata(path),
        Format::TorchLegacy | Format::TorchZip => Ok(HashMap::new()),
    }
}

fn load_named(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    match detect_format(path)? {
        Format::Safetensors => st::load(path),
        Format::TorchLegacy => legacy::load(path),
        Format::TorchZip => torch_zip::load(path),
    }
}

/// Runs a parser, turning a panic into [`WeightsError::Panicked`]: third-party parsers
/// (candle's pickle reader, the zip crate) index and shift on values read from the file.
pub(crate) fn catching_panics<T>(
    path: &Path,
    parse: impl FnOnce() -> Result<T, WeightsError>,
) -> Result<T, WeightsError> {
    catch_unwind(AssertUnwindSafe(parse)).unwrap_or_else(|payload| {
        Err(WeightsError::Panicked {
            path: path.to_owned(),
            msg: crate::panics::message(payload.as_ref()),
        })
    })
}

/// Strips the `module.` prefixes `nn.DataParallel` adds (repeatedly, for nested wrappers).
pub fn strip_module_prefix(name: &str) -> &str {
    let mut name = name;
    while let Some(rest) = under(DATA_PARALLEL, name) {
        name = rest;
    }
    name
}

fn into_tensors(path: &Path, named: Vec<(String, Tensor)>) -> Result<Tensors, WeightsError> {
    let mut tensors = Tensors::with_capacity(named.len());
    for (name, tensor) in named {
        let name = strip_module_prefix(&name).to_owned();
        if tensors.contains_key(&name) {
            return Err(WeightsError::DuplicateName {
                path: path.to_owned(),
                name,
            });
        }
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

/// Total number of elements over all tensors but the 8-bit calibration (the model's parameter
/// count).
pub fn parameter_count(tensors: &Tensors) -> usize {
    tensors
        .iter()
        .filter(|(name, _)| crate::names::under(crate::names::INT8, name).is_none())
        .map(|(_, t)| t.elem_count())
        .sum()
}
