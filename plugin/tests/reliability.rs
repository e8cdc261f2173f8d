//! Reliability of `imdnupscale`: long streams at every depth, state cycles (threads, fds, RSS),
//! a seek storm, renegotiation every few frames, fuzzed frames / properties / states / caps /
//! weights files, a live stream that cannot keep up, and a fault mid-stream.
//!
//! This is the CI subset: small frames and moderate counts, the whole file well under a
//! minute on 2 cores. `examples/soak.rs` runs the long versions (`--frames`, `--seeks`,
//! `--fuzz`, `--cycles`).
//!
//! Ground rules, all so that a failing test fails instead of hanging or aborting:
//! - every wait has a deadline (`timed_pop_filtered`, condvars with timeouts, seeks and
//!   `set_state(NULL)` run on a helper thread that is waited for with a timeout);
//! - pad probes only record what passes (a panic there would unwind into C and abort the
//!   process); the test thread asserts afterwards;
//! - pipelines go to NULL when dropped, also while an assertion unwinds (disposing a playing
//!   pipeline is a GLib critical, fatal under `G_DEBUG=fatal_warnings`);
//! - invalid property values are checked against the ParamSpecs and never set (GLib would
//!   print a warning, fatal under `G_DEBUG=fatal_warnings`);
//! - `Harness::set_src_caps` g_asserts that the caps were accepted: where caps may be refused,
//!   the caps event is pushed by hand.
//!
//! Thread, fd and RSS counts are per process: nextest runs each test in its own process, and
//! under `cargo test` the tests of this file take a lock so that they do not run side by side.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use gst::glib;
use gst::glib::translate::{ToGlibPtr, ToGlibPtrMut};
use gst::prelude::*;
use gst_check::Harness;
use gst_video::{VideoFormat, VideoFrameExt, VideoInfo};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst::init");
        gstimdn::plugin_register_static().expect("register the imdn plugin");
    });
}

/// Held by every test: under `cargo test` the process-wide counts (threads, fds, RSS) would
/// otherwise include other tests running at the same time. Free under nextest.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    lock(&SERIAL)
}

/// A lock that survives a panicking holder (a failed test must not fail the next one).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bound on any single wait for the pipeline (generous: the machine may be loaded).
const WAIT: Duration = Duration::from_secs(20);
/// The frame duration of a 30/1 stream.
const FRAME_30: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);

/// A fixed xorshift stream: every random case is reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `n / d`.
    fn chance(&mut self, n: u64, d: u64) -> bool {
        self.below(d) < n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A pipeline that is taken to NULL when dropped (within a bound: a hang there is reported,
/// not waited for).
struct Pipeline(gst::Pipeline);

impl Pipeline {
    fn launch(desc: &str) -> Pipeline {
        let p = gst::parse::launch(desc)
            .unwrap_or_else(|e| panic!("{desc}: {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        Pipeline(p)
    }

    fn by(&self, name: &str) -> gst::Element {
        self.0.by_name(name).unwrap_or_else(|| panic!("no {name}"))
    }

    fn bus(&self) -> gst::Bus {
        self.0.bus().expect("bus")
    }
}

impl std::ops::Deref for Pipeline {
    type Target = gst::Pipeline;
    fn deref(&self) -> &gst::Pipeline {
        &self.0
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Err(e) = stop_within(&self.0, WAIT) {
            // the helper thread keeps a reference: the pipeline is leaked, not disposed playing
            eprintln!("dropping the pipeline: {e}");
        }
    }
}

/// `set_state(NULL)` on a helper thread; `Err` if it fails or has not returned within `bound`
/// (a hang). Joins the helper when it returned, so thread counts stay exact.
fn stop_within(p: &gst::Pipeline, bound: Duration) -> Result<Duration, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = p.clone();
    let t0 = Instant::now();
    let handle = std::thread::spawn(move || {
        let ok = p2.set_state(gst::State::Null).is_ok();
        let _ = tx.send(ok);
    });
    match rx.recv_timeout(bound) {
        Ok(true) => {
            let _ = handle.join();
            Ok(t0.elapsed())
        }
        Ok(false) => {
            let _ = handle.join();
            Err("set_state(NULL) failed".into())
        }
        Err(_) => Err(format!("set_state(NULL) has not returned after {bound:?}")),
    }
}

/// The next message of `types` within `timeout`. An ERROR (always watched for) is returned
/// as `Err` unless asked for.
fn wait_for(
    bus: &gst::Bus,
    types: &[gst::MessageType],
    timeout: Duration,
) -> Result<gst::Message, String> {
    let mut all = types.to_vec();
    all.push(gst::MessageType::Error);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &all,
        )
        .ok_or_else(|| format!("no {types:?} within {timeout:?}"))?;
    if msg.type_() == gst::MessageType::Error && !types.contains(&gst::MessageType::Error) {
        return Err(describe(&msg));
    }
    Ok(msg)
}

fn describe(msg: &gst::Message) -> String {
    match msg.view() {
        gst::MessageView::Error(e) => format!(
            "error from {}: {} ({:?})",
            msg.src().map(|s| s.path_string()).unwrap_or_default(),
            e.error(),
            e.debug()
        ),
        _ => format!("{msg:?}"),
    }
}

/// Errors posted so far (without waiting).
fn pending_errors(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Error]))
        .map(|m| describe(&m))
        .collect()
}

/// Polls `cond` every 2 ms until it holds or `timeout` passes.
fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The PTS of every buffer passing `pad`, in order (buffer lists included).
fn record_pts(pad: &gst::Pad) -> Arc<Mutex<Vec<Option<gst::ClockTime>>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            if let Some(b) = info.buffer() {
                lock(&l).push(b.pts());
            } else if let Some(list) = info.buffer_list() {
                lock(&l).extend(list.iter().map(|b| b.pts()));
            }
            gst::PadProbeReturn::Ok
        },
    )
    .expect("probe");
    log
}

/// Counts the buffers passing `pad`.
fn count_buffers(pad: &gst::Pad) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        n2.fetch_add(1, Ordering::SeqCst);
        gst::PadProbeReturn::Ok
    })
    .expect("probe");
    n
}

fn pad(elem: &gst::Element, name: &str) -> gst::Pad {
    elem.static_pad(name).expect("pad")
}

/// Threads of this process.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Open file descriptors of this process (the directory handle itself included, always 1).
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Threads of the element's worker (`imdn-pre`, `imdn-infer`, `imdn-post`) alive now.
fn worker_threads() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|name| name.starts_with("imdn-"))
        .count()
}

/// Resident set size in KiB.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A per-process path in the temp directory (tests may run in parallel processes).
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gstimdn-reliability-{}-{name}", std::process::id()))
}

/// A bus of our own for an element outside a pipeline. Dropped, it is set flushing, which
/// drops the messages still queued: each holds a reference to the element, which holds the bus,
/// a cycle that would otherwise leak both (and the bus's file descriptors). A pipeline's bus is
/// flushed at NULL the same way.
struct OwnBus(gst::Bus);

impl OwnBus {
    fn on(elem: &gst::Element) -> OwnBus {
        let bus = gst::Bus::new();
        elem.set_bus(Some(&bus));
        OwnBus(bus)
    }
}

impl std::ops::Deref for OwnBus {
    type Target = gst::Bus;
    fn deref(&self) -> &gst::Bus {
        &self.0
    }
}

impl Drop for OwnBus {
    fn drop(&mut self) {
        self.0.set_flushing(true);
    }
}

/// Removes the path when dropped.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FORMATS: [VideoFormat; 12] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::I420,
    VideoFormat::Nv12,
];

fn is_yuv(f: VideoFormat) -> bool {
    matches!(f, VideoFormat::I420 | VideoFormat::Nv12)
}

/// Byte positions inside a packed pixel: (bytes per pixel, alpha byte, padding byte).
fn packed_layout(f: VideoFormat) -> (usize, Option<usize>, Option<usize>) {
    let finfo = gst_video::VideoFormatInfo::from_format(f);
    let bpp = finfo.pixel_stride()[0] as usize;
    let alpha = finfo.has_alpha().then(|| finfo.poffset()[3] as usize);
    let pad = (bpp == 4 && alpha.is_none())
        .then(|| (0..4).find(|i| !finfo.poffset()[..3].contains(&(*i as u32))))
        .flatten();
    (bpp, alpha, pad)
}

/// (visible bytes per row, rows) of each plane.
fn plane_geometry(f: VideoFormat, w: usize, h: usize) -> Vec<(usize, usize)> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match f {
        VideoFormat::I420 => vec![(w, h), (cw, ch), (cw, ch)],
        VideoFormat::Nv12 => vec![(w, h), (2 * cw, ch)],
        f => vec![(w * packed_layout(f).0, h)],
    }
}

