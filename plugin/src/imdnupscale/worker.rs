//! The worker: three threads joined by bounded channels.
//!
//! ```text
//! streaming thread ─jobs→ imdn-pre ─(1)→ imdn-infer ─(1)→ imdn-post ─done→ streaming thread
//! ```
//! - pre maps the input and converts it to planar RGB f32 (YUV matrix, chroma, alpha split).
//! - infer owns the backend (and so the device): it builds it and is the only thread to use it.
//! - post resizes alpha and writes the result into the output buffer's format and strides.
//!
//! When the CPU network has a thread for every core (`n-threads` 0, the default), pre and post
//! run their conversions on the network's own threads ([`Threads`]): a conversion running
//! beside the network would take a core from one of its parts, and the other part would wait
//! at the end of the frame; on the network's threads it runs when one is free.
//!
//! A backend that converts frames on its device (our CUDA executor) takes them unconverted:
//! pre passes the input buffer on, infer has the backend write the output buffer, post only
//! hands it on. Frames it does not take (alpha, sizes it does not run whole) take the host path.
//!
//! The channels between stages hold one frame each (the double buffers), so frame k+1's pre and
//! frame k−1's post overlap frame k's inference. The planar buffers travel back (infer → pre,
//! post → infer) to be refilled, so a stream of same-sized frames allocates none after the first. Every job comes back on `done`, in order, as a
//! frame, an error or (while flushing or shutting down) a discard. Each stage catches panics per
//! frame, so a bug becomes an error for that frame instead of a silently closed channel.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use gst_video::VideoInfo;
use imdn::cpu::Threads;
use imdn::temporal::Steady;

use super::backend::{Backend, BackendSpec, BuildError, Loaded};
use super::pixels::{self, Planar};

/// Most frames the element lets into the worker beyond the one it waits for.
pub const MAX_DEPTH: usize = 8;

/// One frame to upscale.
pub struct Job {
    pub seq: u64,
    pub inbuf: gst::Buffer,
    /// A pool buffer for the result, timestamps and flags already copied from `inbuf`.
    pub outbuf: gst::Buffer,
    pub in_info: VideoInfo,
    /// The output's format and exact size (any size with scale=0).
    pub out_info: VideoInfo,
}

pub enum Outcome {
    Frame(gst::Buffer),
    /// Dropped unprocessed because the element was flushing.
    Discarded,
    Failed(String),
}

pub struct Done {
    pub seq: u64,
    pub outcome: Outcome,
    /// Something the element should post as a warning (e.g. the switch to the CPU).
    pub warning: Option<String>,
}

/// A frame between stages.
struct InFlight {
    seq: u64,
    /// The input buffer was marked DISCONT (after a seek, or a gap upstream).
    discont: bool,
    outbuf: gst::Buffer,
    out_info: VideoInfo,
    warning: Option<String>,
    /// Time spent working on it so far (queueing excluded).
    busy: Duration,
    work: Work,
}

enum Work {
    Skip,
    Failed(String),
    Input(Planar),
    /// The input unconverted, for a backend that converts frames on its device.
    Unconverted {
        inbuf: gst::Buffer,
        in_info: VideoInfo,
    },
    Output {
        rgb: Vec<f32>,
        /// Input-size alpha and its size.
        alpha: Option<(Vec<u8>, (usize, usize))>,
    },
    /// The output buffer written by the backend.
    Written,
}

struct Shared {
    /// Set by the element between FLUSH_START and FLUSH_STOP.
    flushing: Arc<AtomicBool>,
    /// Set when the worker is dropped.
    stopping: AtomicBool,
    /// Running maximum of a frame's busy time in ns (pre + infer + post).
    max_busy_ns: AtomicU64,
    /// Set by infer while its backend converts frames on its device: pre then passes the
    /// frames it can take unconverted.
    on_device: AtomicBool,
    /// The sizes the backend last did not take unconverted ([`sizes_key`]; 0: none): pre
    /// converts frames of these sizes itself, and passes others (after a caps change) again.
    refused: AtomicU64,
    /// The CPU network's threads, set by infer whenever it builds a backend: pre and post
    /// convert frames on them rather than beside them ([`Threads`]).
    network_threads: Mutex<Option<Threads>>,
}

/// A frame's input and output sizes as one number (each side saturated at 16 bits: a
/// mistaken match only sends a frame the other way, where infer still handles it).
fn sizes_key(input: &VideoInfo, output: &VideoInfo) -> u64 {
    [
        input.width(),
        input.height(),
        output.width(),
        output.height(),
    ]
    .into_iter()
    .fold(0, |key, side| key << 16 | u64::from(side.min(0xffff)))
}

