//! The `imdnupscale` element: a `GstVideoFilter` whose `generate_output` feeds the worker.
//!
//! - The streaming thread takes the queued input, gets a pool buffer for the output
//!   (`parent_prepare_output_buffer` copies timestamps, flags and metas), submits both to the
//!   worker, and returns a finished frame once more than `depth` frames are in flight. So frame
//!   k leaves when frame k + depth arrives: a fixed delay, which the latency query reports.
//! - It waits for the worker outside the `state` lock (as dav1ddec does), so queries, metas
//!   and FLUSH_START from other threads never wait for a frame.
//! - Serialized events (EOS, CAPS, SEGMENT, GAP, ...) and renegotiation (`set_info`) first
//!   drain the worker and push what it held, so nothing overtakes a frame. FLUSH_START only
//!   raises a flag (it arrives on another thread); FLUSH_STOP drains and discards.
//! - All pushes happen on the streaming thread.
//! - scale=0 (auto): caps arithmetic in `caps.rs`; the worker then produces exactly the
//!   negotiated output size (IMDN_AS: bicubic to it, then the network; IMDN/IMDN_RTC: the
//!   network, then a bicubic resize).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crossbeam_channel::Receiver;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::{
    GenerateOutputSuccess, InputBuffer, PrepareOutputBufferSuccess,
};
use gst_base::subclass::prelude::*;
use gst_video::VideoInfo;
use gst_video::subclass::prelude::*;

use super::backend::BuildError;
use super::caps::{self, MAX_SIDE};
use super::pixels::FORMATS;
use super::settings::{Settings, backend_spec};
use super::worker::{Conduct, Done, Job, MAX_DEPTH, Outcome, Worker};

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "imdnupscale",
        gst::DebugColorFlags::empty(),
        Some("IMDN super-resolution"),
    )
});

/// scale=0's factor when downstream leaves the size free, until a model says otherwise.
const DEFAULT_PREFERRED_SCALE: u32 = 2;
/// Frame duration assumed for latency when the framerate is unknown (0/1), as dav1d does.
const FALLBACK_FRAME_DURATION: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);

/// Between `start` and `stop`. Held only briefly: never while waiting for the worker.
struct State {
    worker: Worker,
    /// Shared with the worker: set between FLUSH_START and FLUSH_STOP.
    flushing: Arc<AtomicBool>,
    /// The backend runs on CUDA (auto depth 2 rather than 1).
    on_cuda: bool,
    /// What scale=0 multiplies by when downstream leaves the size free (from the model).
    preferred_scale: u32,
    /// Negotiated (input, output); `None` until caps arrive.
    infos: Option<(VideoInfo, VideoInfo)>,
    /// Frames kept in the worker beyond the one being waited for; `None` until negotiated.
    depth: Option<usize>,
    frame_duration: Option<gst::ClockTime>,
    /// Latest measured per-frame processing time (+5 %), and the one last reported.
    processing: gst::ClockTime,
    reported_processing: gst::ClockTime,
    in_flight: usize,
    next_seq: u64,
    next_out: u64,
}

#[derive(Default)]
pub struct ImdnUpscale {
    pub(super) settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// `frames-processed`: counts from `start` and stays readable after `stop`, which drops
    /// `state`.
    pub(super) frames_processed: AtomicU64,
}

/// A poisoned lock only means another thread panicked (GStreamer turned that into an error);
/// the data is still consistent enough to shut down.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises the pools' buffer counts by what the worker holds, so a bounded pool cannot run
/// dry while frames wait in the pipeline (a deadlock otherwise).
fn reserve_buffers(query: &mut gst::query::Allocation, extra: u32) {
    let pools: Vec<_> = query.allocation_pools().collect();
    for (i, (pool, size, min, max)) in pools.into_iter().enumerate() {
        let min = min.saturating_add(extra);
        let max = if max == 0 {
            0
        } else {
            max.saturating_add(extra).max(min)
        };
        query.set_nth_allocation_pool(i as u32, pool.as_ref(), size, min, max);
    }
}

