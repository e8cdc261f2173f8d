//! The training loss. L1 is the paper's. L2 (the mean squared error) is for a last fine-tuning
//! stage: PSNR measures squared error, and a model trained on L1 settles where the mean
//! absolute error is least, which is not quite where the squared error is.

use candle_core::{Result, Tensor};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    /// Mean absolute error.
    #[default]
    L1,
    /// Mean squared error.
    L2,
}

impl Loss {
    /// The loss of `pred` against `target`, a scalar averaged over every element.
    pub fn of(self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        let diff = (pred - target)?;
        match self {
            Loss::L1 => diff.abs()?.mean_all(),
            Loss::L2 => diff.sqr()?.mean_all(),
        }
    }

    /// The name on the command line and in checkpoints.
    pub fn key(self) -> &'static str {
        match self {
            Loss::L1 => "l1",
            Loss::L2 => "l2",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "l1" => Some(Loss::L1),
            "l2" => Some(Loss::L2),
            _ => None,
        }
    }

    /// The name in an exported model's metadata.
    pub fn describe(self) -> &'static str {
        match self {
            Loss::L1 => "L1",
            Loss::L2 => "L2 (mean squared error)",
        }
    }
}
