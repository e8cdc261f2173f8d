//! Runs a [`Schedule`] on a device behind the [`Gpu`] trait: the weights uploaded once, the
//! buffers allocated and the launches ([`args::launches`]) built once per frame size, then per
//! batch of frames: the planar f32 frames uploaded as they are, made NHWC (and f16) on the
//! device, every step launched (recorded once per size as one graph where the device can),
//! the output made planar f32 on the device and downloaded.
//!
//! [`Gpu`] is CUDA through cudarc (`super::device`, feature `cuda`) in the product, and in
//! the tests the host running `kernels.cu` compiled for the CPU (`tests/cuda_kernels.rs`).

use half::f16;

use super::args::{self, Addresses, Launch, Storage};
use super::schedule::{BufferPlan, Grid, Schedule, Step};
use crate::acs::Framing;
use crate::{Error, Result};

/// The device's three queues: frames up, the network, frames down. Work on one lane runs in
/// the order it was queued; across lanes only as events order it, so frame k+1 goes up and
/// frame k−1 comes down while frame k computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Up,
    Compute,
    Down,
}

/// What the executor needs of a device: memory and launches, in stream order. Everything but
/// the staged copies and the events runs on the compute lane.
pub trait Gpu {
    /// A device allocation, freed when dropped.
    type Memory;
    /// `bytes` of zeroed memory.
    fn alloc(&self, bytes: usize) -> Result<Self::Memory>;
    /// The allocation's first byte, as the kernels address it.
    fn address(&self, m: &Self::Memory) -> u64;
    /// Copies `bytes` to the start of `m`.
    fn upload(&self, m: &mut Self::Memory, bytes: &[u8]) -> Result<()>;
    /// Copies the start of `m` into `out`, after every launch before it.
    fn download(&self, m: &Self::Memory, out: &mut [u8]) -> Result<()>;
    fn launch(&self, l: &Launch) -> Result<()>;
    /// Waits for everything queued, on every lane.
    fn synchronize(&self) -> Result<()>;
    /// Launches recorded once to replay as one (a CUDA graph: no launch costs per kernel).
    type Graph;
    /// `launches` recorded, not run; `None` where the device records none.
    fn record(&self, launches: &[Launch]) -> Result<Option<Self::Graph>>;
    fn replay(&self, graph: &Self::Graph) -> Result<()>;

    /// Host memory the device copies from and into while the host goes on (pinned on CUDA).
    type Staging;
    fn alloc_staging(&self, bytes: usize) -> Result<Self::Staging>;
    /// The staging's bytes, for the host, once the copies queued on it are done.
    fn staging<'s>(&self, s: &'s mut Self::Staging) -> Result<&'s mut [u8]>;
    /// Queues a copy of all of `s` to the start of `m` on the up lane.
    fn upload_staged(&self, m: &mut Self::Memory, s: &mut Self::Staging) -> Result<()>;
    /// Queues a copy of the start of `m` into all of `s` on the down lane.
    fn download_staged(&self, m: &Self::Memory, s: &mut Self::Staging) -> Result<()>;
    /// A point in `lane`'s queue: reached when the work queued on it so far is done.
    type Event;
    fn record_event(&self, lane: Lane) -> Result<Self::Event>;
    /// Work queued on `lane` after this waits for `event`.
    fn wait_event(&self, lane: Lane, event: &Self::Event) -> Result<()>;
}

/// A schedule's parameters on the device, uploaded once.
struct Parameters<M> {
    /// Everything uploaded; `addresses` points into these.
    _memory: Vec<M>,
    bytes: usize,
    /// The parameters' addresses, the buffers' left empty.
    addresses: Addresses,
}

/// What one frame size needs: its buffers, the planar frames in and out, the statistics'
/// accumulators, its launches.
struct Sized<G: Gpu> {
    plan: BufferPlan,
    framing: Framing,
    /// Bytes of everything below.
    bytes: usize,
    buffers: Vec<G::Memory>,
    frames_in: G::Memory,
    frames_out: G::Memory,
    /// The planar output frames' bytes.
    frames_out_bytes: usize,
    _stats_sums: G::Memory,
    launches: Vec<Launch>,
    /// The launches as one graph, where the device recorded them.
    graph: Option<G::Graph>,
    /// Frames' bytes converted on the device ([`Executor::submit_raw`]), once asked for.
    raw: Option<Raw<G>>,
}