fn build_error_message(e: BuildError) -> gst::ErrorMessage {
    let msg = e.to_string();
    match e {
        BuildError::NotFound(_) => gst::error_msg!(gst::ResourceError::NotFound, ("{}", msg)),
        BuildError::BadWeights(_) | BuildError::Device(_) => {
            gst::error_msg!(gst::ResourceError::OpenRead, ("{}", msg))
        }
        BuildError::Settings(_) => gst::error_msg!(gst::ResourceError::Settings, ("{}", msg)),
        BuildError::Thread(_) => gst::error_msg!(gst::ResourceError::Failed, ("{}", msg)),
    }
}

impl ImdnUpscale {
    pub(super) fn post_latency_message(&self) {
        let _ = self
            .obj()
            .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
    }

    /// Buffers the worker may hold at once: the frames in flight plus the one waited for.
    fn held_buffers(&self) -> u32 {
        let depth = lock(&self.state)
            .as_ref()
            .and_then(|s| s.depth)
            .unwrap_or(MAX_DEPTH);
        depth as u32 + 1
    }

    /// The worker's finished frames, to wait on without holding `state`.
    fn done_receiver(&self) -> Result<Option<(Receiver<Done>, usize)>, gst::FlowError> {
        let guard = lock(&self.state);
        let Some(state) = guard.as_ref() else {
            return Ok(None);
        };
        match state.worker.done_receiver() {
            Ok(rx) => Ok(Some((rx, state.in_flight))),
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                Err(gst::FlowError::Error)
            }
        }
    }

    /// The worker ended without returning a frame: nothing more will come back.
    fn worker_lost(&self, state: &mut State) -> gst::FlowError {
        state.in_flight = 0;
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ("the worker threads have stopped")
        );
        gst::FlowError::Error
    }

    /// Waits for every frame in the worker; pushes them downstream (`push`) or drops them.
    fn drain(&self, push: bool) -> Result<(), gst::FlowError> {
        let Some((done_rx, in_flight)) = self.done_receiver()? else {
            return Ok(());
        };
        let mut finished = Vec::with_capacity(in_flight);
        let mut lost = false;
        for _ in 0..in_flight {
            match done_rx.recv() {
                Ok(done) => finished.push(done),
                Err(_) => {
                    lost = true;
                    break;
                }
            }
        }
        {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if lost {
                return Err(self.worker_lost(state));
            }
            state.in_flight -= finished.len();
            for done in &finished {
                self.check_order(state, done)?;
            }
        }
        gst::debug!(
            CAT,
            imp = self,
            "draining {} frames (push: {push})",
            finished.len()
        );
        let mut result = Ok(());
        for done in finished {
            self.post_worker_warning(&done);
            match done.outcome {
                Outcome::Frame(buf) => {
                    self.frames_processed.fetch_add(1, Ordering::Relaxed);
                    if push && result.is_ok() {
                        result = self.obj().src_pad().push(buf).map(|_| ());
                    }
                }
                Outcome::Discarded => {}
                Outcome::Failed(msg) => {
                    if push && result.is_ok() {
                        gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", msg));
                        result = Err(gst::FlowError::Error);
                    }
                }
            }
        }
        result
    }

    /// The worker's note on a frame (e.g. it moved to the CPU after a CUDA error).
    fn post_worker_warning(&self, done: &Done) {
        if let Some(w) = &done.warning {
            gst::element_imp_warning!(self, gst::StreamError::Failed, ("{}", w));
        }
    }

    fn check_order(&self, state: &mut State, done: &Done) -> Result<(), gst::FlowError> {
        if done.seq != state.next_out {
            gst::element_imp_error!(
                self,
                gst::CoreError::Failed,
                [
                    "frame {} came back while {} was expected",
                    done.seq,
                    state.next_out
                ]
            );
            return Err(gst::FlowError::Error);
        }
        state.next_out += 1;
        Ok(())
    }

    /// depth × frame duration + processing time: what this element adds to the latency.
    fn own_latency(&self) -> gst::ClockTime {
        let settings = lock(&self.settings).clone();
        let guard = lock(&self.state);
        let state = guard.as_ref();
        let depth = state
            .and_then(|s| s.depth)
            .unwrap_or(match settings.max_frames_in_flight {
                d if d >= 0 => d as usize,
                _ => 1,
            });
        let frame = state
            .and_then(|s| s.frame_duration)
            .unwrap_or(FALLBACK_FRAME_DURATION);
        let measured = state.map_or(gst::ClockTime::ZERO, |s| s.processing);
        // saturating: processing-latency may be anything up to u64::MAX − 1 ns
        frame
            .saturating_mul(depth as u64)
            .saturating_add(settings.processing_latency.max(measured))
    }

    /// Records the worker's processing time; true when it grew clearly past what was last
    /// reported, so that a Latency message should be posted.
    fn update_processing_time(state: &mut State) -> bool {
        let measured = state.worker.max_processing_time();
        // 5% headroom over the running maximum
        let ns = u64::try_from(measured.as_nanos()).unwrap_or(u64::MAX) / 20 * 21;
        state.processing = gst::ClockTime::from_nseconds(ns);
        let reported = state.reported_processing.nseconds();
        if ns > reported.saturating_add(reported / 4) {
            state.reported_processing = state.processing;
            true
        } else {
            false
        }
    }

    /// Auto depth: 1 when upstream is live (latency matters), 2 on CUDA (keep the GPU fed
    /// while the CPU converts), else 1.
    fn resolve_depth(&self, setting: i32, on_cuda: bool) -> usize {
        if setting >= 0 {
            return (setting as usize).min(MAX_DEPTH);
        }
        let mut q = gst::query::Latency::new();
        let live = self.obj().sink_pad().peer_query(&mut q) && q.result().0;
        if live || !on_cuda { 1 } else { 2 }
    }

    /// Hands `inbuf` and a pool buffer for its result to the worker.
    fn submit(&self, inbuf: gst::Buffer) -> Result<(), gst::FlowError> {
        let infos = match lock(&self.state).as_ref() {
            Some(state) => state.infos.clone(),
            None => return Err(gst::FlowError::Flushing),
        };
        let Some((in_info, out_info)) = infos else {
            return Err(gst::FlowError::NotNegotiated);
        };
        // not under `state`: this calls transform_meta, which reads it
        let outbuf = match self.parent_prepare_output_buffer(InputBuffer::Readable(&inbuf))? {
            PrepareOutputBufferSuccess::Buffer(buf) => buf,
            PrepareOutputBufferSuccess::InputBuffer => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ["got the input buffer as output buffer (passthrough?)"]
                );
                return Err(gst::FlowError::Error);
            }
        };
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let job = Job {
            seq: state.next_seq,
            inbuf,
            outbuf,
            in_info,
            out_info,
        };
        if let Err(e) = state.worker.submit(job) {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
            return Err(gst::FlowError::Error);
        }
        state.next_seq += 1;
        state.in_flight += 1;
        Ok(())
    }
}