/// A hash of the frame seed and a position: the content of frame `seed`.
fn px(seed: u64, x: usize, y: usize, c: usize) -> u8 {
    let mut v = seed
        ^ (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ (c as u64).wrapping_mul(0x1656_67b1_9e37_79f9);
    v ^= v >> 29;
    v = v.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    v ^= v >> 32;
    v as u8
}

/// The content of a test frame: packed formats get `px` colour bytes, alpha 200 and padding
/// 0x5a; YUV formats get luma `16 + px % 220` (no clipping on the way through RGB) and flat
/// chroma 128, so that luma survives YUV → RGB → YUV within ±2.
fn content(f: VideoFormat, seed: u64, plane: usize, xb: usize, y: usize) -> u8 {
    if is_yuv(f) {
        return if plane == 0 {
            16 + px(seed, xb, y, 0) % 220
        } else {
            128
        };
    }
    let (bpp, alpha, pad) = packed_layout(f);
    let c = xb % bpp;
    if Some(c) == alpha {
        200
    } else if Some(c) == pad {
        0x5a
    } else {
        px(seed, xb / bpp, y, c)
    }
}

/// Where each plane starts and its stride, in a buffer of `size` bytes.
struct Layout {
    offsets: Vec<usize>,
    strides: Vec<usize>,
    size: usize,
    /// Described by a VideoMeta (else the default layout of the caps).
    meta: bool,
}

/// The default layout of `info`, or (with `rng`) a random padded one: strides longer than a
/// row by 0..=40 bytes (odd ones included), gaps of 0..=24 bytes before each plane.
fn layout(info: &VideoInfo, rng: Option<&mut XorShift>) -> Layout {
    let Some(rng) = rng else {
        return Layout {
            offsets: info.offset().to_vec(),
            strides: info.stride().iter().map(|&s| s as usize).collect(),
            size: info.size(),
            meta: false,
        };
    };
    let geo = plane_geometry(info.format(), info.width() as usize, info.height() as usize);
    let (mut offsets, mut strides, mut at) = (Vec::new(), Vec::new(), 0usize);
    for (row, rows) in geo {
        at += rng.below(25) as usize;
        let stride = row + rng.below(41) as usize;
        offsets.push(at);
        strides.push(stride);
        at += stride * rows;
    }
    Layout {
        offsets,
        strides,
        size: at + rng.below(9) as usize,
        meta: true,
    }
}

/// A frame of `info` holding `content(seed)`, every byte outside the visible area 0xee.
fn make_frame(info: &VideoInfo, seed: u64, lay: &Layout, pts: gst::ClockTime) -> gst::Buffer {
    let f = info.format();
    let geo = plane_geometry(f, info.width() as usize, info.height() as usize);
    let mut buf = gst::Buffer::with_size(lay.size).expect("buffer");
    {
        let b = buf.get_mut().expect("writable");
        {
            let mut map = b.map_writable().expect("map");
            map.fill(0xee);
            for (p, &(row, rows)) in geo.iter().enumerate() {
                for y in 0..rows {
                    let start = lay.offsets[p] + y * lay.strides[p];
                    for (xb, byte) in map[start..start + row].iter_mut().enumerate() {
                        *byte = content(f, seed, p, xb, y);
                    }
                }
            }
        }
        if lay.meta {
            let strides: Vec<i32> = lay.strides.iter().map(|&s| s as i32).collect();
            gst_video::VideoMeta::add_full(
                b,
                gst_video::VideoFrameFlags::empty(),
                f,
                info.width(),
                info.height(),
                &lay.offsets,
                &strides,
            )
            .expect("video meta");
        }
        b.set_pts(pts);
        b.set_duration(gst::ClockTime::from_mseconds(10));
    }
    buf
}

/// Checks that `out` (described by `oinfo`) is the nearest-neighbour upscale of frame `seed`
/// at `(w, h)`: every pixel (`all`) or 3000 random ones. Returns the first mismatch.
fn check_nearest(
    out: &gst::BufferRef,
    oinfo: &VideoInfo,
    (w, h): (usize, usize),
    seed: u64,
    all: bool,
    rng: &mut XorShift,
) -> Result<(), String> {
    let f = oinfo.format();
    let (ow, oh) = (oinfo.width() as usize, oinfo.height() as usize);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(out, oinfo)
        .map_err(|e| format!("cannot map the output: {e}"))?;
    let data = frame.plane_data(0).map_err(|e| e.to_string())?;
    let stride = frame.plane_stride()[0] as usize;
    let check = |x: usize, y: usize| -> Result<(), String> {
        let (xi, yi) = (x * w / ow, y * h / oh);
        if is_yuv(f) {
            let got = data[y * stride + x];
            let want = content(f, seed, 0, xi, yi);
            if (i32::from(got) - i32::from(want)).abs() > 2 {
                return Err(format!("luma at {x},{y}: {got}, expected {want}±2"));
            }
            return Ok(());
        }
        let (bpp, _, pad) = packed_layout(f);
        for c in 0..bpp {
            let got = data[y * stride + x * bpp + c];
            let want = if Some(c) == pad {
                0xff
            } else {
                content(f, seed, 0, xi * bpp + c, yi)
            };
            if got != want {
                return Err(format!("byte {c} at {x},{y}: {got}, expected {want}"));
            }
        }
        Ok(())
    };
    if all {
        for y in 0..oh {
            for x in 0..ow {
                check(x, y)?;
            }
        }
    } else {
        for _ in 0..3000 {
            check(rng.below(ow as u64) as usize, rng.below(oh as u64) as usize)?;
        }
    }
    Ok(())
}

fn output_info(elem: &gst::Element) -> VideoInfo {
    let caps = pad(elem, "src").current_caps().expect("output caps");
    VideoInfo::from_caps(&caps).expect("output info")
}

/// Starts a stream on the harness by hand: stream-start, caps, segment. Returns whether the
/// caps were accepted (`Harness::set_src_caps` would abort the process when they are not).
fn start_stream(h: &mut Harness, caps: &gst::Caps, id: u64) -> bool {
    assert!(h.push_event(gst::event::StreamStart::new(&format!("fuzz-{id}"))));
    if !h.push_event(gst::event::Caps::new(caps)) {
        return false;
    }
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    true
}

// ---------------------------------------------------------------------------------------------
// 1. soak: every frame once, in order; state cycles; RSS
// ---------------------------------------------------------------------------------------------

/// What went in and came out of the element's pads during a run, in order.
struct Run {
    ins: Vec<Option<gst::ClockTime>>,
    outs: Vec<Option<gst::ClockTime>>,
    /// `frames-processed` at EOS.
    processed: u64,
}

/// `frames` frames of `format` at 32×18 through the element at `depth`.
fn run_frames(format: &str, depth: i32, frames: u64) -> Result<Run, String> {
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers={frames} ! \
         video/x-raw,format={format},width=32,height=18,framerate=30/1 ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight={depth} ! \
         fakesink sync=false"
    ));
    let up = p.by("up");
    let ins = record_pts(&pad(&up, "sink"));
    let outs = record_pts(&pad(&up, "src"));
    p.set_state(gst::State::Playing)
        .map_err(|e| format!("{e}"))?;
    wait_for(
        &p.bus(),
        &[gst::MessageType::Eos],
        WAIT + Duration::from_millis(20 * frames),
    )?;
    let processed = up.property::<u64>("frames-processed");
    stop_within(&p, WAIT)?;
    let (ins, outs) = (lock(&ins).clone(), lock(&outs).clone());
    Ok(Run {
        ins,
        outs,
        processed,
    })
}

#[test]
fn soak_every_frame_comes_out_once_in_order_at_every_depth() {
    let _serial = serial();
    init();
    // 300 frames per depth, three formats per depth: all twelve formats once
    let per_run = 100u64;
    for (i, depth) in [0i32, 1, 2, 8].into_iter().enumerate() {
        for format in &FORMATS[3 * i..3 * i + 3] {
            let format = format.to_str();
            let Run {
                ins,
                outs,
                processed,
            } = run_frames(format, depth, per_run).unwrap_or_else(|e| panic!("{format}: {e}"));
            let what = format!("{format} depth {depth}");
            assert_eq!(ins.len() as u64, per_run, "{what}: frames in");
            // videotestsrc at 30/1: PTS i × 10⁹ / 30, rounded down
            for (i, pts) in ins.iter().enumerate() {
                let want = gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / 30);
                assert_eq!(*pts, Some(want), "{what}: input {i}");
            }
            assert_eq!(outs.len(), ins.len(), "{what}: frames out");
            assert_eq!(outs, ins, "{what}: out = in, frame by frame");
            assert!(
                outs.windows(2).all(|w| w[0] < w[1]),
                "{what}: PTS strictly increasing"
            );
            assert_eq!(processed, per_run, "{what}: frames-processed");
        }
    }
}

