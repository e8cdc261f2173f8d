//! Our CUDA executor (issue 43): the network as fused steps, run by our own kernels
//! (`kernels.cu`, compiled by NVRTC when it opens), built and tested without a GPU.
//!
//! - [`schedule`]: a network of the family as a flat list of fused steps over named NHWC
//!   buffers read and written through channel-offset views (the IMDB's split and concatenation
//!   are views, never copies; CCA is one reduction, one tiny attention step and a scale folded
//!   into c5's input; the pixel shuffle is folded into the upsampler's write; bias, activation
//!   and residual are each conv's epilogue), and the buffers' sizes per frame size.
//! - [`pack`]: the weights packed once into the GPU layout (KRSC, channels padded to 8), in
//!   f32 and f16, and back.
//! - [`reference`](mod@reference): the schedule executed on the CPU in plain loops, on buffers
//!   allocated once per frame size: the specification the kernels are checked against
//!   (`tests/cuda_schedule.rs` checks it against candle's networks).
//! - [`args`]: each step as a launch of a kernel of `kernels.cu` (f32 convs direct, f16 convs
//!   on tensor cores; the statistics, the attention, the frames' layout), with its argument
//!   struct; and the element's frame conversions (Y'CbCr, gray and packed R'G'B', both ways)
//!   as kernels.
//! - [`executor`]: the launches per frame size on a [`executor::Gpu`], recorded as one graph;
//!   `device` (feature `cuda`): that `Gpu` on CUDA, and [`CudaNet`] behind `Upscaler`.
//!
//! `host_shim.h` stands in for CUDA's built-ins so that `kernels.cu` also compiles for the
//! host: `tests/cuda_kernels.rs` runs the executor's launches there against the reference
//! (a warp's lanes as fibers for the tensor-core products), and the element's
//! `pixels/gpu_conversions.rs` runs the conversions against its own CPU code.
//!
//! Not yet run on a GPU.

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

    pub fn forward_framed_into(
        &self,
        _: &[f32],
        _: crate::acs::Framing,
        _: (usize, usize),
        _: Option<f32>,
        _: &mut Vec<f32>,
    ) -> crate::Result<()> {
        match *self {}
    }

    pub fn run_raw(
        &self,
        _: (crate::acs::Nhw, crate::acs::Framing),
        _: executor::RawFrame,
        _: impl FnOnce(&executor::RawAddresses, &mut executor::Conversions) -> crate::Result<()>,
    ) -> crate::Result<()> {
        match *self {}
    }

    pub fn submit_raw(
        &self,
        _: (crate::acs::Nhw, crate::acs::Framing),
        _: executor::RawInput,
        _: impl FnOnce(&executor::RawAddresses, &mut executor::Conversions) -> crate::Result<()>,
    ) -> crate::Result<()> {
        match *self {}
    }

    pub fn finish_raw(&self, _: &mut [&mut [u8]]) -> crate::Result<()> {
        match *self {}
    }

    pub fn device_bytes(&self) -> crate::Result<usize> {
        match *self {}
    }

    pub fn replays_a_graph(&self) -> crate::Result<bool> {
        match *self {}
    }
}