#[glib::object_subclass]
impl ObjectSubclass for ImdnUpscale {
    const NAME: &'static str = "GstImdnUpscale";
    type Type = super::ImdnUpscale;
    type ParentType = gst_video::VideoFilter;
}

impl GstObjectImpl for ImdnUpscale {}

impl ElementImpl for ImdnUpscale {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "IMDN upscaler",
                "Filter/Effect/Video/Scaler",
                "Neural super-resolution with IMDN (Hui et al., ACM MM 2019)",
                "The imdnupscale developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS.iter().copied())
                .width_range(1..=MAX_SIDE)
                .height_range(1..=MAX_SIDE)
                .field("interlace-mode", "progressive")
                .build();
            ["src", "sink"]
                .into_iter()
                .zip([gst::PadDirection::Src, gst::PadDirection::Sink])
                .filter_map(|(name, dir)| {
                    gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok()
                })
                .collect()
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for ImdnUpscale {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        if settings.scale == 1 {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("scale=1 is not an upscale: use 2, 3 or 4, or 0 for the size downstream asks")
            ));
        }
        let flushing = Arc::new(AtomicBool::new(false));
        let conduct = Conduct {
            fallback_to_cpu: settings.fallback_to_cpu,
            // the ParamSpec bounds it to 0–255
            steady: settings.steady.min(255) as u8,
        };
        let (worker, ready) = Worker::new(backend_spec(&settings), conduct, flushing.clone())
            .map_err(build_error_message)?;
        if let Some(warning) = &ready.warning {
            gst::element_imp_warning!(self, gst::ResourceError::OpenRead, ("{}", warning));
        }
        gst::info!(CAT, imp = self, "started: {}", ready.description);
        *lock(&self.state) = Some(State {
            worker,
            flushing,
            on_cuda: ready.on_cuda,
            preferred_scale: match ready.preferred_scale {
                0 => DEFAULT_PREFERRED_SCALE,
                f => f,
            },
            infos: None,
            depth: None,
            frame_duration: None,
            processing: gst::ClockTime::ZERO,
            reported_processing: gst::ClockTime::ZERO,
            in_flight: 0,
            next_seq: 0,
            next_out: 0,
        });
        self.frames_processed.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the worker (outside the lock) discards what it holds and joins its threads.
        let state = lock(&self.state).take();
        drop(state);
        gst::info!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        if caps.is_any() {
            return Some(filter.cloned().unwrap_or_else(gst::Caps::new_any));
        }
        let scale = lock(&self.settings).scale;
        let other = caps::transform(caps, direction, scale);
        gst::debug!(
            CAT,
            imp = self,
            "transformed {caps:?} in direction {direction:?} to {other:?}"
        );
        match filter {
            Some(filter) => Some(filter.intersect_with_mode(&other, gst::CapsIntersectMode::First)),
            None => Some(other),
        }
    }

    fn fixate_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        othercaps: gst::Caps,
    ) -> gst::Caps {
        let scale = lock(&self.settings).scale as i32;
        let mut othercaps = othercaps;
        othercaps.truncate();
        if let (Some(s), Some(out)) = (caps.structure(0), othercaps.make_mut().structure_mut(0)) {
            // keep the input's rate where downstream leaves a choice
            if let (Ok(v), true) = (
                s.get::<gst::Fraction>("framerate"),
                out.has_field("framerate"),
            ) {
                out.fixate_field_nearest_fraction("framerate", v);
            }
            if scale == 0 {
                let factor = lock(&self.state)
                    .as_ref()
                    .map_or(DEFAULT_PREFERRED_SCALE, |s| s.preferred_scale)
                    as i32;
                if let Err(e) = caps::fixate_auto_size(s, out, direction, factor) {
                    gst::element_imp_error!(self, gst::CoreError::Negotiation, ["{}", e]);
                }
            } else {
                for field in ["width", "height"] {
                    if let (Ok(v), true) = (s.get::<i32>(field), out.has_field(field)) {
                        let target = match direction {
                            gst::PadDirection::Sink => v.saturating_mul(scale),
                            _ => v / scale,
                        };
                        out.fixate_field_nearest_int(field, target);
                    }
                }
                // a uniform scale keeps the pixel shape
                if let (Ok(v), true) = (
                    s.get::<gst::Fraction>("pixel-aspect-ratio"),
                    out.has_field("pixel-aspect-ratio"),
                ) {
                    out.fixate_field_nearest_fraction("pixel-aspect-ratio", v);
                }
            }
        }
        othercaps.fixate();
        othercaps
    }

    fn propose_allocation(
        &self,
        decide_query: Option<&gst::query::Allocation>,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        self.parent_propose_allocation(decide_query, query)?;
        reserve_buffers(query, self.held_buffers());
        Ok(())
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        // before the parent configures the pool from the query
        reserve_buffers(query, self.held_buffers());
        self.parent_decide_allocation(query)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStart(_) => {
                // Arrives on another thread while streaming may wait for a frame: only flag it.
                if let Some(state) = lock(&self.state).as_ref() {
                    state.flushing.store(true, Ordering::Release);
                }
            }
            gst::EventView::FlushStop(_) => {
                let _ = self.drain(false);
                if let Some(state) = lock(&self.state).as_ref() {
                    state.flushing.store(false, Ordering::Release);
                }
            }
            _ if event.is_serialized() => {
                if let Err(e) = self.drain(true) {
                    gst::debug!(CAT, imp = self, "drain before {:?}: {e:?}", event.type_());
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let mut upstream = gst::query::Latency::new();
            if !self.obj().sink_pad().peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.own_latency();
            gst::debug!(
                CAT,
                imp = self,
                "upstream latency {min}..{max:?}, ours {ours}"
            );
            q.set(live, min.saturating_add(ours), max.opt_saturating_add(ours));
            return true;
        }
        BaseTransformImplExt::parent_query(self, direction, query)
    }

    /// Metas tied to the picture's geometry (regions of interest, overlay compositions...) are
    /// scaled with the frame; the base classes would drop them (GStreamer 1.22) or copy their
    /// input-size coordinates.
    fn transform_meta<'a>(
        &self,
        outbuf: &mut gst::BufferRef,
        meta: gst::MetaRef<'a, gst::Meta>,
        inbuf: &'a gst::BufferRef,
    ) -> bool {
        if !meta.has_tag::<gst_video::video_meta::tags::Size>()
            || meta.has_tag::<gst::meta::tags::Memory>()
        {
            return self.parent_transform_meta(outbuf, meta, inbuf);
        }
        if let Some((in_info, out_info)) = lock(&self.state).as_ref().and_then(|s| s.infos.as_ref())
        {
            let scale = gst_video::video_meta::VideoMetaTransformScale::new(in_info, out_info);
            if let Err(e) = meta.transform(outbuf, &scale) {
                gst::debug!(CAT, imp = self, "meta {} not scaled: {e}", meta.api());
            }
        }
        // done here (or dropped): the base class must not copy it unscaled
        false
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        if let Some(inbuf) = self.take_queued_buffer() {
            self.submit(inbuf)?;
        }
        let done_rx = {
            let guard = lock(&self.state);
            let Some(state) = guard.as_ref() else {
                return Err(gst::FlowError::Flushing);
            };
            // A fixed delay of `depth` frames: deterministic, and what the latency query reports.
            if state.in_flight <= state.depth.unwrap_or(0) {
                return Ok(GenerateOutputSuccess::NoOutput);
            }
            match state.worker.done_receiver() {
                Ok(rx) => rx,
                Err(e) => {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                    return Err(gst::FlowError::Error);
                }
            }
        };
        let received = done_rx.recv();
        let (done, grew) = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let Ok(done) = received else {
                return Err(self.worker_lost(state));
            };
            state.in_flight -= 1;
            self.check_order(state, &done)?;
            let grew = match done.outcome {
                Outcome::Frame(_) => {
                    self.frames_processed.fetch_add(1, Ordering::Relaxed);
                    Self::update_processing_time(state)
                }
                _ => false,
            };
            (done, grew)
        };
        if grew {
            gst::debug!(CAT, imp = self, "processing time grew");
            self.post_latency_message();
        }
        self.post_worker_warning(&done);
        match done.outcome {
            Outcome::Frame(buf) => Ok(GenerateOutputSuccess::Buffer(buf)),
            Outcome::Discarded => Err(gst::FlowError::Flushing),
            Outcome::Failed(msg) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", msg));
                Err(gst::FlowError::Error)
            }
        }
    }
}