impl Shared {
    fn skip(&self) -> bool {
        self.flushing.load(Ordering::Acquire) || self.stopping.load(Ordering::Acquire)
    }

    /// Runs a stage's per-frame conversion on the CPU network's threads, if it has any.
    fn on_network_threads<T: Send>(&self, op: impl FnOnce() -> T + Send) -> T {
        let threads = match self.network_threads.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match threads {
            Some(t) => t.run(op),
            None => op(),
        }
    }

    /// Takes the threads of `backend`'s CPU network when they are as many as the cores:
    /// with fewer (`n-threads` set low to leave cores to other elements), conversions on
    /// their own threads use cores the network does not.
    fn use_threads_of(&self, backend: &dyn Backend) {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        let threads = backend.cpu_threads().filter(|t| t.count() >= cores);
        match self.network_threads.lock() {
            Ok(mut t) => *t = threads,
            Err(poisoned) => *poisoned.into_inner() = threads,
        }
    }
}

pub struct Worker {
    jobs: Option<Sender<Job>>,
    done: Option<Receiver<Done>>,
    threads: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What the element learns about the backend once it is built.
pub struct Ready {
    pub description: String,
    pub warning: Option<String>,
    pub on_cuda: bool,
    /// See [`Loaded::preferred_scale`].
    pub preferred_scale: u32,
}

/// Runs one stage's work on one frame; a panic becomes that frame's error.
fn stage_work<T>(stage: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| format!("{stage}: {e}")),
        Err(p) => Err(format!(
            "{stage} panicked: {}",
            imdn::panics::message(p.as_ref())
        )),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, BuildError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| BuildError::Thread(format!("cannot start thread {name}: {e}")))
}

/// How the infer stage treats its frames beyond running the backend.
#[derive(Clone, Copy, Debug)]
pub struct Conduct {
    /// A runtime error of a CUDA backend rebuilds it on the CPU and retries the frame (once:
    /// the CPU backend has no fallback).
    pub fallback_to_cpu: bool,
    /// `steady`: still pixels (input change ≤ this many levels) are averaged over time, 0 = off.
    pub steady: u8,
}

