//! IMDN super-resolution (Hui et al., "Lightweight Image Super-Resolution with Information
//! Multi-distillation Network", ACM MM 2019) on candle.
//!
//! - [`model`]: IMDN ×2/×3/×4, IMDN_RTC, IMDN_AS as candle modules with the authors' parameter names.
//! - [`names`]: those parameter names (the authors' state-dict paths), each spelled once (a leaf).
//! - [`weights`]: safetensors and PyTorch (legacy and zip) checkpoints, variant detection.
//! - [`acs`]: the adaptive cropping strategy: padding and overlapping tiles for any frame size.
//! - [`kernels`]: our CPU convolution kernels (im2col, Winograd F(2×2, 3×3) and F(4×4, 3×3),
//!   AVX2) and the choice among them.
//! - [`ops`]: candle ops on those kernels with fast backwards, for training on the CPU.
//! - [`cpu`]: our CPU executor: the networks on our kernels (the fast CPU path).
//! - [`cuda`]: the CUDA executor's device-independent part (schedule, packing, CPU reference).
//! - [`image_ops`]: u8 ↔ f32, BT.601 Y, MATLAB-style bicubic `imresize`.
//! - [`compare`]: bicubic and the network side by side, with an enlarged crop of the most detail.
//! - [`metrics`]: PSNR and SSIM on Y, as the authors' evaluation protocol computes them.
//! - [`eval`]: scoring on a benchmark folder under the authors' protocol.
//! - [`engine`]: a loaded model ready to upscale frames.
//! - [`temporal`]: how steady a clip is over time (the flicker figures).
//! - [`train`]: training: L1 loss, Adam, resumable checkpoints, validation PSNR.
//! - [`variant`]: the networks of the family by name (a leaf: everyone may name one).

pub mod acs;
pub mod compare;
pub mod cpu;
pub mod cuda;
pub mod engine;
pub mod error;
pub mod eval;
pub mod image_ops;
pub mod kernels;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod names;
pub mod ops;
pub mod panics;
pub mod temporal;
pub mod train;
pub mod variant;
pub mod weights;

pub use error::{Error, Result};

// The modules depend on each other without a cycle (kernels ← ops ← model ← cpu ← engine):
// tests/module_graph.rs checks it.