/// A frame's bytes in and out of the device, converted there by the caller's launches:
/// see [`Executor::run_raw`].
pub struct RawFrame<'a, 'b> {
    /// Byte regions (a frame's planes), each uploaded into a device buffer of its own.
    pub inputs: &'a [&'b [u8]],
    /// What the conversions read beside the frame (e.g. chroma taps), uploaded when it
    /// changes.
    pub tables: &'a [u8],
    /// Byte regions, each downloaded from a device buffer of its own after the launches.
    pub outputs: &'a mut [&'b mut [u8]],
}

/// A frame's bytes going in, and the sizes of the regions coming out: see
/// [`Executor::submit_raw`].
#[derive(Clone, Copy)]
pub struct RawInput<'a, 'b> {
    /// Byte regions (a frame's planes), each uploaded into a device buffer of its own.
    pub inputs: &'a [&'b [u8]],
    /// What the conversions read beside the frame (e.g. chroma taps), uploaded when it
    /// changes.
    pub tables: &'a [u8],
    /// The byte sizes of the regions downloaded after the launches.
    pub outputs: &'a [usize],
}

/// Most byte regions a raw frame has each way (a video frame's planes).
pub const MAX_PLANES: usize = 4;

/// Where a raw frame's buffers are on the device, for the caller's conversions (0 past the
/// frame's regions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAddresses {
    pub inputs: [u64; MAX_PLANES],
    pub tables: u64,
    /// The network's planar f32 frames, in (`[n][3][h][w]` at the framing's size) and out.
    pub planar_in: u64,
    pub planar_out: u64,
    pub outputs: [u64; MAX_PLANES],
}

/// The conversions into the planar input frames and out of the planar output frames.
pub type Conversions = (Vec<Launch>, Vec<Launch>);

/// The byte sizes of a raw frame's regions: inputs, outputs (0 past the frame's), tables.
type RawSizes = ([usize; MAX_PLANES], [usize; MAX_PLANES], usize);

/// Frames in flight at most: one going up or computing while the one before comes down.
pub const SLOTS: usize = 2;

/// A frame size's buffers for raw frames: one slot a frame in flight.
struct Raw<G: Gpu> {
    slots: [Slot<G>; SLOTS],
    tables: G::Memory,
    /// The tables as last uploaded.
    uploaded_tables: Vec<u8>,
    /// The byte sizes the buffers were made for.
    sizes: RawSizes,
    /// Their sum.
    bytes: usize,
    /// The slots of the frames in flight, oldest first: `first`, then the next `in_flight − 1`.
    first: usize,
    in_flight: usize,
    /// The caller's conversions of a frame, made into these (kept: no allocation a frame).
    fresh: Conversions,
}

/// One frame's buffers on the device and in staging, and its conversions recorded with the
/// network's launches.
struct Slot<G: Gpu> {
    inputs: Vec<G::Memory>,
    outputs: Vec<G::Memory>,
    staged_in: Vec<G::Staging>,
    staged_out: Vec<G::Staging>,
    /// The conversions last launched from this slot (none yet: `None`), and with the
    /// network's launches as one graph.
    conversions: Option<Conversions>,
    graph: Option<G::Graph>,
}

impl<G: Gpu> Slot<G> {
    fn new(gpu: &G, (ins, outs, _): &RawSizes, (n_in, n_out): (usize, usize)) -> Result<Self> {
        let alloc_all = |lens: &[usize]| -> Result<Vec<G::Memory>> {
            lens.iter().map(|&l| gpu.alloc(l)).collect()
        };
        let stage_all = |lens: &[usize]| -> Result<Vec<G::Staging>> {
            lens.iter().map(|&l| gpu.alloc_staging(l)).collect()
        };
        Ok(Self {
            inputs: alloc_all(&ins[..n_in])?,
            outputs: alloc_all(&outs[..n_out])?,
            staged_in: stage_all(&ins[..n_in])?,
            staged_out: stage_all(&outs[..n_out])?,
            conversions: None,
            graph: None,
        })
    }
}

pub struct Executor<G: Gpu> {
    gpu: G,
    schedule: Schedule,
    storage: Storage,
    params: Parameters<G::Memory>,
    sized: Option<Sized<G>>,
    /// How many times buffers were allocated (once per new frame size).
    allocations: usize,
}

/// The bytes of f32 values.
fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any bytes are valid u8
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