impl Worker {
    /// Starts the threads and builds the backend on the infer thread; returns once it is ready.
    pub fn new(
        spec: BackendSpec,
        conduct: Conduct,
        flushing: Arc<AtomicBool>,
    ) -> Result<(Self, Ready), BuildError> {
        let shared = Arc::new(Shared {
            flushing,
            stopping: AtomicBool::new(false),
            max_busy_ns: AtomicU64::new(0),
            on_device: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            network_threads: Mutex::new(None),
        });
        // Sized so that sends never block: the element keeps at most MAX_DEPTH + 1 in flight.
        let (jobs_tx, jobs_rx) = bounded::<Job>(MAX_DEPTH + 1);
        let (done_tx, done_rx) = bounded::<Done>(MAX_DEPTH + 1);
        let (pre_tx, pre_rx) = bounded::<InFlight>(1);
        let (post_tx, post_rx) = bounded::<InFlight>(1);
        // Used planar buffers going back for reuse; never waited on (a full queue drops one).
        let (input_back_tx, input_back_rx) = bounded::<Vec<f32>>(MAX_DEPTH + 2);
        let (output_back_tx, output_back_rx) = bounded::<Vec<f32>>(MAX_DEPTH + 2);
        let (alpha_back_tx, alpha_back_rx) = bounded::<Vec<u8>>(MAX_DEPTH + 2);
        let (ready_tx, ready_rx) = bounded::<Result<Ready, BuildError>>(1);

        let mut worker = Worker {
            jobs: Some(jobs_tx),
            done: Some(done_rx),
            threads: Vec::with_capacity(3),
            shared: shared.clone(),
        };
        let s = shared.clone();
        worker.threads.push(spawn("imdn-infer", move || {
            let recycle = Recycle {
                give: input_back_tx,
                take: output_back_rx,
            };
            infer_stage(spec, conduct, &s, &ready_tx, &pre_rx, &post_tx, &recycle)
        })?);
        // Wait for the model before starting the others: a failed load then leaves nothing behind.
        let ready = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(BuildError::Thread("the infer thread ended early".into())),
        };
        let s = shared.clone();
        worker.threads.push(spawn("imdn-pre", move || {
            pre_stage(&s, &jobs_rx, &pre_tx, &input_back_rx, &alpha_back_rx)
        })?);
        let s = shared;
        worker.threads.push(spawn("imdn-post", move || {
            post_stage(&s, &post_rx, &done_tx, &output_back_tx, &alpha_back_tx)
        })?);
        Ok((worker, ready))
    }

    /// Hands a frame to the pre stage.
    pub fn submit(&self, job: Job) -> Result<(), String> {
        self.jobs
            .as_ref()
            .ok_or("worker stopped")?
            .send(job)
            .map_err(|_| "the worker threads have stopped".to_string())
    }

    /// Where finished frames come back, in order: a handle the element waits on without
    /// holding its state lock (a clone of the channel's end, dropped after the wait).
    pub fn done_receiver(&self) -> Result<Receiver<Done>, String> {
        self.done
            .clone()
            .ok_or_else(|| "worker stopped".to_string())
    }

    /// The longest time one frame has kept the stages busy so far.
    pub fn max_processing_time(&self) -> Duration {
        Duration::from_nanos(self.shared.max_busy_ns.load(Ordering::Relaxed))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Closing `jobs` ends pre once it is empty; closing `done` makes post's sends fail
        // instead of blocking; each stage then ends when its neighbour is gone.
        self.jobs.take();
        self.done.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The infer stage's ends of the buffer return paths.
struct Recycle {
    /// Input planes, back to pre.
    give: Sender<Vec<f32>>,
    /// Output planes, back from post.
    take: Receiver<Vec<f32>>,
}

fn pre_stage(
    shared: &Shared,
    jobs: &Receiver<Job>,
    next: &Sender<InFlight>,
    returned: &Receiver<Vec<f32>>,
    returned_alpha: &Receiver<Vec<u8>>,
) {
    let mut scratch = pixels::Scratch::default();
    for job in jobs {
        let start = Instant::now();
        let discont = job.inbuf.flags().contains(gst::BufferFlags::DISCONT);
        let unconverted = shared.on_device.load(Ordering::Acquire)
            && shared.refused.load(Ordering::Acquire) != sizes_key(&job.in_info, &job.out_info)
            && pixels::device::converts(&job.in_info)
            && pixels::device::converts(&job.out_info);
        let work = if shared.skip() {
            Work::Skip
        } else if unconverted {
            Work::Unconverted {
                inbuf: job.inbuf.clone(),
                in_info: job.in_info,
            }
        } else {
            let rgb = returned.try_recv().unwrap_or_default();
            match stage_work("converting the input", || {
                let spare_alpha = || returned_alpha.try_recv().unwrap_or_default();
                shared.on_network_threads(|| {
                    pixels::read_frame(&job.inbuf, &job.in_info, rgb, spare_alpha, &mut scratch)
                })
            }) {
                Ok(planar) => Work::Input(planar),
                Err(e) => Work::Failed(e),
            }
        };
        // Release the input buffer to upstream's pool as early as possible.
        drop(job.inbuf);
        let frame = InFlight {
            seq: job.seq,
            discont,
            outbuf: job.outbuf,
            out_info: job.out_info,
            warning: None,
            busy: start.elapsed(),
            work,
        };
        if next.send(frame).is_err() {
            break;
        }
    }
}

fn infer_stage(
    spec: BackendSpec,
    conduct: Conduct,
    shared: &Shared,
    ready: &Sender<Result<Ready, BuildError>>,
    input: &Receiver<InFlight>,
    next: &Sender<InFlight>,
    recycle: &Recycle,
) {
    let built = match panic::catch_unwind(AssertUnwindSafe(|| spec.build())) {
        Ok(r) => r,
        Err(p) => Err(BuildError::BadWeights(format!(
            "loading the model panicked: {}",
            imdn::panics::message(p.as_ref())
        ))),
    };
    let Loaded {
        backend,
        description,
        warning,
        on_cuda,
        mut fallback,
        preferred_scale,
    } = match built {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let loaded = Ready {
        description,
        warning,
        on_cuda,
        preferred_scale,
    };
    if !conduct.fallback_to_cpu {
        fallback = None;
    }
    // blend 0.5: keeps √(1/3) of still noise, and a still picture settles within a few frames
    let steady = (conduct.steady > 0).then(|| Steady::new(conduct.steady, 0.5));
    shared.use_threads_of(backend.as_ref());
    // steady averages planar frames on the host
    let on_device = backend.converts_on_device() && steady.is_none();
    shared.on_device.store(on_device, Ordering::Release);
    if ready.send(Ok(loaded)).is_err() {
        return;
    }
    let mut infer = Infer {
        backend,
        fallback,
        steady,
        scratch: pixels::Scratch::default(),
        shared,
        recycle,
        device_gone: false,
    };
    // A frame queued on the device and not yet written out. It leaves once the frame after it
    // is queued behind it (so the device has that one while this one comes down), or as soon
    // as no frame waits: none is held back for a frame that may not come.
    let mut queued: Option<InFlight> = None;
    loop {
        let mut frame = match input.try_recv() {
            Ok(frame) => frame,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                if queued.is_some() {
                    if !infer.pass_on(queued.take(), next) {
                        return;
                    }
                    continue;
                }
                match input.recv() {
                    Ok(frame) => frame,
                    Err(_) => break,
                }
            }
        };
        let start = Instant::now();
        if let Work::Unconverted { in_info, .. } = &frame.work {
            // the device takes a frame beside one queued only when their sizes are the same
            let other_sizes = |q: &InFlight| {
                let Work::Unconverted { in_info: q_in, .. } = &q.work else {
                    return true;
                };
                sizes_key(q_in, &q.out_info) != sizes_key(in_info, &frame.out_info)
            };
            if !infer.pass_on(queued.take_if(|q| other_sizes(q)), next) {
                return;
            }
            let submitted = infer.submit(&frame);
            if let Ok(true) = submitted {
                frame.busy += start.elapsed();
                if !infer.pass_on(queued.replace(frame), next) {
                    return;
                }
                continue;
            }
            // frames leave in order: the one queued first
            if !infer.pass_on(queued.take(), next) {
                return;
            }
            frame.work = infer.not_on_device(&mut frame, submitted);
        } else if !infer.pass_on(queued.take(), next) {
            return;
        }
        infer.run_planar(&mut frame);
        frame.busy += start.elapsed();
        if next.send(frame).is_err() {
            return;
        }
    }
    infer.pass_on(queued.take(), next);
}

/// What the infer stage holds: the backend and what it needs beside it.
struct Infer<'a> {
    backend: Box<dyn Backend>,
    fallback: Option<BackendSpec>,
    steady: Option<Steady>,
    scratch: pixels::Scratch,
    shared: &'a Shared,
    recycle: &'a Recycle,
    /// The device backend failed and the CPU took over: frames queued on it are redone.
    device_gone: bool,
}

