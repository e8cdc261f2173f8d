//! The `imdnupscale` element: a `GstVideoFilter` whose `generate_output` feeds the worker.
//!
//! - The streaming thread takes the queued input, gets a pool buffer for the output
//!   (`parent_prepare_output_buffer` copies timestamps, flags and metas), submits both to the
//!   worker, and returns a finished frame once more than `depth` frames are in flight. So frame
//!   k leaves when frame k + depth arrives: a fixed delay, which the latency query reports.
//! - Serialized events (EOS, CAPS, SEGMENT, GAP, ...) and renegotiation (`set_info`) first
//!   drain the worker and push what it held, so nothing overtakes a frame. FLUSH_START only
//!   raises a flag (it arrives on another thread); FLUSH_STOP drains and discards.
//! - All pushes happen on the streaming thread.
//! - scale=0 (auto): `transform_caps` widens width and height to any size (and the PAR to any
//!   ratio) in both directions; `fixate_caps` takes what downstream fixes and fills in the rest
//!   keeping the display aspect ratio ([`fixate_auto_size`]); the worker then produces exactly
//!   the negotiated output size (IMDN_AS: bicubic to it, then the network; IMDN/IMDN_RTC: the
//!   network, then a bicubic resize).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

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
use imdn::model::Variant;

use super::backend::{BackendSpec, BuildError, DeviceRequest, ImdnSpec, test_backend};
use super::pixels::FORMATS;
use super::worker::{Done, Job, MAX_DEPTH, Outcome, Worker};
use super::{Device, Model};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "imdnupscale",
        gst::DebugColorFlags::empty(),
        Some("IMDN super-resolution"),
    )
});

/// Largest side in the caps templates: keeps size arithmetic far from i32 overflow.
const MAX_SIDE: i32 = 32767;
const DEFAULT_SCALE: u32 = 2;
const DEFAULT_DEVICE_ID: u32 = 0;
const DEFAULT_TILE_SIZE: u32 = 0;
const DEFAULT_MAX_FRAMES_IN_FLIGHT: i32 = -1;
const DEFAULT_N_THREADS: u32 = 0;
const DEFAULT_PROCESSING_LATENCY: u64 = 0;
const DEFAULT_FALLBACK_TO_CPU: bool = true;
/// scale=0's factor when downstream leaves the size free, until a model says otherwise.
const DEFAULT_PREFERRED_SCALE: u32 = 2;
/// Frame duration assumed for latency when the framerate is unknown (0/1), as dav1d does.
const FALLBACK_FRAME_DURATION: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);

#[derive(Debug, Clone)]
struct Settings {
    /// 2–4, or 0: the output size comes from downstream caps.
    scale: u32,
    model: Model,
    model_path: Option<String>,
    device: Device,
    fallback_to_cpu: bool,
    device_id: u32,
    tile_size: u32,
    max_frames_in_flight: i32,
    n_threads: u32,
    processing_latency: gst::ClockTime,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scale: DEFAULT_SCALE,
            model: Model::default(),
            model_path: None,
            device: Device::default(),
            fallback_to_cpu: DEFAULT_FALLBACK_TO_CPU,
            device_id: DEFAULT_DEVICE_ID,
            tile_size: DEFAULT_TILE_SIZE,
            max_frames_in_flight: DEFAULT_MAX_FRAMES_IN_FLIGHT,
            n_threads: DEFAULT_N_THREADS,
            processing_latency: gst::ClockTime::from_nseconds(DEFAULT_PROCESSING_LATENCY),
        }
    }
}

/// Between `start` and `stop`; only the streaming thread (and start/stop) lock it, so it may
/// be held while waiting for the worker.
struct State {
    worker: Worker,
    /// Negotiated (input, output); `None` until caps arrive.
    infos: Option<(VideoInfo, VideoInfo)>,
    /// Frames kept in the worker beyond the one being waited for.
    depth: usize,
    in_flight: usize,
    next_seq: u64,
    next_out: u64,
    /// The backend runs on CUDA (auto depth 2 rather than 1).
    on_cuda: bool,
}

/// What the latency query needs; its own lock because queries come from any thread while the
/// streaming thread may hold `state` waiting for a frame.
#[derive(Debug, Default)]
struct LatencyInfo {
    /// `None` until negotiated.
    depth: Option<usize>,
    frame_duration: Option<gst::ClockTime>,
    /// Measured processing time last reported (to post a Latency message when it grows).
    reported_processing: gst::ClockTime,
}

