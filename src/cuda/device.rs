//! Our executor on CUDA (feature `cuda`): the [`Gpu`] of candle's device (its context and
//! stream), with `kernels.cu` compiled by NVRTC for the device's architecture when it opens,
//! and [`CudaNet`], the network on it behind ACS's planar f32 interface.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::cuda_backend::cudarc::driver::sys::{
    CUgraphInstantiate_flags, CUstreamCaptureMode,
};
use candle_core::cuda_backend::cudarc::driver::{
    CudaEvent, CudaFunction, CudaGraph, CudaSlice, CudaStream, DevicePtr, DeviceRepr, DriverError,
    LaunchConfig, PinnedHostSlice, PushKernelArg,
};
use candle_core::cuda_backend::cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use super::args::{
    Args, AttentionArgs, ConvArgs, FramesArgs, KERNELS, Launch, PackedArgs, StatsArgs, Storage,
    YuvInArgs, YuvOutArgs,
};
use super::executor::{Conversions, Executor, Gpu, Lane, RawAddresses, RawFrame, RawInput};
use super::schedule::Schedule;
use crate::acs::{Framing, Nhw};
use crate::model::Config;
use crate::weights::Tensors;
use crate::{Error, Result};

// SAFETY: plain `repr(C)` structs of integers, floats and device addresses, passed by value
unsafe impl DeviceRepr for ConvArgs {}
unsafe impl DeviceRepr for StatsArgs {}
unsafe impl DeviceRepr for AttentionArgs {}
unsafe impl DeviceRepr for FramesArgs {}
unsafe impl DeviceRepr for YuvInArgs {}
unsafe impl DeviceRepr for YuvOutArgs {}
unsafe impl DeviceRepr for PackedArgs {}

fn cuda<T>(r: std::result::Result<T, DriverError>) -> Result<T> {
    r.map_err(|e| Error::Model(format!("CUDA: {e}")))
}

/// Stream capture that records only this thread's launches.
const CAPTURE_THIS_THREAD: CUstreamCaptureMode =
    CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;

/// A recorded CUDA graph that may move between threads: the element builds its network on
/// one thread and runs it there, but `Backend` is `Send`. cudarc leaves `CudaGraph` `!Send`
/// for its raw handles; the driver's graph handles are not tied to a thread, and cudarc binds
/// the graph's context to the calling thread when it launches or drops one, as it does for
/// the `Send` stream the graph was captured on.
pub struct Graph(CudaGraph);

// SAFETY: see above; `CudaNet` uses it under its lock, one thread at a time
unsafe impl Send for Graph {}

/// Streams of our own on a CUDA device, one a [`Lane`] (candle's may be the legacy default
/// stream, which cannot be captured into a graph), and our kernels.
pub struct CudaGpu {
    /// The compute lane's.
    stream: Arc<CudaStream>,
    up: Arc<CudaStream>,
    down: Arc<CudaStream>,
    functions: HashMap<&'static str, CudaFunction>,
}

/// Page-locked host memory, so copies run while the host goes on: `len` bytes of `slice`
/// (which holds at least one).
pub struct Pinned {
    slice: PinnedHostSlice<u8>,
    len: usize,
}

impl CudaGpu {
    fn lane(&self, lane: Lane) -> &Arc<CudaStream> {
        match lane {
            Lane::Up => &self.up,
            Lane::Compute => &self.stream,
            Lane::Down => &self.down,
        }
    }
}

