//! The CUDA executor's device-independent foundation (issue 43): what the GPU will run,
//! built and tested without a GPU (and without the `cuda` feature).
//!
//! - [`schedule`]: a network of the family as a flat list of fused steps over named NHWC
//!   buffers read and written through channel-offset views (the IMDB's split and concatenation
//!   are views, never copies; CCA is one reduction, one tiny attention step and a scale folded
//!   into c5's input; the pixel shuffle is folded into the upsampler's write; bias, activation
//!   and residual are each conv's epilogue), and the buffers' sizes per frame size.
//! - [`pack`]: the weights packed once into the GPU layout (KRSC, channels padded to 8), in
//!   f32 and f16, and back.
//! - [`reference`](mod@reference): the schedule executed on the CPU in plain loops, on buffers allocated once
//!   per frame size: the specification the kernels will be checked against
//!   (`tests/cuda_schedule.rs` checks it against candle's networks).
//! - [`args`]: each step as a launch of a kernel of `kernels.cu` (the direct kernels: f32
//!   arithmetic, activations in f32 or f16), with its argument struct; `tests/cuda_kernels.rs`
//!   runs those launches on the CPU, `kernels.cu` compiled for the host with `host_shim.h`,
//!   against the reference.
//!
//! What waits for a GPU: running the kernels there (compiled by NVRTC), the tensor-core convs
//! that replace the direct ones (implicit GEMM with these epilogues, or cuDNN/cuBLASLt), the
//! device buffers of the plan, the per-(size, precision)
//! CUDA graph of the steps, the upload/compute/download streams, and `Upscaler` using it on
//! `Device::Cuda`.

pub mod args;
#[cfg(feature = "cuda")]
pub mod device;
pub mod executor;
pub mod pack;
pub mod reference;
pub mod schedule;

pub use pack::{ConvShape, PackedConv};
pub use reference::Reference;
pub use schedule::{BufferPlan, Schedule, Step, View};

#[cfg(feature = "cuda")]
pub use device::CudaNet;

/// Our executor on CUDA ([`device`](self)'s, with the `cuda` feature); without it there is
/// no CUDA device, and no value of this type.
#[cfg(not(feature = "cuda"))]
pub enum CudaNet {}

#[cfg(not(feature = "cuda"))]
impl CudaNet {
    pub fn open(
        _: &crate::model::Config,
        _: &crate::weights::Tensors,
        _: &candle_core::Device,
        _: args::Storage,
    ) -> crate::Result<Self> {
        Err(crate::Error::InvalidInput(
            "our CUDA executor needs a build with the `cuda` feature".into(),
        ))
    }

    pub fn forward_at_into(
        &self,
        _: &[f32],
        _: (usize, usize, usize),
        _: Option<f32>,
        _: &mut Vec<f32>,
    ) -> crate::Result<()> {
        match *self {}
    }

    pub fn rerun(&self) -> crate::Result<()> {
        match *self {}
    }

    pub fn device_bytes(&self) -> usize {
        match *self {}
    }
}
