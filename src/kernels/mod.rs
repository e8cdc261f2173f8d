//! Our CPU convolution kernels on zero-bordered planar activations, used by the executor
//! ([`crate::cpu`]) and by the training ops ([`crate::ops`]).
//!
//! - [`types`]: the plane layout and what every kernel shares (parameters, outputs);
//! - [`simd`]: the AVX2 + FMA GEMM micro-kernel and row store; [`transform`]: Winograd's Bᵀ;
//! - the kernels, each depending on those and not on each other: [`conv`] (im2col + GEMM,
//!   stride 1 and 2, and the im2col weight gradient), [`winograd`] (F(2×2, 3×3)),
//!   [`winograd4`] (F(4×4, 3×3)), [`winograd_dw`] (the Winograd weight gradient);
//! - [`rowconv`] (on [`lanes`] and [`rows`]): 3×3 by F(4×4, 3×3) and 1×1 convs on four rows
//!   at a time, for the streaming executor;
//! - [`plan`]: which kernel runs a conv ([`Kernels`], a value chosen when a network is built)
//!   and the entry points that run it.
//!
//! The 3×3 convs with 8 or more input channels run by Winograd (16 multiply-adds per 2×2
//! output tile and channel pair instead of 36; from 32 channels 36 per 4×4 tile instead of
//! 144), the others by im2col with `memcpy` on the bordered planes; both write straight into
//! the output with bias, residual and LeakyReLU fused.

pub mod conv;
pub mod int8;
pub mod lanes;
pub mod plan;
pub mod rowconv;
pub mod rows;
pub mod simd;
pub mod transform;
pub mod types;
pub mod winograd;
pub mod winograd4;
pub mod winograd_dw;
mod winograd_job;

pub use plan::Kernels;