impl VideoFilterImpl for ImdnUpscale {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &VideoInfo,
        outcaps: &gst::Caps,
        out_info: &VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let settings = lock(&self.settings).clone();
        let scale = settings.scale;
        if in_info.format() != out_info.format() {
            return Err(gst::loggable_error!(
                CAT,
                "output caps {outcaps} do not have the format of the input caps {incaps}"
            ));
        }
        if scale != 0
            && (Some(out_info.width()) != in_info.width().checked_mul(scale)
                || Some(out_info.height()) != in_info.height().checked_mul(scale))
        {
            return Err(gst::loggable_error!(
                CAT,
                "output caps {outcaps} are not the input caps {incaps} × {scale}"
            ));
        }
        // Old-size frames leave under the old caps and pool (the reconfigure path gets here
        // without a CAPS event, which would have drained already).
        if let Err(e) = self.drain(true) {
            gst::debug!(CAT, imp = self, "drain before new caps: {e:?}");
        }
        let on_cuda = lock(&self.state).as_ref().is_some_and(|s| s.on_cuda);
        // not under `state`: this queries upstream
        let depth = self.resolve_depth(settings.max_frames_in_flight, on_cuda);
        let fps = in_info.fps();
        let frame_duration = (fps.numer() > 0 && fps.denom() > 0).then(|| {
            gst::ClockTime::SECOND
                .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                .unwrap_or(FALLBACK_FRAME_DURATION)
        });
        let changed = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Err(gst::loggable_error!(CAT, "caps before start"));
            };
            let changed = state.depth != Some(depth) || state.frame_duration != frame_duration;
            state.infos = Some((in_info.clone(), out_info.clone()));
            state.depth = Some(depth);
            state.frame_duration = frame_duration;
            changed
        };
        gst::info!(
            CAT,
            imp = self,
            "{}x{} {:?} → {}x{}, {depth} frames in flight",
            in_info.width(),
            in_info.height(),
            in_info.format(),
            out_info.width(),
            out_info.height()
        );
        if changed {
            self.post_latency_message();
        }
        Ok(())
    }
}