/// One NULL → PLAYING → NULL cycle with frames flowing: even cycles play 10 frames to EOS,
/// odd ones go to NULL after 5 frames came out, with frames still in the worker.
fn state_cycle(p: &Pipeline, out: &AtomicU64, i: u64) -> Result<(), String> {
    let src = p.by("src");
    out.store(0, Ordering::SeqCst);
    let to_eos = i.is_multiple_of(2);
    src.set_property("num-buffers", if to_eos { 10i32 } else { -1 });
    p.set_state(gst::State::Playing)
        .map_err(|e| format!("cycle {i}: PLAYING: {e}"))?;
    let bus = p.bus();
    if to_eos {
        wait_for(&bus, &[gst::MessageType::Eos], WAIT).map_err(|e| format!("cycle {i}: {e}"))?;
        let n = out.load(Ordering::SeqCst);
        if n != 10 {
            return Err(format!("cycle {i}: {n} frames out of 10"));
        }
    } else if !poll_until(WAIT, || out.load(Ordering::SeqCst) >= 5) {
        return Err(format!("cycle {i}: no 5 frames within {WAIT:?}"));
    }
    let errors = pending_errors(&bus);
    if !errors.is_empty() {
        return Err(format!("cycle {i}: {errors:?}"));
    }
    stop_within(p, WAIT).map_err(|e| format!("cycle {i}: {e}"))?;
    // stop() joins the worker: none of its threads may survive NULL
    let left = worker_threads();
    if left != 0 {
        return Err(format!("cycle {i}: {left} worker threads alive at NULL"));
    }
    Ok(())
}

#[test]
fn state_cycles_leak_no_threads_and_no_fds() {
    let _serial = serial();
    init();
    let p = Pipeline::launch(
        "videotestsrc name=src ! video/x-raw,format=I420,width=32,height=18,framerate=30/1 ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight=2 ! \
         fakesink sync=false",
    );
    let out = count_buffers(&pad(&p.by("up"), "src"));
    // warm-up: both kinds of cycle once (GStreamer's clock, pools and thread pool come up)
    for i in 0..2 {
        state_cycle(&p, &out, i).unwrap();
    }
    let (threads, fds) = (thread_count(), fd_count());
    let cycles = 30;
    for i in 2..2 + cycles {
        state_cycle(&p, &out, i).unwrap();
    }
    let (threads_after, fds_after) = (thread_count(), fd_count());
    eprintln!("{cycles} cycles: threads {threads} → {threads_after}, fds {fds} → {fds_after}");
    // GStreamer's streaming threads come from a shared GThreadPool, which keeps up to two
    // unused threads around and ends idle ones after a while: a slack of 2 threads. The worker's
    // own threads are checked exactly at every cycle (none at NULL).
    assert!(
        threads_after <= threads + 2,
        "threads grew: {threads} → {threads_after}"
    );
    assert!(fds_after <= fds, "fds grew: {fds} → {fds_after}");
}

#[test]
fn rss_stays_flat_over_a_long_stream() {
    let _serial = serial();
    init();
    let (warm_up, frames) = (500u64, 3000u64);
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers={} pattern=ball ! \
         video/x-raw,format=I420,width=64,height=36,framerate=30/1 ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight=2 ! \
         fakesink sync=false",
        warm_up + frames
    ));
    // RSS after the warm-up frame, sampled on the streaming thread as it passes
    let samples = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let s = samples.clone();
    let n = AtomicU64::new(0);
    pad(&p.by("up"), "src")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            if i.is_multiple_of(500)
                && let Some(kb) = rss_kb()
            {
                lock(&s).push((i, kb));
            }
            gst::PadProbeReturn::Ok
        })
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    // a hang detector only: about 4 s on an idle 2-core machine, over 60 s when starved
    wait_for(&p.bus(), &[gst::MessageType::Eos], WAIT * 15).unwrap();
    let samples = lock(&samples).clone();
    eprintln!("RSS (frame, KiB): {samples:?}");
    assert_eq!(samples.len() as u64, (warm_up + frames) / 500);
    let base = samples[0].1;
    let last = samples.last().unwrap().1;
    let growth = last.saturating_sub(base);
    assert!(
        growth < 5 * 1024,
        "RSS grew by {growth} KiB over {frames} frames after the warm-up: {samples:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. seek storm
// ---------------------------------------------------------------------------------------------

/// A 5 s, 64×36, 30 fps H.264 MP4 with a keyframe every 10 frames.
fn make_mp4(path: &Path) {
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers=150 ! video/x-raw,width=64,height=36,framerate=30/1 ! \
         x264enc key-int-max=10 ! mp4mux ! filesink location={}",
        path.display()
    ));
    p.set_state(gst::State::Playing).unwrap();
    wait_for(&p.bus(), &[gst::MessageType::Eos], WAIT * 3).expect("writing the MP4");
}

/// What the element's src pad saw during the seek storm.
#[derive(Default)]
struct SeekLog {
    /// The seek the test thread is about to issue (set before the seek call).
    pending: u64,
    /// The seek whose FLUSH_STOP passed last: buffers after it belong to it.
    generation: u64,
    flush_stops: u64,
    /// The last SEGMENT: PTS are buffer times, the seek target is a stream time (they differ
    /// by the MP4 edit list that x264's B-frame delay leaves).
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// (generation, stream time, arrival) of every buffer.
    buffers: Vec<(u64, Option<gst::ClockTime>, Instant)>,
    /// Generations that reached EOS.
    eos: Vec<u64>,
}

/// Seeks `n` times to seeded random positions; returns each seek's completion time (from the
/// seek call to the first buffer at the new position leaving the element).
fn seek_storm(n: u64, seed: u64) -> Result<Vec<Duration>, String> {
    let dir = TempPath(temp_path("seek"));
    std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
    let mp4 = dir.0.join("clip.mp4");
    make_mp4(&mp4);
    let p = Pipeline::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight=3 ! \
         fakesink sync=false",
        mp4.display()
    ));
    let log = Arc::new((Mutex::new(SeekLog::default()), Condvar::new()));
    let l = log.clone();
    pad(&p.by("up"), "src")
        .add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |_, info| {
                let (m, cv) = &*l;
                let mut log = lock(m);
                if let Some(b) = info.buffer() {
                    let g = log.generation;
                    let t = b
                        .pts()
                        .and_then(|pts| log.segment.as_ref()?.to_stream_time(pts));
                    log.buffers.push((g, t, Instant::now()));
                } else if let Some(ev) = info.event() {
                    match ev.view() {
                        gst::EventView::FlushStop(_) => {
                            log.generation = log.pending;
                            log.flush_stops += 1;
                            log.segment = None;
                        }
                        gst::EventView::Segment(s) => {
                            log.segment = s.segment().downcast_ref::<gst::ClockTime>().cloned();
                        }
                        gst::EventView::Eos(_) => {
                            let g = log.generation;
                            log.eos.push(g);
                        }
                        _ => {}
                    }
                }
                cv.notify_all();
                gst::PadProbeReturn::Ok
            },
        )
        .unwrap();
    let bus = p.bus();
    p.set_state(gst::State::Paused).map_err(|e| e.to_string())?;
    wait_for(&bus, &[gst::MessageType::AsyncDone], WAIT)?;
    p.set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;

    let mut rng = XorShift::new(seed);
    let mut targets = vec![gst::ClockTime::ZERO];
    let mut times = Vec::new();
    let (m, cv) = &*log;
    for k in 1..=n {
        // anywhere in the first 4.8 s (the clip is 5 s), to the nanosecond
        let target = gst::ClockTime::from_nseconds(rng.below(4_800_000_000));
        targets.push(target);
        lock(m).pending = k;
        let t0 = Instant::now();
        // the seek call itself on a helper thread: a deadlock in it fails the test
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = p.0.clone();
        std::thread::spawn(move || {
            let r = p2.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, target);
            let _ = tx.send(r.is_ok());
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(true) => {}
            Ok(false) => return Err(format!("seek {k} to {target} refused")),
            Err(_) => return Err(format!("seek {k} to {target}: the call hangs")),
        }
        // the first buffer after this seek's flush
        let deadline = t0 + Duration::from_secs(5);
        let mut guard = lock(m);
        let arrival = loop {
            if let Some(&(_, _, at)) = guard.buffers.iter().find(|(g, ..)| *g == k) {
                break at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "seek {k} to {target}: no buffer within 5 s ({} flush stops seen)",
                    guard.flush_stops
                ));
            }
            guard = cv
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(guard);
        times.push(arrival.saturating_duration_since(t0));
        // the next seek right away (frames of this one in flight) or a little later (the
        // clip plays out in about 100 ms: some seeks come after EOS)
        std::thread::sleep(Duration::from_millis(rng.below(4) * 10));
        let errors = pending_errors(&bus);
        if !errors.is_empty() {
            return Err(format!("after seek {k}: {errors:?}"));
        }
    }
    // the last seek plays to the end of the clip
    {
        let deadline = Instant::now() + WAIT;
        let mut guard = lock(m);
        while !guard.eos.contains(&n) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no EOS after the last seek".into());
            }
            guard = cv
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    let errors = pending_errors(&bus);
    if !errors.is_empty() {
        return Err(format!("{errors:?}"));
    }
    stop_within(&p, WAIT)?;

    let log = lock(m);
    if log.flush_stops != n {
        return Err(format!("{} flush stops for {n} seeks", log.flush_stops));
    }
    // per seek, in stream time: the first buffer is the frame holding the target, later ones
    // only go forward
    for k in 1..=n {
        let target = targets[k as usize];
        let pts: Vec<gst::ClockTime> = log
            .buffers
            .iter()
            .filter(|(g, ..)| *g == k)
            .map(|(_, t, _)| t.ok_or(format!("seek {k}: a buffer without stream time")))
            .collect::<Result<_, _>>()?;
        let Some(&first) = pts.first() else {
            return Err(format!("seek {k}: no buffer"));
        };
        let earliest = target.saturating_sub(FRAME_30);
        if let Some(stale) = pts.iter().find(|&&t| t < earliest) {
            return Err(format!(
                "seek {k} to {target}: a frame at {stale} (before the target − 1 frame) after \
                 the flush: {:?}",
                &pts[..pts.len().min(8)]
            ));
        }
        if first > target + FRAME_30 {
            return Err(format!(
                "seek {k} to {target}: the first frame is at {first}, later than the frame \
                 holding the target"
            ));
        }
        if !pts.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!("seek {k} to {target}: PTS not increasing: {pts:?}"));
        }
    }
    Ok(times)
}

