//! candle ops on our CPU kernels with hand-written backwards, which the model's layers use for
//! training on the CPU ([`autograd`]: conv and LeakyReLU; [`block_ops`]: the distillation
//! block's stages as single ops), and the choice of them ([`Ops`]) a network is built with.

pub mod autograd;
pub mod block_ops;

use crate::kernels::Kernels;

/// Which ops a network's layers run on f32 CPU tensors (elsewhere always candle's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ops {
    /// candle's own conv2d and elementwise ops.
    Candle,
    /// Ours: the default.
    Ours(Ours),
}

/// The settings of our ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ours {
    /// The distillation block's stages as single ops (else as their separate ops).
    pub fused: bool,
    /// The conv kernels.
    pub kernels: Kernels,
}

impl Default for Ours {
    fn default() -> Self {
        Self {
            fused: true,
            kernels: Kernels::default(),
        }
    }
}

impl Default for Ops {
    fn default() -> Self {
        Ops::Ours(Ours::default())
    }
}

impl Ops {
    /// Our ops' settings if `x` runs on them: f32 on the CPU, and these ops are ours.
    pub fn ours_for(self, x: &candle_core::Tensor) -> Option<Ours> {
        match self {
            Ops::Ours(o) if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 => Some(o),
            _ => None,
        }
    }
}