#[derive(Default)]
pub struct ImdnUpscale {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    latency: Mutex<LatencyInfo>,
    flushing: Arc<AtomicBool>,
    frames_processed: AtomicU64,
    /// Latest measured per-frame processing time, ns (shared with the latency query).
    processing_ns: AtomicU64,
    /// What scale=0 multiplies by when downstream leaves the size free (from the model).
    preferred_scale: AtomicU32,
    /// The negotiated (input, output) infos for scaling metas: apart from `state`, whose lock
    /// is held while the output buffer (and so its metas) is prepared.
    meta_infos: Mutex<Option<(VideoInfo, VideoInfo)>>,
}

/// A poisoned lock only means another thread panicked (GStreamer turned that into an error);
/// the data is still consistent enough to shut down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One axis of the caps: a fixed size or a range with a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    Fixed(i32),
    Range(i32, i32, i32),
}

impl Dim {
    fn from_bounds(min: i64, max: i64, step: i64) -> Option<Dim> {
        let (min, max, step) = (
            i32::try_from(min).ok()?,
            i32::try_from(max).ok()?,
            i32::try_from(step).ok()?,
        );
        match min.cmp(&max) {
            std::cmp::Ordering::Less => Some(Dim::Range(min, max, step)),
            std::cmp::Ordering::Equal => Some(Dim::Fixed(min)),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// Sizes times `s` (sink → src). Ranges keep only the multiples of `s`.
    fn up(self, s: i64) -> Option<Dim> {
        match self {
            Dim::Fixed(v) => Dim::from_bounds(i64::from(v) * s, i64::from(v) * s, 1),
            Dim::Range(min, max, step) => {
                let step = i64::from(step) * s;
                let min = i64::from(min) * s;
                // clamp to i32 on a multiple of the step (GStreamer requires that)
                let max = (i64::from(max) * s).min(i64::from(i32::MAX) / step * step);
                Dim::from_bounds(min, max, step)
            }
        }
    }

    /// Sizes whose `s`-fold is in the set (src → sink); none for an indivisible fixed size.
    fn down(self, s: i64) -> Option<Dim> {
        match self {
            Dim::Fixed(v) => {
                let v = i64::from(v);
                (v % s == 0).then(|| Dim::from_bounds(v / s, v / s, 1))?
            }
            Dim::Range(min, max, step) => {
                let (min, max, step) = (i64::from(min), i64::from(max), i64::from(step));
                // v·s ≡ 0 (mod step) ⇔ v ≡ 0 (mod step / gcd(step, s))
                let m = step / gcd(step, s);
                let lo = (min.div_euclid(s) + i64::from(min.rem_euclid(s) != 0)).max(1);
                let lo = (lo + m - 1) / m * m;
                let hi = max.div_euclid(s) / m * m;
                Dim::from_bounds(lo, hi, m)
            }
        }
    }

    fn to_send_value(self) -> glib::SendValue {
        match self {
            Dim::Fixed(v) => v.to_send_value(),
            Dim::Range(min, max, 1) => gst::IntRange::new(min, max).to_send_value(),
            Dim::Range(min, max, step) => gst::IntRange::with_step(min, max, step).to_send_value(),
        }
    }

    fn from_value(v: &glib::SendValue) -> Option<Dim> {
        if let Ok(v) = v.get::<i32>() {
            return Some(Dim::Fixed(v));
        }
        let r = v.get::<gst::IntRange<i32>>().ok()?;
        Dim::from_bounds(r.min().into(), r.max().into(), r.step().max(1).into())
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}

/// Maps one size field; `None` when no value survives.
fn map_dim(value: &glib::SendValue, f: &dyn Fn(Dim) -> Option<Dim>) -> Option<glib::SendValue> {
    if let Ok(list) = value.get::<gst::List>() {
        let mapped: Vec<glib::SendValue> = list
            .iter()
            .filter_map(|v| Dim::from_value(v).and_then(f).map(Dim::to_send_value))
            .collect();
        return match mapped.len() {
            0 => None,
            1 => mapped.into_iter().next(),
            _ => Some(gst::List::new(mapped).to_send_value()),
        };
    }
    Dim::from_value(value).and_then(f).map(Dim::to_send_value)
}

/// Scales width and height of every structure; structures with no possible size are dropped.
fn scale_caps(caps: &gst::Caps, direction: gst::PadDirection, scale: u32) -> gst::Caps {
    let s = i64::from(scale);
    let f = |d: Dim| match direction {
        gst::PadDirection::Sink => d.up(s),
        _ => d.down(s),
    };
    let mut out = gst::Caps::new_empty();
    {
        let out = out.make_mut();
        for (structure, features) in caps.iter_with_features() {
            let mut st = structure.to_owned();
            let mut ok = true;
            for field in ["width", "height"] {
                if let Ok(v) = structure.value(field) {
                    match map_dim(v, &f) {
                        Some(nv) => st.set_value(field, nv),
                        None => ok = false,
                    }
                }
            }
            if ok {
                out.append_structure_full(st, Some(features.to_owned()));
            }
        }
    }
    out
}

/// scale=0: any size on the other side, and any pixel aspect ratio where one is given (the
/// fixation then picks one that keeps the display aspect ratio).
fn widen_caps(caps: &gst::Caps) -> gst::Caps {
    let mut out = gst::Caps::new_empty();
    for (structure, features) in caps.iter_with_features() {
        let mut st = structure.to_owned();
        st.set("width", gst::IntRange::new(1, MAX_SIDE));
        st.set("height", gst::IntRange::new(1, MAX_SIDE));
        if st.has_field("pixel-aspect-ratio") {
            st.set(
                "pixel-aspect-ratio",
                gst::FractionRange::new(
                    gst::Fraction::new(1, i32::MAX),
                    gst::Fraction::new(i32::MAX, 1),
                ),
            );
        }
        // structures that differed only in size collapse into one
        out.merge_structure_full(st, Some(features.to_owned()));
    }
    out
}

/// `a × b` of two fractions, reduced; `None` on a zero denominator or if it leaves i32
/// (`gst_util_fraction_multiply`'s contract).
fn frac_mul((an, ad): (i32, i32), (bn, bd): (i32, i32)) -> Option<(i32, i32)> {
    let (n, d) = (i64::from(an) * i64::from(bn), i64::from(ad) * i64::from(bd));
    if d == 0 {
        return None;
    }
    let g = gcd(n, d);
    let (n, d) = if d < 0 {
        (-n / g, -d / g)
    } else {
        (n / g, d / g)
    };
    Some((i32::try_from(n).ok()?, i32::try_from(d).ok()?))
}

/// `v × num / den` rounded, for positive `num / den`, at least 1.
fn scale_round(v: i32, (num, den): (i32, i32)) -> i32 {
    let (v, num, den) = (i64::from(v), i64::from(num), i64::from(den).max(1));
    let r = (v * num + den / 2) / den;
    r.clamp(1, i64::from(i32::MAX)) as i32
}

fn par_of(s: &gst::StructureRef) -> Option<(i32, i32)> {
    s.get::<gst::Fraction>("pixel-aspect-ratio")
        .ok()
        .map(|f| (f.numer(), f.denom()))
}

/// The value of `field` nearest `target` that `s` allows (`target` where `s` has no such
/// field, which allows anything).
fn nearest_int(s: &gst::StructureRef, field: &str, target: i32) -> i32 {
    if !s.has_field(field) {
        return target;
    }
    let mut tmp = s.to_owned();
    tmp.fixate_field_nearest_int(field, target);
    tmp.get::<i32>(field).unwrap_or(target)
}

/// The pixel aspect ratio nearest `target` that `s` allows.
fn nearest_par(s: &gst::StructureRef, target: (i32, i32)) -> (i32, i32) {
    if !s.has_field("pixel-aspect-ratio") {
        return target;
    }
    let mut tmp = s.to_owned();
    tmp.fixate_field_nearest_fraction("pixel-aspect-ratio", gst::Fraction::new(target.0, target.1));
    par_of(&tmp).unwrap_or(target)
}

/// Writes `par` unless it is the 1/1 that an absent field means anyway.
fn set_par(s: &mut gst::StructureRef, (n, d): (i32, i32)) {
    if s.has_field("pixel-aspect-ratio") || n != d {
        s.set("pixel-aspect-ratio", gst::Fraction::new(n, d));
    }
}

/// scale=0: fixates width, height and pixel aspect ratio of `outs` given the fixed `ins` on
/// the other pad, keeping the display aspect ratio (DAR) wherever `outs` leaves a choice.
///
/// The approach of videoconvertscale's `fixate_size`, with two differences that suit an
/// upscaler: a free size prefers `ins × factor` (`factor` = the model's scale; `ins ÷ factor`
/// when fixating the sink side) rather than the same size, and with one side fixed the other
/// is first derived from the DAR at the input's PAR (square pixels stay square; videoscale
/// keeps the input's other side and changes the PAR instead). When downstream fixes width,
/// height and PAR, they are used as given even if the picture is then stretched (as
/// videoscale does).
fn fixate_auto_size(
    ins: &gst::StructureRef,
    outs: &mut gst::StructureRef,
    direction: gst::PadDirection,
    factor: i32,
) -> Result<(), String> {
    let overflow = || "integer overflow computing the output size and aspect ratio".to_string();
    let (Ok(from_w), Ok(from_h)) = (ins.get::<i32>("width"), ins.get::<i32>("height")) else {
        return Err(format!("no fixed size in {ins}"));
    };
    let from_par = par_of(ins).unwrap_or((1, 1));
    let fixed_par = match (outs.value("pixel-aspect-ratio"), direction) {
        (Ok(v), _) => v
            .get::<gst::Fraction>()
            .ok()
            .map(|f| (f.numer(), f.denom())),
        // as videoconvertscale: upstream of us, a missing PAR means 1/1
        (Err(_), gst::PadDirection::Src) => {
            outs.set("pixel-aspect-ratio", gst::Fraction::new(1, 1));
            Some((1, 1))
        }
        (Err(_), _) => None,
    };
    let pref = |v: i32| match direction {
        gst::PadDirection::Sink => v.saturating_mul(factor).min(MAX_SIDE),
        _ => (v / factor).max(1),
    };
    let (pref_w, pref_h) = (pref(from_w), pref(from_h));
    let dar = frac_mul((from_w, from_h), from_par).ok_or_else(overflow)?;
    // the PAR to aim for: downstream's if fixed, else the input's (or the nearest allowed)
    let par = fixed_par.unwrap_or_else(|| nearest_par(outs, from_par));
    // output width / height at that PAR
    let ratio = frac_mul(dar, (par.1, par.0)).ok_or_else(overflow)?;
    let inverse = (ratio.1, ratio.0);
    let w = outs.get::<i32>("width").ok();
    let h = outs.get::<i32>("height").ok();
    match (w, h) {
        (Some(w), Some(h)) => {
            if fixed_par.is_none() {
                let keep = frac_mul(dar, (h, w)).ok_or_else(overflow)?;
                let p = nearest_par(outs, keep);
                set_par(outs, p);
            }
        }
        (Some(w), None) => {
            let want = scale_round(w, inverse);
            let set_h = nearest_int(outs, "height", want);
            outs.set("height", set_h);
            if fixed_par.is_none() {
                let p = if set_h == want {
                    par
                } else {
                    nearest_par(outs, frac_mul(dar, (set_h, w)).ok_or_else(overflow)?)
                };
                set_par(outs, p);
            }
        }
        (None, Some(h)) => {
            let want = scale_round(h, ratio);
            let set_w = nearest_int(outs, "width", want);
            outs.set("width", set_w);
            if fixed_par.is_none() {
                let p = if set_w == want {
                    par
                } else {
                    nearest_par(outs, frac_mul(dar, (h, set_w)).ok_or_else(overflow)?)
                };
                set_par(outs, p);
            }
        }
        (None, None) => {
            // 1. the preferred height, the width from the DAR
            let h1 = nearest_int(outs, "height", pref_h);
            let want_w = scale_round(h1, ratio);
            let w1 = nearest_int(outs, "width", want_w);
            // 2. the preferred width, the height from the DAR
            let w2 = nearest_int(outs, "width", pref_w);
            let want_h = scale_round(w2, inverse);
            let h2 = nearest_int(outs, "height", want_h);
            // the first that keeps the DAR, else the one whose DAR is closer
            let second = w1 != want_w
                && (h2 == want_h
                    || i64::from(w2) * i64::from((h2 - want_h).abs())
                        < i64::from((w1 - want_w).abs()) * i64::from(h1));
            let (mut ow, mut oh, mut p) = if second { (w2, h2, par) } else { (w1, h1, par) };
            // 3. neither keeps the DAR at that PAR: keep the preferred size, adjust the PAR
            if w1 != want_w && h2 != want_h && fixed_par.is_none() {
                let (sw, sh) = (
                    nearest_int(outs, "width", pref_w),
                    nearest_int(outs, "height", pref_h),
                );
                let keep = frac_mul(dar, (sh, sw)).ok_or_else(overflow)?;
                if nearest_par(outs, keep) == keep {
                    (ow, oh, p) = (sw, sh, keep);
                }
            }
            outs.set("width", ow);
            outs.set("height", oh);
            if fixed_par.is_none() {
                set_par(outs, p);
            }
        }
    }
    Ok(())
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

impl ImdnUpscale {
    /// Buffers the worker may hold at once: the frames in flight plus the one waited for.
    fn held_buffers(&self) -> u32 {
        let depth = lock(&self.latency).depth.unwrap_or(MAX_DEPTH);
        depth as u32 + 1
    }

    /// Waits for every frame in the worker; pushes them downstream (`push`) or drops them.
    fn drain(&self, push: bool) -> Result<(), gst::FlowError> {
        let finished: Vec<Done> = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Ok(());
            };
            let mut finished = Vec::with_capacity(state.in_flight);
            while state.in_flight > 0 {
                match state.worker.recv() {
                    Ok(done) => {
                        state.in_flight -= 1;
                        finished.push(done);
                    }
                    Err(e) => {
                        state.in_flight = 0;
                        gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                        return Err(gst::FlowError::Error);
                    }
                }
            }
            for done in &finished {
                self.check_order(state, done)?;
            }
            finished
        };
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
        let info = lock(&self.latency);
        let depth = info.depth.unwrap_or(match settings.max_frames_in_flight {
            d if d >= 0 => d as usize,
            _ => 1,
        });
        let frame = info.frame_duration.unwrap_or(FALLBACK_FRAME_DURATION);
        let measured = gst::ClockTime::from_nseconds(self.processing_ns.load(Ordering::Relaxed));
        // saturating: processing-latency may be anything up to u64::MAX − 1 ns
        frame
            .saturating_mul(depth as u64)
            .saturating_add(settings.processing_latency.max(measured))
    }

    /// Posts a Latency message when frames take clearly longer than last reported.
    fn update_processing_time(&self, state: &State) {
        let measured = state.worker.max_processing_time();
        // 5% headroom over the running maximum
        let ns = u64::try_from(measured.as_nanos()).unwrap_or(u64::MAX) / 20 * 21;
        self.processing_ns.store(ns, Ordering::Relaxed);
        let post = {
            let mut info = lock(&self.latency);
            let reported = info.reported_processing.nseconds();
            if ns > reported.saturating_add(reported / 4) {
                info.reported_processing = gst::ClockTime::from_nseconds(ns);
                true
            } else {
                false
            }
        };
        if post {
            gst::debug!(CAT, imp = self, "processing time grew to {} ns", ns);
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
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
}

#[glib::object_subclass]
impl ObjectSubclass for ImdnUpscale {
    const NAME: &'static str = "GstImdnUpscale";
    type Type = super::ImdnUpscale;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for ImdnUpscale {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("scale")
                    .nick("Scale")
                    .blurb(
                        "Upscaling factor: the output is exactly input × scale (needs ×scale \
                            IMDN or IMDN_RTC weights, or IMDN_AS weights). 0 = auto: the output \
                            size comes from downstream caps (e.g. a capsfilter after the \
                            element), keeping the display aspect ratio where downstream leaves \
                            the PAR free (with width, height and PAR all fixed downstream, they \
                            are used as given); IMDN_AS upscales bicubically to that size and \
                            refines it, IMDN/IMDN_RTC run at their scale and are then resized \
                            bicubically to it (also below the input size). Without a downstream \
                            size, auto gives input × the model's scale (×2 for IMDN_AS). \
                            1 is refused",
                    )
                    .minimum(0)
                    .maximum(4)
                    .default_value(DEFAULT_SCALE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model", Model::default())
                    .nick("Model")
                    .blurb(
                        "Which network to run. Without model-path, the project's shipped \
                            weights: auto picks IMDN_RTC on the CPU (the 64-channel IMDN takes \
                            seconds per HD frame there) and on CUDA whichever shipped IMDN or \
                            IMDN_RTC scores higher on Set5 at the scale; scale=0 runs the ×2 \
                            model, resized to the downstream size (IMDN_AS: model=as). With \
                            model-path: the network the file must hold (start fails naming both \
                            if it holds another); auto takes whatever it holds",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-path")
                    .nick("Model path")
                    .blurb(
                        "Weights file (safetensors or the authors' .pth; the network, IMDN, \
                            IMDN_RTC or IMDN_AS, is detected from it) or a shipped model's name \
                            (imdn_rtc_x2..4, imdn_x2..4, imdn_as). Unset: the shipped model \
                            for scale and model. Test backends, not for real use: \
                            \"test:nearest\" (nearest neighbour instead of the network), \
                            \"test:error\", \"test:panic\", \"test:fail-once\" (a stand-in \
                            for CUDA whose first frame fails), \"test:slow:MS\" (nearest, MS \
                            milliseconds a frame), \"test:error-after:N\" (nearest, then an \
                            error from frame N on)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("device", Device::default())
                    .nick("Device")
                    .blurb(
                        "Where the network runs; auto uses CUDA when this build has it \
                            and a device answers (warning and CPU otherwise)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("device-id")
                    .nick("Device ID")
                    .blurb("CUDA device ordinal (device=cuda, or auto in a CUDA build)")
                    .maximum(255)
                    .default_value(DEFAULT_DEVICE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fallback-to-cpu")
                    .nick("Fall back to the CPU")
                    .blurb(
                        "On a runtime error of the network on CUDA (out of memory, a failed \
                            kernel), rebuild it on the CPU, post a warning and go on with the \
                            same frame; off: the error stops the stream",
                    )
                    .default_value(DEFAULT_FALLBACK_TO_CPU)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("tile-size")
                    .nick("Tile size")
                    .blurb(
                        "0 runs the whole frame at once; otherwise frames are cut into \
                            overlapping tiles of this many input pixels (bounds memory; must \
                            exceed the 16-pixel overlap)",
                    )
                    .maximum(MAX_SIDE as u32)
                    .default_value(DEFAULT_TILE_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("max-frames-in-flight")
                    .nick("Max frames in flight")
                    .blurb(
                        "Frames held in the worker pipeline: 0 is synchronous (lowest \
                            latency), more overlaps conversion with inference and adds that \
                            many frame durations of latency; -1 = auto (1 when live or on the \
                            CPU, 2 on CUDA)",
                    )
                    .minimum(-1)
                    .maximum(MAX_DEPTH as i32)
                    .default_value(DEFAULT_MAX_FRAMES_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("n-threads")
                    .nick("Threads")
                    .blurb(
                        "CPU threads of the network's kernels, a pool of this element's own \
                            (0 = RAYON_NUM_THREADS if set, else one per core)",
                    )
                    .maximum(1024)
                    .default_value(DEFAULT_N_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("processing-latency")
                    .nick("Processing latency")
                    .blurb(
                        "Floor for the per-frame processing time reported in the latency \
                            query, in ns; the measured time (+5%) is used when larger",
                    )
                    .maximum(u64::MAX - 1)
                    .default_value(DEFAULT_PROCESSING_LATENCY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("frames-processed")
                    .nick("Frames processed")
                    .blurb("Frames upscaled since the element started")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        // The ParamSpecs check types and ranges before we get here.
        match pspec.name() {
            "scale" => settings.scale = value.get().unwrap_or(DEFAULT_SCALE),
            "model" => settings.model = value.get().unwrap_or_default(),
            "model-path" => settings.model_path = value.get().unwrap_or(None),
            "fallback-to-cpu" => {
                settings.fallback_to_cpu = value.get().unwrap_or(DEFAULT_FALLBACK_TO_CPU)
            }
            "device" => settings.device = value.get().unwrap_or_default(),
            "device-id" => settings.device_id = value.get().unwrap_or(DEFAULT_DEVICE_ID),
            "tile-size" => settings.tile_size = value.get().unwrap_or(DEFAULT_TILE_SIZE),
            "max-frames-in-flight" => {
                settings.max_frames_in_flight = value.get().unwrap_or(DEFAULT_MAX_FRAMES_IN_FLIGHT)
            }
            "n-threads" => settings.n_threads = value.get().unwrap_or(DEFAULT_N_THREADS),
            "processing-latency" => {
                let ns: u64 = value.get().unwrap_or(DEFAULT_PROCESSING_LATENCY);
                settings.processing_latency = gst::ClockTime::from_nseconds(ns);
                drop(settings);
                let _ = self
                    .obj()
                    .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "scale" => settings.scale.to_value(),
            "model" => settings.model.to_value(),
            "model-path" => settings.model_path.to_value(),
            "fallback-to-cpu" => settings.fallback_to_cpu.to_value(),
            "device" => settings.device.to_value(),
            "device-id" => settings.device_id.to_value(),
            "tile-size" => settings.tile_size.to_value(),
            "max-frames-in-flight" => settings.max_frames_in_flight.to_value(),
            "n-threads" => settings.n_threads.to_value(),
            "processing-latency" => settings.processing_latency.nseconds().to_value(),
            "frames-processed" => self.frames_processed.load(Ordering::Relaxed).to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for ImdnUpscale {}

impl ElementImpl for ImdnUpscale {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "IMDN upscaler",
                "Filter/Effect/Video/Scaler",
                "Neural super-resolution with IMDN (Hui et al., ACM MM 2019): output = input × \
                 scale, or (scale=0) the size downstream asks for. Progressive video only (put \
                 deinterlace before it). Odd input sizes give odd output sizes with scale=3, \
                 which some encoders refuse.",
                "imdn contributors",
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
        let model_path = settings.model_path.as_deref().filter(|p| !p.is_empty());
        let spec = match model_path.and_then(test_backend) {
            Some(test) => test,
            None => BackendSpec::Imdn(ImdnSpec {
                path: model_path.map(Into::into),
                device: match settings.device {
                    Device::Auto => DeviceRequest::Auto(settings.device_id as usize),
                    Device::Cpu => DeviceRequest::Cpu,
                    Device::Cuda => DeviceRequest::Cuda(settings.device_id as usize),
                },
                tile: settings.tile_size as usize,
                threads: settings.n_threads as usize,
                scale: settings.scale as usize,
                expect: match settings.model {
                    Model::Auto => None,
                    Model::Imdn => Some(Variant::Imdn),
                    Model::Rtc => Some(Variant::Rtc),
                    Model::As => Some(Variant::As),
                },
            }),
        };
        self.flushing.store(false, Ordering::Release);
        let (worker, ready) = Worker::new(spec, settings.fallback_to_cpu, self.flushing.clone())
            .map_err(|e| {
                let msg = e.to_string();
                match e {
                    BuildError::NotFound(_) => {
                        gst::error_msg!(gst::ResourceError::NotFound, ("{}", msg))
                    }
                    BuildError::BadWeights(_) => {
                        gst::error_msg!(gst::ResourceError::OpenRead, ("{}", msg))
                    }
                    BuildError::Device(_) => {
                        gst::error_msg!(gst::ResourceError::OpenRead, ("{}", msg))
                    }
                    BuildError::Settings(_) => {
                        gst::error_msg!(gst::ResourceError::Settings, ("{}", msg))
                    }
                    BuildError::Thread(_) => {
                        gst::error_msg!(gst::ResourceError::Failed, ("{}", msg))
                    }
                }
            })?;
        if let Some(warning) = &ready.warning {
            gst::element_imp_warning!(self, gst::ResourceError::OpenRead, ("{}", warning));
        }
        gst::info!(CAT, imp = self, "started: {}", ready.description);
        let on_cuda = ready.on_cuda;
        self.preferred_scale
            .store(ready.preferred_scale, Ordering::Relaxed);
        self.frames_processed.store(0, Ordering::Relaxed);
        self.processing_ns.store(0, Ordering::Relaxed);
        *lock(&self.latency) = LatencyInfo::default();
        *lock(&self.state) = Some(State {
            worker,
            infos: None,
            depth: 0,
            in_flight: 0,
            next_seq: 0,
            next_out: 0,
            on_cuda,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the worker discards what it holds and joins its threads.
        let state = lock(&self.state).take();
        drop(state);
        *lock(&self.latency) = LatencyInfo::default();
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
        let other = match scale {
            0 => widen_caps(caps),
            s => scale_caps(caps, direction, s),
        };
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
                let factor = match self.preferred_scale.load(Ordering::Relaxed) {
                    0 => DEFAULT_PREFERRED_SCALE,
                    f => f,
                } as i32;
                if let Err(e) = fixate_auto_size(s, out, direction, factor) {
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
                self.flushing.store(true, Ordering::Release);
            }
            gst::EventView::FlushStop(_) => {
                let _ = self.drain(false);
                self.flushing.store(false, Ordering::Release);
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
        if let Some((in_info, out_info)) = lock(&self.meta_infos).as_ref() {
            let scale = gst_video::video_meta::VideoMetaTransformScale::new(in_info, out_info);
            if let Err(e) = meta.transform(outbuf, &scale) {
                gst::debug!(CAT, imp = self, "meta {} not scaled: {e}", meta.api());
            }
        }
        // done here (or dropped): the base class must not copy it unscaled
        false
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        if let Some(inbuf) = self.take_queued_buffer() {
            let Some((in_info, out_info)) = state.infos.clone() else {
                return Err(gst::FlowError::NotNegotiated);
            };
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
        }
        // A fixed delay of `depth` frames: deterministic, and what the latency query reports.
        if state.in_flight <= state.depth {
            return Ok(GenerateOutputSuccess::NoOutput);
        }
        let done = match state.worker.recv() {
            Ok(done) => done,
            Err(e) => {
                state.in_flight = 0;
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        state.in_flight -= 1;
        self.check_order(state, &done)?;
        self.post_worker_warning(&done);
        match done.outcome {
            Outcome::Frame(buf) => {
                self.frames_processed.fetch_add(1, Ordering::Relaxed);
                self.update_processing_time(state);
                Ok(GenerateOutputSuccess::Buffer(buf))
            }
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
        let scale = lock(&self.settings).scale;
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
        let setting = lock(&self.settings).max_frames_in_flight;
        let on_cuda = lock(&self.state).as_ref().is_some_and(|s| s.on_cuda);
        let depth = self.resolve_depth(setting, on_cuda);
        let fps = in_info.fps();
        let frame_duration = (fps.numer() > 0 && fps.denom() > 0).then(|| {
            gst::ClockTime::SECOND
                .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                .unwrap_or(FALLBACK_FRAME_DURATION)
        });
        let changed = {
            let mut info = lock(&self.latency);
            let changed = info.depth != Some(depth) || info.frame_duration != frame_duration;
            info.depth = Some(depth);
            info.frame_duration = frame_duration;
            changed
        };
        {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Err(gst::loggable_error!(CAT, "caps before start"));
            };
            state.infos = Some((in_info.clone(), out_info.clone()));
            state.depth = depth;
        }
        *lock(&self.meta_infos) = Some((in_info.clone(), out_info.clone()));
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
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_scale_up() {
        assert_eq!(Dim::Fixed(33).up(3), Some(Dim::Fixed(99)));
        assert_eq!(Dim::Fixed(i32::MAX).up(2), None);
        assert_eq!(Dim::Range(1, 32767, 1).up(2), Some(Dim::Range(2, 65534, 2)));
        assert_eq!(
            Dim::Range(1, i32::MAX, 1).up(3),
            Some(Dim::Range(3, i32::MAX / 3 * 3, 3))
        );
    }

    fn fixate(ins: &str, outs: &str, direction: gst::PadDirection) -> Result<String, String> {
        gst::init().map_err(|e| e.to_string())?;
        let ins: gst::Structure = ins.parse().map_err(|e| format!("{e}"))?;
        let mut outs: gst::Structure = outs.parse().map_err(|e| format!("{e}"))?;
        fixate_auto_size(&ins, &mut outs, direction, 2)?;
        let get = |f: &str| outs.get::<i32>(f).map_or("?".into(), |v| v.to_string());
        let par = par_of(&outs).map_or("-".into(), |(n, d)| format!("{n}/{d}"));
        Ok(format!("{}x{} {par}", get("width"), get("height")))
    }

    #[test]
    fn auto_size_fixation() {
        use gst::PadDirection::{Sink, Src};
        let free = "video/x-raw,width=[1,32767],height=[1,32767]";
        let free_par = "video/x-raw,width=[1,32767],height=[1,32767],\
                        pixel-aspect-ratio=[1/2147483647,2147483647/1]";
        let vga = "video/x-raw,width=640,height=480";
        assert_eq!(fixate(vga, free, Sink).unwrap(), "1280x960 -");
        assert_eq!(fixate(vga, free_par, Sink).unwrap(), "1280x960 1/1");
        // fixating the sink side from the src side: ÷ 2, and a missing PAR means 1/1
        assert_eq!(fixate(vga, free, Src).unwrap(), "320x240 1/1");
        // sizes capped by downstream: the DAR still holds
        let capped = "video/x-raw,width=[1,800],height=[1,32767]";
        assert_eq!(fixate(vga, capped, Sink).unwrap(), "800x600 -");
        // height fixed: the width from the DAR, rounded (square pixels kept)
        let h100 = "video/x-raw,width=[1,32767],height=100,\
                        pixel-aspect-ratio=[1/2147483647,2147483647/1]";
        assert_eq!(fixate(vga, h100, Sink).unwrap(), "133x100 1/1");
        // width and height fixed, PAR free: the PAR keeps the DAR
        let both = "video/x-raw,width=1000,height=700,\
                    pixel-aspect-ratio=[1/2147483647,2147483647/1]";
        assert_eq!(fixate(vga, both, Sink).unwrap(), "1000x700 14/15");
        // odd DAR with a fixed PAR and fixed width: nearest height
        let par11 = "video/x-raw,width=1001,height=[1,32767],pixel-aspect-ratio=1/1";
        assert_eq!(fixate(vga, par11, Sink).unwrap(), "1001x751 1/1");
        // overflow in the DAR is an error, not a panic
        let huge = "video/x-raw,width=32767,height=1,pixel-aspect-ratio=2147483647/1";
        assert!(fixate(huge, free, Sink).is_err());
    }

    #[test]
    fn dims_scale_down() {
        assert_eq!(Dim::Fixed(66).down(2), Some(Dim::Fixed(33)));
        assert_eq!(Dim::Fixed(63).down(2), None);
        assert_eq!(
            Dim::Range(1, 32767, 1).down(2),
            Some(Dim::Range(1, 16383, 1))
        );
        assert_eq!(
            Dim::Range(2, 65534, 2).down(2),
            Some(Dim::Range(1, 32767, 1))
        );
        // multiples of 4 that are 2·v: v even
        assert_eq!(Dim::Range(4, 40, 4).down(2), Some(Dim::Range(2, 20, 2)));
        assert_eq!(Dim::Range(5, 7, 1).down(4), None);
        assert_eq!(Dim::Range(5, 8, 1).down(4), Some(Dim::Fixed(2)));
    }
}