#[test]
fn seek_storm_completes_every_seek_without_stale_frames() {
    let _serial = serial();
    init();
    let n = 30;
    let mut times = seek_storm(n, 0x5eed_0001).unwrap();
    times.sort();
    eprintln!(
        "{n} seeks: completion median {:?}, max {:?}",
        times[times.len() / 2],
        times.last().unwrap()
    );
    assert_eq!(times.len() as u64, n);
}

// ---------------------------------------------------------------------------------------------
// 3. renegotiation
// ---------------------------------------------------------------------------------------------

/// What left the element's src pad, in order.
enum Out {
    Caps(gst::Caps),
    Buffer(gst::Buffer),
}

fn record_stream(pad: &gst::Pad) -> Arc<Mutex<Vec<Out>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(b) = info.buffer() {
                lock(&l).push(Out::Buffer(b.clone()));
            } else if let Some(ev) = info.event()
                && let gst::EventView::Caps(c) = ev.view()
            {
                lock(&l).push(Out::Caps(c.caps_owned()));
            }
            gst::PadProbeReturn::Ok
        },
    )
    .expect("probe");
    log
}

#[test]
fn renegotiation_every_few_frames_pairs_each_frame_with_its_caps() {
    let _serial = serial();
    init();
    let specs: [(VideoFormat, u32, u32, (i32, i32)); 14] = [
        (VideoFormat::Rgb, 16, 9, (30, 1)),
        (VideoFormat::I420, 33, 17, (25, 1)),
        (VideoFormat::Nv12, 8, 8, (60, 1)),
        (VideoFormat::Bgrx, 33, 17, (30000, 1001)),
        (VideoFormat::Xrgb, 16, 9, (24, 1)),
        (VideoFormat::Rgba, 8, 8, (30, 1)),
        (VideoFormat::Nv12, 33, 17, (50, 1)),
        (VideoFormat::Abgr, 16, 9, (25, 1)),
        (VideoFormat::Bgr, 8, 8, (15, 1)),
        (VideoFormat::I420, 16, 9, (30, 1)),
        (VideoFormat::Argb, 33, 17, (30, 1)),
        (VideoFormat::Rgbx, 8, 8, (30, 1)),
        (VideoFormat::Bgra, 16, 9, (60000, 1001)),
        (VideoFormat::Xbgr, 33, 17, (30, 1)),
    ];
    let mut rng = XorShift::new(0x5eed_0003);
    for (scale, depth) in [(2u32, 2i32), (3, 2), (4, 8)] {
        let elem = gst::ElementFactory::make("imdnupscale")
            .property("model-path", "test:nearest")
            .property("scale", scale)
            .property("max-frames-in-flight", depth)
            .build()
            .unwrap();
        let mut h = Harness::with_element(&elem, Some("sink"), Some("src"));
        let log = record_stream(&pad(&elem, "src"));
        // (input info, seed, pts) of every frame pushed
        let mut pushed: Vec<(VideoInfo, u64, gst::ClockTime)> = Vec::new();
        let mut last = usize::MAX;
        for _ in 0..40 {
            let mut i = rng.below(specs.len() as u64) as usize;
            if i == last {
                i = (i + 1) % specs.len();
            }
            last = i;
            let (format, w, hgt, (n, d)) = specs[i];
            let info = VideoInfo::builder(format, w, hgt)
                .fps(gst::Fraction::new(n, d))
                .build()
                .unwrap();
            h.set_src_caps(info.to_caps().unwrap());
            for _ in 0..rng.range(1, 4) {
                let k = pushed.len() as u64;
                let pts = gst::ClockTime::from_mseconds(10 * k);
                let lay = layout(&info, None);
                h.push(make_frame(&info, k, &lay, pts))
                    .unwrap_or_else(|e| panic!("frame {k} ({info:?}): {e:?}"));
                pushed.push((info.clone(), k, pts));
            }
        }
        assert!(h.push_event(gst::event::Eos::new()));
        let log = std::mem::take(&mut *lock(&log));
        let what = format!("scale {scale} depth {depth}");
        let mut caps: Option<VideoInfo> = None;
        let mut n_out = 0usize;
        for item in &log {
            match item {
                Out::Caps(c) => caps = Some(VideoInfo::from_caps(c).unwrap()),
                Out::Buffer(buf) => {
                    let (ref iinfo, seed, pts) = pushed[n_out];
                    let oinfo = caps.as_ref().expect("caps before the first buffer");
                    let at = format!("{what}, frame {n_out} ({iinfo:?})");
                    assert_eq!(buf.pts(), Some(pts), "{at}: order");
                    // the caps in force are those of the frame's own input, × scale
                    assert_eq!(oinfo.format(), iinfo.format(), "{at}: format");
                    assert_eq!(
                        (oinfo.width(), oinfo.height()),
                        (iinfo.width() * scale, iinfo.height() * scale),
                        "{at}: size"
                    );
                    assert_eq!(oinfo.fps(), iinfo.fps(), "{at}: framerate");
                    assert!(buf.size() >= oinfo.size(), "{at}: buffer size");
                    let size = (iinfo.width() as usize, iinfo.height() as usize);
                    check_nearest(buf, oinfo, size, seed, true, &mut rng)
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                    n_out += 1;
                }
            }
        }
        assert_eq!(n_out, pushed.len(), "{what}: frames out");
        assert_eq!(
            elem.property::<u64>("frames-processed"),
            pushed.len() as u64
        );
    }
}