/// The bytes of f32 values, to write.
fn f32_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: as f32_bytes; any bytes are a valid f32
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

/// The bytes of f16 values.
fn f16_bytes(v: &[f16]) -> &[u8] {
    // SAFETY: as f32_bytes
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

impl<G: Gpu> Executor<G> {
    /// Uploads the schedule's weights for activations in `storage`.
    pub fn new(gpu: G, schedule: Schedule, storage: Storage) -> Result<Self> {
        let (mut memory, mut total) = (Vec::new(), 0);
        let mut upload = |bytes: &[u8]| -> Result<u64> {
            if bytes.is_empty() {
                return Ok(0);
            }
            total += bytes.len();
            let mut m = gpu.alloc(bytes.len())?;
            gpu.upload(&mut m, bytes)?;
            let at = gpu.address(&m);
            memory.push(m);
            Ok(at)
        };
        let mut addresses = Addresses::default();
        for c in &schedule.convs {
            addresses.weights_f32.push(upload(f32_bytes(&c.f32))?);
            addresses.weights.push(match storage {
                Storage::F32 => *addresses.weights_f32.last().expect("pushed"),
                Storage::F16 => upload(f16_bytes(&c.f16))?,
            });
            addresses.biases.push(upload(f32_bytes(&c.bias))?);
        }
        for step in &schedule.steps {
            let (embed, gains) = match step {
                Step::Conv(c) => (
                    c.embed.as_ref().map(|e| e.weights.as_slice()),
                    c.residual.as_ref().and_then(|r| r.gains.as_deref()),
                ),
                _ => (None, None),
            };
            addresses
                .embeds
                .push(upload(f32_bytes(embed.unwrap_or(&[])))?);
            addresses
                .gains
                .push(upload(f32_bytes(gains.unwrap_or(&[])))?);
        }
        Ok(Self {
            gpu,
            schedule,
            storage,
            params: Parameters {
                _memory: memory,
                bytes: total,
                addresses,
            },
            sized: None,
            allocations: 0,
        })
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// How many times buffers were allocated: once per change of frame size.
    pub fn allocations(&self) -> usize {
        self.allocations
    }

    /// Runs `n` frames of `h`×`w`, planar RGB f32 in `input` (`[n][3][h][w]`), with their
    /// scale `codes` (IMDN_AS with a scale input; ignored otherwise), into `out`: planar RGB
    /// f32 at `net_scale ×` the size.
    pub fn run(
        &mut self,
        input: &[f32],
        (n, h, w): (usize, usize, usize),
        codes: Option<&[f32]>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.run_framed(input, ((n, h, w), Framing::whole((h, w))), codes, out)
    }

    /// As [`Executor::run`] for the network's `nhw` frames holding the planar frames of
    /// `input` where `framing` says: padded by replicating their borders on the way in,
    /// cropped back on the way out, on the device.
    pub fn run_framed(
        &mut self,
        input: &[f32],
        (nhw, framing): ((usize, usize, usize), Framing),
        codes: Option<&[f32]>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (n, (h, w)) = (nhw.0, framing.frame);
        if input.len() != n * h * w * 3 {
            return Err(Error::InvalidInput(format!(
                "expected {n}×{h}×{w}×3 floats, got {}",
                input.len()
            )));
        }
        self.ensure(nhw, framing)?;
        self.upload_codes(codes, n)?;
        let sized = self.sized.as_mut().expect("ensured");
        self.gpu.upload(&mut sized.frames_in, f32_bytes(input))?;
        launch_all(&self.gpu, sized)?;
        // every value is downloaded over: no zero fill for frames of the size before
        let len = sized.frames_out_bytes / 4;
        if out.len() != len {
            out.clear();
            out.resize(len, 0.0);
        }
        self.gpu.download(&sized.frames_out, f32_bytes_mut(out))
    }

    /// Runs the network's `nhw` frames from and into bytes converted on the device, and waits
    /// for them: [`Executor::submit_raw`] and [`Executor::finish_raw`] with no other frame in
    /// flight.
    pub fn run_raw(
        &mut self,
        at: ((usize, usize, usize), Framing),
        codes: Option<&[f32]>,
        frame: RawFrame,
        convert: impl FnOnce(&RawAddresses, &mut Conversions) -> Result<()>,
    ) -> Result<()> {
        if self.frames_in_flight() > 0 {
            return Err(Error::InvalidInput(
                "frames in flight: finish them before running one".into(),
            ));
        }
        let n_out = frame.outputs.len();
        if n_out > MAX_PLANES {
            return Err(Error::InvalidInput(format!(
                "{n_out} regions out: at most {MAX_PLANES}"
            )));
        }
        let mut output_lens = [0; MAX_PLANES];
        for (l, o) in output_lens.iter_mut().zip(frame.outputs.iter()) {
            *l = o.len();
        }
        let outputs = &output_lens[..n_out];
        let input = RawInput {
            inputs: frame.inputs,
            tables: frame.tables,
            outputs,
        };
        self.submit_raw(at, codes, input, convert)?;
        self.finish_raw(frame.outputs)
    }

    /// Queues the network's `nhw` frames from and into bytes converted on the device:
    /// `frame`'s inputs copied into staging and queued up, then on the compute lane the
    /// caller's conversions (made by `convert` from the buffers' addresses) into the planar
    /// input frames (at `framing`'s size: the network pads them by replicating their
    /// borders), the network and the conversions out of the planar output frames (cropped
    /// back), then the outputs queued down. Returns without waiting; [`Executor::finish_raw`]
    /// collects the oldest frame. At most [`SLOTS`] frames are in flight, all of one size.
    /// The conversions are recorded with the network's launches as one graph a slot and
    /// replayed while they stay the same.
    pub fn submit_raw(
        &mut self,
        (nhw, framing): ((usize, usize, usize), Framing),
        codes: Option<&[f32]>,
        frame: RawInput,
        convert: impl FnOnce(&RawAddresses, &mut Conversions) -> Result<()>,
    ) -> Result<()> {
        let (ins, outs) = (frame.inputs.len(), frame.outputs.len());
        if ins > MAX_PLANES || outs > MAX_PLANES {
            return Err(Error::InvalidInput(format!(
                "{ins} regions in, {outs} out: at most {MAX_PLANES} each way"
            )));
        }
        let mut sizes: RawSizes = ([0; MAX_PLANES], [0; MAX_PLANES], frame.tables.len());
        for (s, b) in sizes.0.iter_mut().zip(frame.inputs) {
            *s = b.len();
        }
        sizes.1[..outs].copy_from_slice(frame.outputs);
        let in_flight = self.frames_in_flight();
        if in_flight > 0 {
            let same = self.sized.as_ref().is_some_and(|z| {
                (z.plan.nhw, z.framing) == (nhw, framing)
                    && z.raw.as_ref().is_some_and(|r| r.sizes == sizes)
            });
            if !same || in_flight == SLOTS {
                return Err(Error::InvalidInput(format!(
                    "{in_flight} frames in flight: finish them before one {}",
                    if same { "more" } else { "of another size" }
                )));
            }
        }
        self.ensure(nhw, framing)?;
        self.upload_codes(codes, nhw.0)?;
        let gpu = &self.gpu;
        let sized = self.sized.as_mut().expect("ensured");
        if sized.raw.as_ref().is_none_or(|r| r.sizes != sizes) {
            if sized.raw.is_some() {
                gpu.synchronize()?;
            }
            sized.raw = None;
            let slot = || Slot::new(gpu, &sizes, (ins, outs));
            sized.raw = Some(Raw {
                slots: [slot()?, slot()?],
                tables: gpu.alloc(sizes.2)?,
                uploaded_tables: Vec::new(),
                bytes: SLOTS * (sizes.0.iter().chain(&sizes.1).sum::<usize>()) + sizes.2,
                sizes,
                first: 0,
                in_flight: 0,
                fresh: Conversions::default(),
            });
            // the new buffers are zeroed on the compute lane: done before another copies in
            gpu.synchronize()?;
        }
        let raw = sized.raw.as_mut().expect("made");
        if raw.uploaded_tables != frame.tables {
            // the frame in flight reads the tables too: it finishes on the device first
            gpu.synchronize()?;
            gpu.upload(&mut raw.tables, frame.tables)?;
            raw.uploaded_tables.clear();
            raw.uploaded_tables.extend_from_slice(frame.tables);
        }
        let tables = gpu.address(&raw.tables);
        // the slot's last frame has been finished, so waited for: nothing queued uses it
        let slot = &mut raw.slots[(raw.first + raw.in_flight) % SLOTS];
        for (staged, bytes) in slot.staged_in.iter_mut().zip(frame.inputs) {
            gpu.staging(staged)?.copy_from_slice(bytes);
        }
        for (m, staged) in slot.inputs.iter_mut().zip(&mut slot.staged_in) {
            gpu.upload_staged(m, staged)?;
        }
        let uploaded = gpu.record_event(Lane::Up)?;
        // the network once the inputs are up, the outputs down once it is done
        let mut at = RawAddresses {
            inputs: [0; MAX_PLANES],
            tables,
            planar_in: gpu.address(&sized.frames_in),
            planar_out: gpu.address(&sized.frames_out),
            outputs: [0; MAX_PLANES],
        };
        for (a, m) in at.inputs.iter_mut().zip(&slot.inputs) {
            *a = gpu.address(m);
        }
        for (a, m) in at.outputs.iter_mut().zip(&slot.outputs) {
            *a = gpu.address(m);
        }
        raw.fresh.0.clear();
        raw.fresh.1.clear();
        convert(&at, &mut raw.fresh)?;
        if slot.conversions.as_ref() != Some(&raw.fresh) {
            let (into, out_of) = &raw.fresh;
            let all: Vec<Launch> = (into.iter().chain(&sized.launches).chain(out_of))
                .cloned()
                .collect();
            slot.graph = None;
            slot.graph = gpu.record(&all).unwrap_or(None);
            let recorded = slot.conversions.get_or_insert_with(Conversions::default);
            std::mem::swap(recorded, &mut raw.fresh);
        }
        gpu.wait_event(Lane::Compute, &uploaded)?;
        match (&slot.graph, &slot.conversions) {
            (Some(graph), _) => gpu.replay(graph)?,
            (None, Some((into, out_of))) => (into.iter())
                .chain(&sized.launches)
                .chain(out_of)
                .try_for_each(|l| gpu.launch(l))?,
            (None, None) => unreachable!("set above"),
        }
        gpu.wait_event(Lane::Down, &gpu.record_event(Lane::Compute)?)?;
        for (m, staged) in slot.outputs.iter().zip(&mut slot.staged_out) {
            gpu.download_staged(m, staged)?;
        }
        raw.in_flight += 1;
        Ok(())
    }

    /// Waits for the oldest frame in flight and copies its outputs into `outputs` (each the
    /// size it was submitted with).
    pub fn finish_raw(&mut self, outputs: &mut [&mut [u8]]) -> Result<()> {
        let raw = (self.sized.as_mut())
            .and_then(|z| z.raw.as_mut())
            .filter(|r| r.in_flight > 0)
            .ok_or_else(|| Error::InvalidInput("no frame in flight".into()))?;
        let n_out = raw.slots[0].staged_out.len();
        let wrong = outputs.len() != n_out
            || (outputs.iter().zip(&raw.sizes.1)).any(|(o, &len)| o.len() != len);
        let slot = &mut raw.slots[raw.first];
        raw.first = (raw.first + 1) % SLOTS;
        raw.in_flight -= 1;
        // waited for whatever comes of it: the slot is free once the frame is out of flight
        for (i, staged) in slot.staged_out.iter_mut().enumerate() {
            let bytes = self.gpu.staging(staged)?;
            if !wrong {
                outputs[i].copy_from_slice(bytes);
            }
        }
        if wrong {
            return Err(Error::InvalidInput(format!(
                "{} output regions of {:?} bytes; the frame has {:?}",
                outputs.len(),
                outputs.iter().map(|o| o.len()).collect::<Vec<_>>(),
                &raw.sizes.1[..n_out]
            )));
        }
        Ok(())
    }

    /// Frames submitted and not yet finished.
    pub fn frames_in_flight(&self) -> usize {
        (self.sized.as_ref())
            .and_then(|z| z.raw.as_ref())
            .map_or(0, |r| r.in_flight)
    }

    /// The frames' scale codes into the schedule's code buffer, checked: one per frame for
    /// IMDN_AS with a scale input, ignored otherwise.
    fn upload_codes(&mut self, codes: Option<&[f32]>, n: usize) -> Result<()> {
        let Some(buf) = self.schedule.codes else {
            return Ok(());
        };
        match codes {
            Some(c) if c.len() == n => {
                let sized = self.sized.as_mut().expect("ensured first");
                self.gpu.upload(&mut sized.buffers[buf], f32_bytes(c))
            }
            _ => Err(Error::InvalidInput(format!(
                "{} needs one scale code per frame",
                self.schedule.config
            ))),
        }
    }

    /// Launches every step again on the frames last run and waits for them: the network
    /// alone (with the frames' layout conversions on the device), for timing.
    pub fn rerun(&mut self) -> Result<()> {
        let sized = self
            .sized
            .as_ref()
            .ok_or_else(|| Error::InvalidInput("no frames run yet".into()))?;
        launch_all(&self.gpu, sized)?;
        self.gpu.synchronize()
    }

    /// Device memory held: the parameters and the last frame size's buffers.
    pub fn device_bytes(&self) -> usize {
        let sized = |z: &Sized<G>| z.bytes + z.raw.as_ref().map_or(0, |r| r.bytes);
        self.params.bytes + self.sized.as_ref().map_or(0, sized)
    }

    /// Whether the last frame size's launches replay as one graph.
    pub fn replays_a_graph(&self) -> bool {
        self.sized.as_ref().is_some_and(|z| z.graph.is_some())
    }

    /// The buffers and launches for the network's `n`×`h`×`w` frames holding planar frames
    /// placed by `framing`, made only when these differ from the last.
    fn ensure(&mut self, (n, h, w): (usize, usize, usize), framing: Framing) -> Result<()> {
        if (self.sized.as_ref()).is_some_and(|z| z.plan.nhw == (n, h, w) && z.framing == framing) {
            return Ok(());
        }
        if self.frames_in_flight() > 0 {
            return Err(Error::InvalidInput(
                "frames in flight: finish them before frames of another size".into(),
            ));
        }
        // the old size's buffers go first (both sizes may not fit at once), once nothing
        // queued uses them
        if self.sized.is_some() {
            self.gpu.synchronize()?;
        }
        self.sized = None;
        let s = &self.schedule;
        let plan = s.plan(n, h, w)?;
        let mut bytes = 0;
        let mut alloc = |len: usize| {
            bytes += len;
            self.gpu.alloc(len)
        };
        let buffers = s
            .buffers
            .iter()
            .zip(&plan.buffers)
            .map(|(b, p)| {
                alloc(match b.grid {
                    Grid::PerFrame => p.bytes_f32(),
                    Grid::Pixels { .. } => p.elements * self.storage.bytes(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let planar_bytes = |to_nhwc| -> Result<usize> {
            let (h, w, _) = args::planar_frames(framing, s, &plan, to_nhwc)?;
            Ok(4 * 3 * n * h * w)
        };
        let frames_in = alloc(planar_bytes(true)?)?;
        let frames_out_bytes = planar_bytes(false)?;
        let frames_out = alloc(frames_out_bytes)?;
        let stats_sums = alloc(args::stats_sums_bytes(s, n))?;
        let at = Addresses {
            buffers: buffers.iter().map(|m| self.gpu.address(m)).collect(),
            stats_sums: self.gpu.address(&stats_sums),
            ..self.params.addresses.clone()
        };
        let with = (&at, self.storage);
        let into = (self.gpu.address(&frames_in), true);
        let mut launches = vec![args::frames(s, &plan, with, into, framing)?];
        launches.extend(args::launches(s, &plan, &at, self.storage)?);
        let back = (self.gpu.address(&frames_out), false);
        launches.push(args::frames(s, &plan, with, back, framing)?);
        // a device that cannot record (a capture refused) launches one by one: slower, not wrong
        let graph = self.gpu.record(&launches).unwrap_or(None);
        self.sized = Some(Sized {
            plan,
            framing,
            bytes,
            buffers,
            frames_in,
            frames_out,
            frames_out_bytes,
            _stats_sums: stats_sums,
            launches,
            graph,
            raw: None,
        });
        self.allocations += 1;
        Ok(())
    }
}

impl<G: Gpu> Drop for Executor<G> {
    /// Work still queued finishes before its buffers go.
    fn drop(&mut self) {
        let _ = self.gpu.synchronize();
    }
}

/// A size's launches: its graph replayed, or each launched.
fn launch_all<G: Gpu>(gpu: &G, sized: &Sized<G>) -> Result<()> {
    match &sized.graph {
        Some(graph) => gpu.replay(graph),
        None => sized.launches.iter().try_for_each(|l| gpu.launch(l)),
    }
}