impl Infer<'_> {
    /// Runs a planar frame ([`Work::Input`]) through the network on the host path; other work
    /// passes.
    fn run_planar(&mut self, frame: &mut InFlight) {
        let (shared, recycle) = (self.shared, self.recycle);
        let work = std::mem::replace(&mut frame.work, Work::Skip);
        frame.work = match work {
            Work::Input(_) if shared.skip() => Work::Skip,
            Work::Input(p) => {
                if frame.discont
                    && let Some(steady) = self.steady.as_mut()
                {
                    steady.reset();
                }
                let size = (p.width, p.height);
                let out = (
                    frame.out_info.width() as usize,
                    frame.out_info.height() as usize,
                );
                let mut rgb = recycle.take.try_recv().unwrap_or_default();
                let mut run = |backend: &mut Box<dyn Backend>| {
                    stage_work("running the network", || {
                        backend.upscale(&p.rgb, (size, out), &mut rgb)
                    })
                };
                let mut result = run(&mut self.backend);
                if let Err(e) = &result
                    && let Some(spec) = self.fallback.take()
                {
                    result = match rebuild(spec, &mut self.backend, shared) {
                        Ok(description) => {
                            frame.warning = Some(format!(
                                "{e}; fallback-to-cpu: continuing on the CPU ({description})"
                            ));
                            run(&mut self.backend)
                        }
                        Err(e2) => Err(format!("{e}; rebuilding on the CPU failed too: {e2}")),
                    };
                }
                if result.is_ok()
                    && let Some(steady) = self.steady.as_mut()
                {
                    steady.apply(&p.rgb, size, &mut rgb, out);
                }
                let work = match result {
                    Ok(()) => Work::Output {
                        rgb,
                        alpha: p.alpha.map(|a| (a, (p.width, p.height))),
                    },
                    Err(e) => Work::Failed(e),
                };
                let _ = recycle.give.try_send(p.rgb);
                work
            }
            other => {
                // a skipped or failed frame breaks the sequence still pixels are averaged over
                if let Some(steady) = self.steady.as_mut() {
                    steady.reset();
                }
                other
            }
        };
    }

    /// Queues a frame that came unconverted on the device: `Ok(true)` where the backend took
    /// it (its input stays with it until it is finished, for a redo on the host).
    fn submit(&mut self, frame: &InFlight) -> Result<bool, String> {
        let Work::Unconverted { inbuf, in_info } = &frame.work else {
            unreachable!("called for unconverted frames");
        };
        if self.shared.skip() {
            return Ok(false);
        }
        let output = (frame.outbuf.as_ref(), &frame.out_info);
        stage_work("running the network", || {
            self.backend.submit_on_device((inbuf, in_info), output)
        })
    }

    /// Writes out `queued` (a frame queued on the device), if any, and passes it to post;
    /// false once post is gone.
    fn pass_on(&mut self, queued: Option<InFlight>, next: &Sender<InFlight>) -> bool {
        queued.is_none_or(|q| next.send(self.finish(q)).is_ok())
    }

    /// Writes out the oldest frame queued on the device ([`Work::Written`]); where that
    /// fails and the CPU takes over, the frame is redone on the host path.
    fn finish(&mut self, mut frame: InFlight) -> InFlight {
        let start = Instant::now();
        let finished = if self.device_gone {
            // queued behind a frame that failed: the device went with the backend
            Err(None)
        } else {
            let output = (frame.outbuf.make_mut(), &frame.out_info);
            stage_work("running the network", || {
                self.backend.finish_on_device(output)
            })
            .map_err(Some)
        };
        match finished {
            Ok(()) => frame.work = Work::Written,
            Err(e) => {
                frame.work = match e {
                    Some(e) => self.not_on_device(&mut frame, Err(e)),
                    None => self.convert_on_host(&mut frame),
                };
                self.run_planar(&mut frame);
            }
        }
        frame.busy += start.elapsed();
        frame
    }

    /// A frame that came unconverted and that the device did not take (`Ok(false)`) or failed
    /// (`Err`): converted on the host for the planar path ([`Work::Input`]), after the CPU
    /// took over where it failed.
    fn not_on_device(&mut self, frame: &mut InFlight, result: Result<bool, String>) -> Work {
        if self.shared.skip() {
            return Work::Skip;
        }
        match result {
            Ok(true) => unreachable!("a frame the device took"),
            // not frames of these sizes: pre converts them from now on
            Ok(false) => {
                if let Work::Unconverted { in_info, .. } = &frame.work {
                    let key = sizes_key(in_info, &frame.out_info);
                    self.shared.refused.store(key, Ordering::Release);
                }
            }
            Err(e) => {
                let rebuilt =
                    (self.fallback.take()).map(|s| rebuild(s, &mut self.backend, self.shared));
                match rebuilt {
                    None => return Work::Failed(e),
                    Some(Ok(description)) => {
                        self.shared.on_device.store(false, Ordering::Release);
                        self.device_gone = true;
                        frame.warning = Some(format!(
                            "{e}; fallback-to-cpu: continuing on the CPU ({description})"
                        ));
                    }
                    Some(Err(e2)) => {
                        return Work::Failed(format!(
                            "{e}; rebuilding on the CPU failed too: {e2}"
                        ));
                    }
                }
            }
        }
        self.convert_on_host(frame)
    }

    /// A frame that came unconverted, converted on the host for the planar path.
    fn convert_on_host(&mut self, frame: &mut InFlight) -> Work {
        let Work::Unconverted { inbuf, in_info } = std::mem::replace(&mut frame.work, Work::Skip)
        else {
            unreachable!("called for unconverted frames");
        };
        if self.shared.skip() {
            return Work::Skip;
        }
        match stage_work("converting the input", || {
            pixels::read_frame(&inbuf, &in_info, Vec::new(), Vec::new, &mut self.scratch)
        }) {
            Ok(planar) => Work::Input(planar),
            Err(e) => Work::Failed(e),
        }
    }
}