#[test]
fn auto_scale_follows_a_long_sequence_of_capsfilter_changes() {
    let _serial = serial();
    init();
    // the RECONFIGURE path: every new downstream size drains the old-size frames first
    let sizes = [
        (100, 75),
        (40, 30),
        (128, 96),
        (64, 48),
        (33, 25),
        (200, 150),
        (90, 60),
    ];
    let every = 6usize;
    let total = every * sizes.len() + 4;
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers={total} ! video/x-raw,format=RGB,width=64,height=48 ! \
         imdnupscale scale=0 model-path=test:nearest max-frames-in-flight=2 ! \
         capsfilter name=cf caps=video/x-raw,width=100,height=75 ! \
         appsink name=out sync=false max-buffers=1"
    ));
    let sink = p.by("out");
    let cf = p.by("cf");
    p.set_state(gst::State::Playing).unwrap();
    let mut got = Vec::new();
    // (sample index at the change, size asked for)
    let mut changes = vec![(0usize, sizes[0])];
    loop {
        let sample = sink
            .emit_by_name::<Option<gst::Sample>>("try-pull-sample", &[&(WAIT.as_nanos() as u64)]);
        let Some(sample) = sample else {
            assert!(sink.property::<bool>("eos"), "no sample within {WAIT:?}");
            break;
        };
        let oinfo = VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let buf = sample.buffer().unwrap();
        assert!(buf.size() >= oinfo.size());
        // a frame written at another size would say so in its VideoMeta
        if let Some(meta) = buf.meta::<gst_video::VideoMeta>() {
            assert_eq!(
                (meta.width(), meta.height()),
                (oinfo.width(), oinfo.height()),
                "sample {} carries a frame of another size than its caps",
                got.len()
            );
        }
        got.push((oinfo.width() as i32, oinfo.height() as i32));
        if got.len() % every == 0 && got.len() / every < sizes.len() {
            let (w, h) = sizes[got.len() / every];
            let caps: gst::Caps = format!("video/x-raw,width={w},height={h}").parse().unwrap();
            cf.set_property("caps", &caps);
            changes.push((got.len(), (w, h)));
        }
    }
    assert!(pending_errors(&p.bus()).is_empty());
    assert_eq!(got.len(), total, "{got:?}");
    // the sizes come in the order asked, each once, never back
    let mut seen: Vec<(i32, i32)> = got.clone();
    seen.dedup();
    assert_eq!(seen, sizes, "{got:?}");
    // and each within a few frames of the change (appsink holds 1, the element 2 + 1)
    for &(at, size) in &changes {
        let first = got.iter().position(|&s| s == size).unwrap();
        assert!(
            first >= at && first <= at + 5,
            "{size:?} asked at sample {at}, first seen at {first}: {got:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. fuzzing
// ---------------------------------------------------------------------------------------------

/// A property value outside the ParamSpec's range (never set: GLib would warn).
fn invalid_value(elem: &gst::Element, rng: &mut XorShift) -> (&'static str, glib::Value) {
    match rng.below(8) {
        0 => (
            "scale",
            (rng.range(5, u64::from(u32::MAX)) as u32).to_value(),
        ),
        1 => (
            "max-frames-in-flight",
            if rng.chance(1, 2) {
                (-(rng.range(2, 1 << 31) as i64)) as i32
            } else {
                rng.range(9, i32::MAX as u64) as i32
            }
            .to_value(),
        ),
        2 => (
            "tile-size",
            (rng.range(32768, u64::from(u32::MAX)) as u32).to_value(),
        ),
        3 => (
            "n-threads",
            (rng.range(1025, u64::from(u32::MAX)) as u32).to_value(),
        ),
        4 => (
            "device-id",
            (rng.range(256, u64::from(u32::MAX)) as u32).to_value(),
        ),
        5 => ("processing-latency", u64::MAX.to_value()),
        n => {
            // an enum value that is no member of the enum
            let name = if n == 6 { "model" } else { "device" };
            let pspec = elem.find_property(name).unwrap();
            let mut v = glib::Value::from_type(pspec.value_type());
            // SAFETY: `v` holds an enum type; g_value_set_enum stores any int without checking
            unsafe {
                glib::gobject_ffi::g_value_set_enum(
                    v.to_glib_none_mut().0,
                    rng.range(4, 1 << 20) as i32,
                );
            }
            (name, v)
        }
    }
}

/// Whether `g_object_set_property` would take `value` for `pspec`: GLib validates a copy with
/// `g_param_value_validate`, which returns TRUE when it had to change (clamp) the value, and
/// then refuses to set it with a warning. (glib-rs has `ParamSpec::value_is_valid` only with its
/// `v2_74` feature, which this crate does not enable.)
fn paramspec_accepts(pspec: &glib::ParamSpec, value: &glib::Value) -> bool {
    let mut copy = value.clone();
    // SAFETY: both pointers are valid for the call; `copy` is ours to modify
    let changed = unsafe {
        glib::gobject_ffi::g_param_value_validate(pspec.to_glib_none().0, copy.to_glib_none_mut().0)
    };
    changed == glib::ffi::GFALSE
}

fn serialized(elem: &gst::Element, name: &str) -> String {
    elem.property_value(name)
        .serialize()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("{:?}", elem.property_value(name)))
}

/// Valid random properties: (name, value) pairs.
fn valid_properties(
    elem: &gst::Element,
    rng: &mut XorShift,
    large: bool,
) -> Vec<(&'static str, glib::Value)> {
    let scale: u32 = if large {
        2
    } else {
        *rng.pick(&[0, 2, 2, 3, 4])
    };
    // one random value per property, drawn before `pick` borrows the generator
    let (tile, threads, id) = (rng.below(32768), rng.below(1025), rng.below(256));
    let latency = (rng.below(100_000_000), rng.below(u64::MAX));
    let mut props = vec![
        ("scale", scale.to_value()),
        (
            "max-frames-in-flight",
            (rng.range(0, 9) as i32 - 1).to_value(),
        ),
        (
            "tile-size",
            (*rng.pick(&[0u64, 17, 256, 32767, tile]) as u32).to_value(),
        ),
        (
            "n-threads",
            (*rng.pick(&[0u64, 1, 1024, threads]) as u32).to_value(),
        ),
        ("device-id", (*rng.pick(&[0u64, 255, id]) as u32).to_value()),
        ("fallback-to-cpu", rng.chance(1, 2).to_value()),
        (
            "processing-latency",
            // the whole range, its top included (u64::MAX is GST_CLOCK_TIME_NONE)
            (*rng.pick(&[0u64, latency.0, latency.1, u64::MAX - 1])).to_value(),
        ),
    ];
    for (name, nicks) in [
        ("device", &["auto", "cpu", "cuda"][..]),
        ("model", &["auto", "imdn", "rtc", "as"][..]),
    ] {
        let t = elem.find_property(name).unwrap().value_type();
        let enum_class = glib::EnumClass::with_type(t).unwrap();
        let nick: &&str = rng.pick(nicks);
        let v = enum_class.to_value_by_nick(nick).unwrap();
        props.push((name, v));
    }
    props
}

/// What the fuzz cases covered.
#[derive(Debug, Default)]
struct FuzzStats {
    cases: u64,
    /// Cases whose (ParamSpec-valid) settings the element refuses at start.
    refused_at_start: u64,
    invalid_values: u64,
    frames_in: u64,
    frames_out: u64,
    /// Stops (READY or NULL) with frames in the worker.
    restarts: u64,
    with_meta: u64,
    auto_scale_fixed_downstream: u64,
    large: u64,
}

/// One fuzz case; returns a description of what failed.
fn fuzz_case(case: u64, large_left: &mut u32, stats: &mut FuzzStats) -> Result<(), String> {
    stats.cases += 1;
    let mut rng = XorShift::new(0xf022_0000 ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let format = *rng.pick(&FORMATS);
    // sizes: mostly 1..64, some up to 512, a handful (bounded by `large_left`) up to 4096×2304
    let large = *large_left > 0 && rng.chance(1, 300);
    let (w, h) = if large {
        *large_left -= 1;
        (rng.range(1025, 4096) as u32, rng.range(577, 2304) as u32)
    } else if rng.chance(1, 10) {
        (rng.range(1, 512) as u32, rng.range(1, 512) as u32)
    } else {
        (rng.range(1, 64) as u32, rng.range(1, 64) as u32)
    };
    let what = format!("case {case}: {format:?} {w}x{h}");
    stats.large += u64::from(large);

    // A few cases use values the ParamSpecs allow but the element refuses at start: the state
    // change must fail with an error message, no panic, no hang.
    if rng.chance(1, 40) {
        let (name, value): (&str, glib::Value) = match rng.below(3) {
            0 => ("scale", 1u32.to_value()),
            1 => ("model-path", "/nonexistent/weights.safetensors".to_value()),
            _ => ("model-path", "test:no-such-backend".to_value()),
        };
        let elem = gst::ElementFactory::make("imdnupscale").build().unwrap();
        elem.set_property_from_value(name, &value);
        let p = Pipeline(gst::Pipeline::new());
        p.add(&elem).unwrap();
        if p.set_state(gst::State::Paused).is_ok() {
            return Err(format!("{what}: {name}={value:?} started"));
        }
        let msg = wait_for(&p.bus(), &[gst::MessageType::Error], WAIT)?;
        if msg.src() != Some(elem.upcast_ref()) {
            return Err(format!("{what}: error from elsewhere: {}", describe(&msg)));
        }
        stats.refused_at_start += 1;
        return Ok(());
    }

    let elem = gst::ElementFactory::make("imdnupscale")
        .property("model-path", "test:nearest")
        .build()
        .unwrap();
    let props = valid_properties(&elem, &mut rng, large);
    for (name, value) in &props {
        let pspec = elem.find_property(name).unwrap();
        if !paramspec_accepts(&pspec, value) {
            return Err(format!(
                "{what}: valid {name}={value:?} refused by its ParamSpec"
            ));
        }
        elem.set_property_from_value(name, value);
    }
    // invalid values: the ParamSpec refuses them (so GLib would not set them)
    for _ in 0..rng.range(1, 3) {
        stats.invalid_values += 1;
        let (name, value) = invalid_value(&elem, &mut rng);
        let before = serialized(&elem, name);
        let pspec = elem.find_property(name).unwrap();
        if paramspec_accepts(&pspec, &value) {
            return Err(format!("{what}: {name}={value:?} passes its ParamSpec"));
        }
        if serialized(&elem, name) != before {
            return Err(format!("{what}: {name} changed"));
        }
    }
    let frames_processed = elem.find_property("frames-processed").unwrap();
    if frames_processed
        .flags()
        .contains(glib::ParamFlags::WRITABLE)
    {
        return Err("frames-processed is writable".into());
    }
    let scale = elem.property::<u32>("scale");
    let depth = match elem.property::<i32>("max-frames-in-flight") {
        // auto in a harness: its source answers the latency query as live → 1
        -1 => 1,
        d => d as usize,
    };
    let latency_floor = elem.property::<u64>("processing-latency");

    let bus = OwnBus::on(&elem);
    let mut hs = Harness::with_element(&elem, Some("sink"), Some("src"));
    // scale=0: half the cases fix the output size downstream
    let mut out_size = match scale {
        0 => (2 * w, 2 * h),
        s => (w * s, h * s),
    };
    if scale == 0 && rng.chance(1, 2) {
        out_size = (
            rng.range(1, u64::from(3 * w).max(4)) as u32,
            rng.range(1, u64::from(3 * h).max(4)) as u32,
        );
        hs.set_sink_caps_str(&format!(
            "video/x-raw,width={},height={}",
            out_size.0, out_size.1
        ));
        stats.auto_scale_fixed_downstream += 1;
    }
    let info = VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(rng.range(1, 120) as i32, 1))
        .build()
        .map_err(|e| format!("{what}: {e}"))?;
    let caps = info.to_caps().unwrap();

    // random state changes before the stream
    let states = [
        gst::State::Null,
        gst::State::Ready,
        gst::State::Paused,
        gst::State::Playing,
    ];
    let mut plan: Vec<gst::State> = (0..rng.below(4)).map(|_| *rng.pick(&states)).collect();
    plan.push(gst::State::Playing);
    for s in plan {
        elem.set_state(s)
            .map_err(|e| format!("{what}: set_state({s:?}): {e}"))?;
    }
    if !start_stream(&mut hs, &caps, case) {
        return Err(format!("{what}: caps {caps} refused"));
    }
    // Frames, with state changes between them. Going through READY stops the element: the
    // frames still in the worker are discarded (all but the last `depth` pushed came out).
    let n_frames = if large { 1 } else { rng.range(1, 4) };
    let mut expected: Vec<u64> = Vec::new(); // seeds of the frames that must come out, in order
    let mut run: Vec<u64> = Vec::new(); // frames pushed since the last start
    for k in 0..n_frames {
        let lay = layout(&info, rng.chance(2, 3).then_some(&mut rng));
        let seed = (case << 8) | k;
        let buf = make_frame(&info, seed, &lay, gst::ClockTime::from_mseconds(10 * k));
        hs.push(buf)
            .map_err(|e| format!("{what}: frame {k}: {e:?} ({:?})", pending_errors(&bus)))?;
        stats.frames_in += 1;
        stats.with_meta += u64::from(lay.meta);
        run.push(seed);
        if k + 1 < n_frames && rng.chance(1, 4) {
            if rng.chance(1, 2) {
                for s in [gst::State::Paused, gst::State::Playing] {
                    elem.set_state(s).map_err(|e| format!("{what}: {e}"))?;
                }
            } else {
                let down = *rng.pick(&[gst::State::Ready, gst::State::Null]);
                elem.set_state(down).map_err(|e| format!("{what}: {e}"))?;
                let kept = run.len().saturating_sub(depth);
                expected.extend(&run[..kept]);
                run.clear();
                stats.restarts += 1;
                elem.set_state(gst::State::Playing)
                    .map_err(|e| format!("{what}: {e}"))?;
                if !start_stream(&mut hs, &caps, case) {
                    return Err(format!("{what}: caps refused after a restart"));
                }
            }
        }
    }
    let latency = hs.query_latency();
    if !hs.push_event(gst::event::Eos::new()) {
        return Err(format!("{what}: EOS refused ({:?})", pending_errors(&bus)));
    }
    expected.extend(&run);
    let errors = pending_errors(&bus);
    if !errors.is_empty() {
        return Err(format!("{what}: {errors:?}"));
    }
    let processed = elem.property::<u64>("frames-processed");
    if processed != run.len() as u64 {
        return Err(format!(
            "{what}: frames-processed {processed}, {} since the last start",
            run.len()
        ));
    }
    match latency {
        Some(l) if l.nseconds() >= latency_floor => {}
        other => {
            return Err(format!(
                "{what}: latency {other:?} with processing-latency {latency_floor}"
            ));
        }
    }
    let n_out = hs.buffers_in_queue() as usize;
    if n_out != expected.len() {
        return Err(format!(
            "{what}: {n_out} frames out, expected {} (depth {depth})",
            expected.len()
        ));
    }
    let oinfo = output_info(&elem);
    if (oinfo.width(), oinfo.height()) != out_size || oinfo.format() != format {
        return Err(format!(
            "{what}: output {:?} {}x{}, expected {out_size:?}",
            oinfo.format(),
            oinfo.width(),
            oinfo.height()
        ));
    }
    for (i, seed) in expected.iter().enumerate() {
        let out = hs.pull().map_err(|e| format!("{what}: {e}"))?;
        if out.size() < oinfo.size() {
            return Err(format!("{what}: output {i} has {} bytes", out.size()));
        }
        let small = oinfo.width() * oinfo.height() <= 256 * 256;
        check_nearest(
            &out,
            &oinfo,
            (w as usize, h as usize),
            *seed,
            small,
            &mut rng,
        )
        .map_err(|e| format!("{what}: output {i}: {e}"))?;
        stats.frames_out += 1;
    }
    Ok(())
}

#[test]
fn fuzzed_frames_properties_and_states() {
    let _serial = serial();
    init();
    // All 1000 cases run in CI (about 10 s on 2 cores), with at most 2 large frames (up to
    // 4096×2304 at ×2, about 1 s each); soak.rs runs more.
    let mut large_left = 2;
    let mut stats = FuzzStats::default();
    let (t0, mut slowest) = (Instant::now(), (Duration::ZERO, 0));
    // one warm-up case, then nothing may accumulate: a leaked element would keep its bus and
    // with it the bus's file descriptors
    fuzz_case(u64::MAX, &mut 0, &mut FuzzStats::default()).unwrap();
    let (threads, fds) = (thread_count(), fd_count());
    for case in 0..1000 {
        let t = Instant::now();
        fuzz_case(case, &mut large_left, &mut stats).unwrap();
        slowest = slowest.max((t.elapsed(), case));
    }
    let (threads_after, fds_after) = (thread_count(), fd_count());
    eprintln!(
        "fuzz: {:?} in {:?}, slowest case {} ({:?}); threads {threads} → {threads_after}, \
         fds {fds} → {fds_after}",
        stats,
        t0.elapsed(),
        slowest.1,
        slowest.0
    );
    assert!(
        threads_after <= threads + 2,
        "threads {threads} → {threads_after}"
    );
    assert!(fds_after <= fds, "fds {fds} → {fds_after}");
    assert_eq!(stats.cases, 1000);
    assert!(stats.refused_at_start > 0 && stats.restarts > 0 && stats.large > 0);
}

/// One seeded mutation of `bytes`: flips, overwrites, insertions, deletions, duplications and
/// cuts, biased toward the first 512 bytes where the headers are.
fn mutate(bytes: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut m = bytes.to_vec();
    for _ in 0..rng.range(1, 4) {
        if m.is_empty() {
            break;
        }
        let len = m.len() as u64;
        let at = if rng.chance(1, 2) {
            rng.below(len.min(512))
        } else {
            rng.below(len)
        } as usize;
        match rng.below(6) {
            0 => m[at] ^= 1 << rng.below(8),
            1 => {
                let random = rng.next() as u8;
                m[at] = *rng.pick(&[0x00, 0xff, 0x7f, 0x80, b'{', b'"', b'9', random]);
            }
            2 => {
                let n = rng.range(1, 16) as usize;
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                m.splice(at..at, junk);
            }
            3 => {
                let end = (at + rng.range(1, 64) as usize).min(m.len());
                m.drain(at..end);
            }
            4 => {
                let end = (at + rng.range(1, 64) as usize).min(m.len());
                let chunk = m[at..end].to_vec();
                m.splice(at..at, chunk);
            }
            _ => m.truncate(at),
        }
    }
    m
}

#[test]
fn mutated_weights_files_never_panic() {
    let _serial = serial();
    init();
    let st = TempPath(temp_path("valid.safetensors"));
    let tensors =
        imdn::model::init_tensors(&imdn::model::Config::rtc(2), &candle_core::Device::Cpu).unwrap();
    imdn::weights::save_safetensors(&tensors, &st.0).unwrap();
    let fixtures = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"));
    // (name, bytes, whether a caught panic is tolerated): the safetensors and legacy readers
    // are the library's own, bounds-checked; the zip reader is candle's, which may panic on
    // malformed input (the library catches it and returns WeightsError::Panicked)
    let inputs = [
        ("safetensors", std::fs::read(&st.0).unwrap(), false),
        (
            "legacy",
            std::fs::read(fixtures.join("legacy_small.pth")).unwrap(),
            false,
        ),
        (
            "zip",
            std::fs::read(fixtures.join("zip_small.pth")).unwrap(),
            true,
        ),
    ];
    let file = TempPath(temp_path("mutated.bin"));
    let mut rng = XorShift::new(0x5eed_0004);
    let (mut ok, mut err, mut caught, mut built) = (0, 0, 0, 0);
    for i in 0..500 {
        let (name, bytes, panic_ok) = &inputs[i % inputs.len()];
        let mutated = mutate(bytes, &mut rng);
        std::fs::write(&file.0, &mutated).unwrap();
        // a panic escaping `load` fails the test here
        match imdn::weights::load(&file.0) {
            Ok(t) => {
                ok += 1;
                // what the element does next with the tensors: build the network (the element's
                // worker would catch a panic here too, but it must be an error)
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    imdn::engine::Upscaler::from_tensors(t, &candle_core::Device::Cpu).is_ok()
                }));
                match r {
                    Ok(true) => built += 1,
                    Ok(false) => {}
                    Err(_) => panic!("iteration {i} ({name}): building the network panicked"),
                }
            }
            Err(imdn::weights::WeightsError::Panicked { msg, .. }) => {
                assert!(
                    *panic_ok,
                    "iteration {i} ({name}): the reader panicked: {msg}"
                );
                caught += 1;
            }
            Err(e) => {
                let path = file.0.display().to_string();
                assert!(e.to_string().contains(&path), "{e}");
                err += 1;
            }
        }
    }
    eprintln!(
        "500 mutated files: {ok} loaded ({built} built a network), {err} errors, \
         {caught} caught panics in candle's zip reader"
    );
}

