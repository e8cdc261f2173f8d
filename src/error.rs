//! The library's error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
    #[error("{0}")]
    Model(String),
    #[error("device: {0}")]
    Device(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A frame would need more memory than the machine has free; refused before allocating,
    /// because a failed allocation aborts the process.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("cannot read image {path}: {source}")]
    Image {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