impl CudaGpu {
    /// Compiles and loads the kernels on candle's CUDA `device`.
    pub fn new(device: &candle_core::Device) -> Result<Self> {
        let ctx = device.as_cuda_device()?.cuda_stream().context().clone();
        let stream = cuda(ctx.new_stream())?;
        let (up, down) = (cuda(ctx.new_stream())?, cuda(ctx.new_stream())?);
        let (major, minor) = cuda(ctx.compute_capability())?;
        let options = CompileOptions {
            options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(include_str!("kernels.cu"), options)
            .map_err(|e| Error::Model(format!("compiling kernels.cu: {e}")))?;
        let module = cuda(ctx.load_module(ptx))?;
        let functions = KERNELS
            .iter()
            .map(|&name| Ok((name, cuda(module.load_function(name))?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            stream,
            up,
            down,
            functions,
        })
    }
}

impl Gpu for CudaGpu {
    type Memory = CudaSlice<u8>;

    fn alloc(&self, bytes: usize) -> Result<CudaSlice<u8>> {
        cuda(self.stream.alloc_zeros::<u8>(bytes.max(1)))
    }

    fn address(&self, m: &CudaSlice<u8>) -> u64 {
        let (at, _sync) = m.device_ptr(&self.stream);
        at
    }

    fn upload(&self, m: &mut CudaSlice<u8>, bytes: &[u8]) -> Result<()> {
        cuda(
            self.stream
                .memcpy_htod(bytes, &mut m.slice_mut(..bytes.len())),
        )
    }

    fn download(&self, m: &CudaSlice<u8>, out: &mut [u8]) -> Result<()> {
        cuda(self.stream.memcpy_dtoh(&m.slice(..out.len()), out))
    }

    fn launch(&self, l: &Launch) -> Result<()> {
        let f = self
            .functions
            .get(l.kernel)
            .ok_or_else(|| Error::Model(format!("no kernel {}", l.kernel)))?;
        let config = LaunchConfig {
            grid_dim: (l.grid, 1, 1),
            block_dim: (l.block, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = self.stream.launch_builder(f);
        match &l.args {
            Args::Conv(a) => b.arg(a),
            Args::Stats(a) => b.arg(a),
            Args::Attention(a) => b.arg(a),
            Args::Frames(a) => b.arg(a),
            Args::YuvIn(a) => b.arg(a),
            Args::YuvOut(a) => b.arg(a),
            Args::Packed(a) => b.arg(a),
        };
        // SAFETY: the argument is the kernel's struct (args.rs), its addresses the executor's
        // live allocations
        cuda(unsafe { b.launch(config) }.map(drop))
    }

    fn synchronize(&self) -> Result<()> {
        [&self.up, &self.stream, &self.down]
            .into_iter()
            .try_for_each(|s| cuda(s.synchronize()))
    }

    type Graph = Graph;

    fn record(&self, launches: &[Launch]) -> Result<Option<Graph>> {
        cuda(self.stream.begin_capture(CAPTURE_THIS_THREAD))?;
        let launched = launches.iter().try_for_each(|l| self.launch(l));
        // the capture ends whatever happened, or the stream stays capturing
        let graph = self.stream.end_capture(CUgraphInstantiate_flags(0));
        launched?;
        Ok(cuda(graph)?.map(Graph))
    }

    fn replay(&self, graph: &Graph) -> Result<()> {
        cuda(graph.0.launch())
    }

    type Staging = Pinned;

    fn alloc_staging(&self, bytes: usize) -> Result<Pinned> {
        // SAFETY: page-locked bytes, any value valid; zeroed below before any use
        let mut slice = cuda(unsafe { self.stream.context().alloc_pinned::<u8>(bytes.max(1)) })?;
        cuda(slice.as_mut_slice())?.fill(0);
        Ok(Pinned { slice, len: bytes })
    }

    fn staging<'s>(&self, s: &'s mut Pinned) -> Result<&'s mut [u8]> {
        // waits for the copies queued on it (the slice's event)
        Ok(&mut cuda(s.slice.as_mut_slice())?[..s.len])
    }

    fn upload_staged(&self, m: &mut CudaSlice<u8>, s: &mut Pinned) -> Result<()> {
        let len = s.slice.len();
        cuda(self.up.memcpy_htod(&s.slice, &mut m.slice_mut(..len)))
    }

    fn download_staged(&self, m: &CudaSlice<u8>, s: &mut Pinned) -> Result<()> {
        let len = s.slice.len();
        cuda(self.down.memcpy_dtoh(&m.slice(..len), &mut s.slice))
    }

    type Event = CudaEvent;

    fn record_event(&self, lane: Lane) -> Result<CudaEvent> {
        cuda(self.lane(lane).record_event(None))
    }

    fn wait_event(&self, lane: Lane, event: &CudaEvent) -> Result<()> {
        cuda(self.lane(lane).wait(event))
    }
}

/// The network on our CUDA executor, frames in and out as planar f32 on the host.
pub struct CudaNet {
    /// The executor and the frames' scale codes (kept between calls), under one lock.
    state: Mutex<(Executor<CudaGpu>, Vec<f32>)>,
}

impl CudaNet {
    /// The network of `tensors` on candle's CUDA `device`, activations in `storage`.
    pub fn open(
        config: &Config,
        tensors: &Tensors,
        device: &candle_core::Device,
        storage: Storage,
    ) -> Result<Self> {
        let schedule = Schedule::new(config, tensors)?;
        let executor = Executor::new(CudaGpu::new(device)?, schedule, storage)?;
        Ok(Self {
            state: Mutex::new((executor, Vec::new())),
        })
    }

    fn state(&self) -> Result<MutexGuard<'_, (Executor<CudaGpu>, Vec<f32>)>> {
        self.state
            .lock()
            .map_err(|_| Error::Model("the CUDA executor failed in an earlier frame".into()))
    }

    /// `n` planar RGB frames of `h`×`w` with the scale `code` (IMDN_AS with a scale input)
    /// into `out`, planar at `net_scale ×` the size.
    pub fn forward_at_into(
        &self,
        input: &[f32],
        (n, h, w): Nhw,
        code: Option<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.run_framed(input, ((n, h, w), Framing::whole((h, w))), code, out)
    }

    /// One planar frame placed by `framing` in the network's `(nh, nw)` frame, padded and
    /// cropped on the device ([`Executor::run_framed`]), into `out`.
    pub fn forward_framed_into(
        &self,
        input: &[f32],
        framing: Framing,
        (nh, nw): (usize, usize),
        code: Option<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.run_framed(input, ((1, nh, nw), framing), code, out)
    }

    /// [`Executor::run_framed`] with every frame's scale code `code`.
    fn run_framed(
        &self,
        input: &[f32],
        at: (Nhw, Framing),
        code: Option<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let mut state = self.state()?;
        let (executor, codes) = &mut *state;
        codes.clear();
        codes.resize(at.0.0, code.unwrap_or(0.0));
        executor.run_framed(input, at, code.map(|_| codes.as_slice()), out)
    }

    /// A frame as bytes converted on the device ([`Executor::run_raw`]), its place in the
    /// network's frames from [`crate::engine::Upscaler::raw_framing`].
    pub fn run_raw(
        &self,
        at: (Nhw, Framing),
        frame: RawFrame,
        convert: impl FnOnce(&RawAddresses, &mut Conversions) -> Result<()>,
    ) -> Result<()> {
        // IMDN_AS never comes here (the upscaler resamples it on the host first)
        self.state()?.0.run_raw(at, None, frame, convert)
    }

    /// A frame as bytes queued on the device ([`Executor::submit_raw`]): the planes go up
    /// while an earlier frame computes; [`CudaNet::finish_raw`] collects the oldest.
    pub fn submit_raw(
        &self,
        at: (Nhw, Framing),
        input: RawInput,
        convert: impl FnOnce(&RawAddresses, &mut Conversions) -> Result<()>,
    ) -> Result<()> {
        self.state()?.0.submit_raw(at, None, input, convert)
    }

    /// The oldest frame in flight, waited for, into `outputs` ([`Executor::finish_raw`]).
    pub fn finish_raw(&self, outputs: &mut [&mut [u8]]) -> Result<()> {
        self.state()?.0.finish_raw(outputs)
    }

    /// Device memory the executor holds (weights and the last frame size's buffers).
    pub fn device_bytes(&self) -> Result<usize> {
        Ok(self.state()?.0.device_bytes())
    }

    /// Whether the last frame size's launches replay as one CUDA graph.
    pub fn replays_a_graph(&self) -> Result<bool> {
        Ok(self.state()?.0.replays_a_graph())
    }

    /// The network again on the frames last run, waited for: its time alone.
    pub fn rerun(&self) -> Result<()> {
        self.state()?.0.rerun()
    }
}