/// A set of sizes in caps: fixed, a range (with a step), a list, or no field at all.
#[derive(Clone, Debug)]
enum Dims {
    Fixed(i64),
    Range(i64, i64, i64),
    List(Vec<i64>),
    Any,
}

impl Dims {
    /// Random sizes; a third of them built around `near` (so that some caps do negotiate).
    fn random(rng: &mut XorShift, near: i64) -> Dims {
        let side = |rng: &mut XorShift| match rng.below(4) {
            0 => rng.range(1, 64) as i64,
            1 => rng.range(1, 40000) as i64,
            2 => rng.range(1, 100_000) as i64,
            _ => 2 * rng.range(1, 1000) as i64 + 1, // odd
        };
        if rng.chance(1, 3) {
            return match rng.below(3) {
                0 => Dims::Fixed(near),
                1 => Dims::Range(
                    (near - rng.below(100) as i64).max(1),
                    near + 1 + rng.below(100) as i64,
                    1,
                ),
                _ => Dims::List(vec![side(rng), near]),
            };
        }
        match rng.below(7) {
            0..=2 => Dims::Fixed(side(rng)),
            3 | 4 => {
                let (a, b) = (side(rng), side(rng));
                Dims::Range(a.min(b), a.max(b) + 1, 1)
            }
            5 => Dims::List((0..rng.range(2, 3)).map(|_| side(rng)).collect()),
            _ => Dims::Any,
        }
    }