/// Replaces `backend` by `spec` built on the CPU; returns its description. The old backend is
/// dropped under `catch_unwind`: a device in a bad state may panic while freeing memory.
fn rebuild(
    spec: BackendSpec,
    backend: &mut Box<dyn Backend>,
    shared: &Shared,
) -> Result<String, String> {
    let loaded = stage_work("rebuilding the network on the CPU", || {
        spec.build().map_err(|e| e.to_string())
    })?;
    shared.use_threads_of(loaded.backend.as_ref());
    let old = std::mem::replace(backend, loaded.backend);
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(old))) {
        return Err(format!(
            "freeing the failed backend panicked: {}",
            imdn::panics::message(p.as_ref())
        ));
    }
    Ok(loaded.description)
}

fn post_stage(
    shared: &Shared,
    input: &Receiver<InFlight>,
    done: &Sender<Done>,
    give_back: &Sender<Vec<f32>>,
    give_back_alpha: &Sender<Vec<u8>>,
) {
    let mut scratch = pixels::Scratch::default();
    let mut out_alpha = Vec::new();
    for frame in input {
        let start = Instant::now();
        let InFlight {
            seq,
            outbuf,
            out_info,
            busy,
            work,
            warning,
            ..
        } = frame;
        // a frame out: its busy time counted
        let finished = |buf| {
            let total = busy + start.elapsed();
            let ns = u64::try_from(total.as_nanos()).unwrap_or(u64::MAX);
            shared.max_busy_ns.fetch_max(ns, Ordering::Relaxed);
            Outcome::Frame(buf)
        };
        let outcome = match work {
            Work::Output { .. } if shared.skip() => Outcome::Discarded,
            Work::Output { rgb, alpha } => {
                let written = stage_work("writing the output", || {
                    let size = (out_info.width() as usize, out_info.height() as usize);
                    let alpha = match &alpha {
                        Some((a, from)) if *from == size => Some(a.as_slice()),
                        Some((a, from)) => {
                            pixels::resize_alpha_into(a, *from, size, &mut scratch, &mut out_alpha);
                            Some(out_alpha.as_slice())
                        }
                        None => None,
                    };
                    let mut outbuf = outbuf;
                    shared.on_network_threads(|| {
                        pixels::write_frame(outbuf.make_mut(), &out_info, &rgb, alpha, &mut scratch)
                    })?;
                    Ok(outbuf)
                });
                let _ = give_back.try_send(rgb);
                if let Some((a, _)) = alpha {
                    let _ = give_back_alpha.try_send(a);
                }
                match written {
                    Ok(buf) => finished(buf),
                    Err(e) => Outcome::Failed(e),
                }
            }
            Work::Written if shared.skip() => Outcome::Discarded,
            Work::Written => finished(outbuf),
            Work::Failed(e) => Outcome::Failed(e),
            Work::Skip | Work::Input(_) | Work::Unconverted { .. } => Outcome::Discarded,
        };
        if done
            .send(Done {
                seq,
                outcome,
                warning,
            })
            .is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imdnupscale::backend::ImdnSpec;
    use imdn::acs::EdgeMode;
    use imdn::engine::{CudaKernels, DeviceChoice, Precision};

    fn thread_name() -> String {
        thread::current().name().unwrap_or_default().to_string()
    }

    /// A worker with the shipped default on `threads` CPU threads (0: all cores).
    fn cpu_worker(threads: usize) -> Worker {
        gst::init().unwrap();
        let spec = ImdnSpec {
            path: None,
            device: DeviceChoice::Cpu,
            precision: Precision::F32,
            cuda_kernels: CudaKernels::Candle,
            tile: 0,
            edge: EdgeMode::Replicate,
            threads,
            scale: 2,
            expect: None,
        };
        let conduct = Conduct {
            fallback_to_cpu: false,
            steady: 0,
        };
        let flushing = Arc::new(AtomicBool::new(false));
        Worker::new(BackendSpec::Imdn(spec), conduct, flushing)
            .unwrap()
            .0
    }

    #[test]
    fn conversions_run_on_the_cpu_networks_threads_when_they_fill_the_cores() {
        let worker = cpu_worker(0);
        let name = worker.shared.on_network_threads(thread_name);
        assert!(name.starts_with("imdn-cpu-"), "ran on {name:?}");
        // fewer threads than cores: the stage's own thread, beside the network
        if thread::available_parallelism().map_or(1, usize::from) > 1 {
            let worker = cpu_worker(1);
            assert_eq!(worker.shared.on_network_threads(thread_name), thread_name());
        }
        // without a CPU network (CUDA, test backends), on the stage's own thread
        let shared = Shared {
            flushing: Arc::new(AtomicBool::new(false)),
            stopping: AtomicBool::new(false),
            max_busy_ns: AtomicU64::new(0),
            on_device: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            network_threads: Mutex::new(None),
        };
        assert_eq!(shared.on_network_threads(thread_name), thread_name());
    }
}