    fn caps_field(&self, name: &str) -> String {
        match self {
            Dims::Fixed(v) => format!(",{name}={v}"),
            Dims::Range(a, b, 1) => format!(",{name}=[{a},{b}]"),
            Dims::Range(a, b, s) => format!(",{name}=[{a},{b},{s}]"),
            Dims::List(l) => format!(
                ",{name}={{{}}}",
                l.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Dims::Any => String::new(),
        }
    }

    fn contains(&self, v: i64) -> bool {
        match self {
            Dims::Fixed(f) => *f == v,
            Dims::Range(a, b, s) => *a <= v && v <= *b && (v - a) % s == 0,
            Dims::List(l) => l.contains(&v),
            Dims::Any => true,
        }
    }

    /// The sizes of a caps field.
    fn of_field(s: &gst::StructureRef, name: &str) -> Result<Dims, String> {
        let Ok(v) = s.value(name) else {
            return Ok(Dims::Any);
        };
        let one = |v: &glib::SendValue| -> Result<Dims, String> {
            if let Ok(i) = v.get::<i32>() {
                Ok(Dims::Fixed(i64::from(i)))
            } else if let Ok(r) = v.get::<gst::IntRange<i32>>() {
                Ok(Dims::Range(
                    i64::from(r.min()),
                    i64::from(r.max()),
                    i64::from(r.step()),
                ))
            } else {
                Err(format!("{name}: {v:?}"))
            }
        };
        if let Ok(list) = v.get::<gst::List>() {
            let mut out = Vec::new();
            for item in list.iter() {
                match one(item)? {
                    Dims::Fixed(f) => out.push(f),
                    other => return Err(format!("{name}: a list holding {other:?}")),
                }
            }
            return Ok(Dims::List(out));
        }
        one(v)
    }

    /// A few members: the ends and some between.
    fn samples(&self, rng: &mut XorShift) -> Vec<i64> {
        match self {
            Dims::Fixed(v) => vec![*v],
            Dims::Range(a, b, s) => {
                let n = (b - a) / s;
                let mut v = vec![*a, a + n * s];
                v.extend((0..3).map(|_| a + rng.below(n as u64 + 1) as i64 * s));
                v
            }
            Dims::List(l) => l.clone(),
            Dims::Any => vec![1, 32767],
        }
    }

    /// Whether some member lies in the element's template range 1..=`max`.
    fn meets(&self, max: i64) -> bool {
        match self {
            Dims::Fixed(v) => (1..=max).contains(v),
            Dims::Range(a, b, _) => *a <= max && *b >= 1,
            Dims::List(l) => l.iter().any(|v| (1..=max).contains(v)),
            Dims::Any => true,
        }
    }

    /// A member `m` with `m × s` in `self` and 1 ≤ m ≤ max, if there is one (not searched
    /// exhaustively: `None` means "none found", used only to test completeness).
    fn preimage(&self, s: i64, max: i64, rng: &mut XorShift) -> Option<i64> {
        let ok = |m: i64| (1..=max).contains(&m) && self.contains(m * s);
        match self {
            Dims::Fixed(v) => Some(v / s).filter(|&m| ok(m)),
            Dims::Range(a, b, _) => {
                let lo = (a + s - 1) / s;
                let hi = (b / s).min(max);
                (lo <= hi)
                    .then(|| lo + rng.below((hi - lo + 1) as u64) as i64)
                    .filter(|&m| ok(m))
            }
            Dims::List(l) => l.iter().map(|v| v / s).find(|&m| ok(m)),
            Dims::Any => Some(rng.range(1, max as u64) as i64),
        }
    }
}

#[test]
fn fuzzed_caps_negotiate_exactly_or_fail_cleanly() {
    let _serial = serial();
    init();
    const MAX_SIDE: i64 = 32767;
    let mut rng = XorShift::new(0x5eed_0005);
    let (mut negotiated, mut refused) = (0, 0);
    let fds = fd_count();
    for i in 0..400 {
        let scale = *rng.pick(&[0u32, 2, 3, 4]);
        let s = i64::from(scale);
        let format = rng.pick(&FORMATS).to_str().as_str();
        // the input size, mostly small (a few beyond the 32767 of the templates)
        let side = |rng: &mut XorShift| match rng.below(5) {
            0..=2 => rng.range(1, 64) as i64,
            3 => rng.range(1, 16000) as i64,
            _ => rng.range(1, 100_000) as i64,
        };
        let (iw, ih) = (side(&mut rng), side(&mut rng));
        let (dw, dh) = (
            Dims::random(&mut rng, iw * s.max(1)),
            Dims::random(&mut rng, ih * s.max(1)),
        );
        let downstream = rng.chance(3, 4).then(|| {
            format!(
                "video/x-raw,format={format}{}{}",
                dw.caps_field("width"),
                dh.caps_field("height")
            )
        });
        let elem = gst::ElementFactory::make("imdnupscale")
            .property("model-path", "test:nearest")
            .property("scale", scale)
            .build()
            .unwrap();
        let bus = OwnBus::on(&elem);
        let mut h = Harness::with_element(&elem, Some("sink"), Some("src"));
        if let Some(d) = &downstream {
            h.set_sink_caps_str(d);
        }
        let (dw, dh) = if downstream.is_some() {
            (dw, dh)
        } else {
            (Dims::Any, Dims::Any)
        };
        let what = format!("iteration {i}: scale {scale}, downstream {downstream:?}");

        // src → sink: what the sink pad offers upstream, from the downstream caps
        let offered = pad(&elem, "sink").query_caps(None);
        if scale != 0 {
            for st in offered.iter() {
                let (w, hh) = (
                    Dims::of_field(st, "width").unwrap(),
                    Dims::of_field(st, "height").unwrap(),
                );
                for (dims, down, axis) in [(&w, &dw, "width"), (&hh, &dh, "height")] {
                    for v in dims.samples(&mut rng) {
                        assert!(
                            (1..=MAX_SIDE).contains(&v) && down.contains(v * s),
                            "{what}: {axis} {v} offered upstream: {offered}"
                        );
                    }
                }
            }
            // and nothing is missing: a size whose ×scale downstream takes is offered
            let max_in = MAX_SIDE / s;
            if let (Some(mw), Some(mh)) = (
                dw.preimage(s, max_in, &mut rng),
                dh.preimage(s, max_in, &mut rng),
            ) {
                let found = offered.iter().any(|st| {
                    Dims::of_field(st, "width").is_ok_and(|d| d.contains(mw))
                        && Dims::of_field(st, "height").is_ok_and(|d| d.contains(mh))
                });
                assert!(found, "{what}: {mw}x{mh} not offered: {offered}");
            }
        } else {
            // any input size, as long as downstream takes some output size at all
            let possible = dw.meets(MAX_SIDE) && dh.meets(MAX_SIDE);
            assert_eq!(!offered.is_empty(), possible, "{what}: {offered}");
        }

        // sink → src: negotiate the fixed input size
        let in_caps: gst::Caps =
            format!("video/x-raw,format={format},width={iw},height={ih},framerate=30/1")
                .parse()
                .unwrap();
        let fits = |v: i64| (1..=MAX_SIDE).contains(&v);
        let expected_ok = fits(iw)
            && fits(ih)
            && match scale {
                0 => dw.meets(MAX_SIDE) && dh.meets(MAX_SIDE),
                _ => fits(iw * s) && fits(ih * s) && dw.contains(iw * s) && dh.contains(ih * s),
            };
        let accepted = pad(&elem, "sink").query_accept_caps(&in_caps);
        let handled = h.push_event(gst::event::Caps::new(&in_caps));
        let out = pad(&elem, "src").current_caps();
        if expected_ok {
            assert!(accepted && handled, "{what}: {in_caps} refused");
            let out = out.unwrap_or_else(|| panic!("{what}: no output caps for {in_caps}"));
            let st = out.structure(0).unwrap();
            let (ow, oh) = (
                i64::from(st.get::<i32>("width").unwrap()),
                i64::from(st.get::<i32>("height").unwrap()),
            );
            assert_eq!(st.get::<&str>("format"), Ok(format), "{what}");
            if scale == 0 {
                assert!(fits(ow) && fits(oh), "{what}: {out}");
                assert!(dw.contains(ow) && dh.contains(oh), "{what}: {out}");
            } else {
                assert_eq!((ow, oh), (iw * s, ih * s), "{what}: {in_caps} → {out}");
            }
            negotiated += 1;
        } else {
            // refused cleanly: not accepted, or no output caps (never wrong ones)
            assert!(
                !accepted || !handled || out.is_none(),
                "{what}: {in_caps} negotiated to {out:?}"
            );
            refused += 1;
        }
        // no panic inside the element (gstreamer-rs would turn it into an error message)
        for e in pending_errors(&bus) {
            assert!(!e.to_lowercase().contains("panic"), "{what}: {e}");
        }
    }
    eprintln!("400 caps cases: {negotiated} negotiated, {refused} refused as expected");
    // every element and bus of the 400 cases was freed
    assert!(fd_count() <= fds, "fds {fds} → {}", fd_count());
}

// ---------------------------------------------------------------------------------------------
// 5. live
// ---------------------------------------------------------------------------------------------

#[test]
fn live_stream_too_slow_for_real_time_drops_frames_with_qos_and_keeps_going() {
    let _serial = serial();
    init();
    // 60 ms a frame at 30 fps: about half the frames arrive late at the sink
    let p = Pipeline::launch(
        "videotestsrc is-live=true ! video/x-raw,format=RGB,width=64,height=36,framerate=30/1 ! \
         imdnupscale name=up model-path=test:slow:60 ! fakesink sync=true qos=true",
    );
    let up = p.by("up");
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let a = arrivals.clone();
    pad(&up, "src")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            lock(&a).push(Instant::now());
            gst::PadProbeReturn::Ok
        })
        .unwrap();
    let bus = p.bus();
    p.set_state(gst::State::Playing).unwrap();
    let t0 = Instant::now();
    let run = Duration::from_secs(3);
    let (mut qos, mut max_dropped) = (0, 0i64);
    while t0.elapsed() < run {
        let left = run.saturating_sub(t0.elapsed());
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Qos, gst::MessageType::Error],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Error(_) => panic!("{}", describe(&msg)),
            gst::MessageView::Qos(q) if msg.src() == Some(up.upcast_ref()) => {
                qos += 1;
                max_dropped = max_dropped.max(q.stats().1.value());
            }
            _ => {}
        }
    }
    let mut q = gst::query::Latency::new();
    assert!(p.query(&mut q), "latency query unanswered");
    let (live, min, max) = q.result();
    let end = Instant::now();
    let arrivals = lock(&arrivals).clone();
    let last_second = arrivals
        .iter()
        .filter(|&&t| end.duration_since(t) < Duration::from_secs(1))
        .count();
    eprintln!(
        "live: {} frames out in {run:?} ({last_second} in the last second), {qos} QoS \
         messages from the element, {max_dropped} dropped, latency {min}..{max:?}",
        arrivals.len()
    );
    assert!(qos > 0 && max_dropped > 0, "no QoS drop reported");
    assert!(
        last_second >= 3,
        "only {last_second} frames in the last second"
    );
    assert!(live);
    // one frame of depth (33 ms) + the measured 60 ms (+5%) + the source's frame
    assert!(
        min >= gst::ClockTime::from_mseconds(60) && min <= gst::ClockTime::from_seconds(1),
        "latency {min}"
    );
    assert!(max.is_none_or(|m| m >= min), "latency {min}..{max:?}");
}

// ---------------------------------------------------------------------------------------------
// a fault mid-stream
// ---------------------------------------------------------------------------------------------

#[test]
fn fault_mid_stream_stops_after_exactly_the_good_frames() {
    let _serial = serial();
    init();
    let p = Pipeline::launch(
        "videotestsrc num-buffers=100 ! video/x-raw,format=RGB,width=32,height=18 ! \
         imdnupscale name=up model-path=test:error-after:20 ! fakesink sync=false",
    );
    let up = p.by("up");
    let out = count_buffers(&pad(&up, "src"));
    p.set_state(gst::State::Playing).unwrap();
    let msg = wait_for(&p.bus(), &[gst::MessageType::Error], WAIT).unwrap();
    assert_eq!(msg.src(), Some(up.upcast_ref()), "{}", describe(&msg));
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(e.error().matches(gst::StreamError::Failed), "{}", e.error());
    assert!(
        e.error().message().contains("injected fault at frame 20"),
        "{}",
        e.error()
    );
    let took = stop_within(&p, Duration::from_secs(5)).unwrap();
    assert_eq!(out.load(Ordering::SeqCst), 20, "frames before the fault");
    assert_eq!(up.property::<u64>("frames-processed"), 20);
    assert_eq!(worker_threads(), 0);
    eprintln!("fault: 20 frames, then the error; NULL in {took:?}");
}
