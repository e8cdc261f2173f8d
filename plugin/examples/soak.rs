//! Long-run reliability checks of `imdnupscale` with the deterministic test backends (no
//! weights needed); `tests/reliability.rs` runs short versions of the same cases in CI.
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example soak -- [--frames 10000] [--cycles 100] \
//!     [--seeks 100] [--fuzz 1000] [--large 4] [--seed N]
//! ```
//!
//! - frames: `--frames` frames at each depth (0, 1, 2, 8): every frame out once, in order, with
//!   its input PTS; RSS sampled every 500 frames, growth after a 500-frame warm-up < 5 MB.
//! - cycles: NULL → PLAYING → NULL with frames flowing (half to EOS, half stopped with frames
//!   in flight): thread and fd counts before (after a warm-up) and after, no worker thread left.
//! - seeks: flushing accurate seeks to random positions of an H.264 MP4: each completes
//!   within 5 s, no frame before the target after the flush; completion max and median.
//! - fuzz: random formats, sizes (`--large` of them up to 4096×2304), padded strides, valid
//!   and invalid property values, state changes: exact frame counts and output sizes.
//!
//! One line per case; the exit code is 1 if any check failed (2 for bad arguments). A count of
//! 0 skips that case. The plugin is registered statically.

mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::glib::translate::{ToGlibPtr, ToGlibPtrMut};
use gst::prelude::*;
use gst_video::{VideoFormat, VideoInfo};

const USAGE: &str = "usage: soak [--frames N] [--cycles N] [--seeks N] [--fuzz N] [--large N] \
[--seed N] [--model-path P]   (defaults 10000, 100, 100, 1000, 4, 1, test:nearest; 0 skips a \
case; --model-path shipped runs the frames case on the shipped IMDN_RTC ×2)";

const WAIT: Duration = Duration::from_secs(30);
const FRAME_30: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);

struct Args {
    frames: u64,
    cycles: u64,
    seeks: u64,
    fuzz: u64,
    large: u64,
    seed: u64,
    /// The frames case's `model-path`; `None`: the shipped model (no property set).
    model_path: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        frames: 10_000,
        cycles: 100,
        seeks: 100,
        fuzz: 1000,
        large: 4,
        seed: 1,
        model_path: Some("test:nearest".into()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.into());
        }
        let v = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        if arg == "--model-path" {
            a.model_path = (v != "shipped").then_some(v);
            continue;
        }
        let n: u64 = v
            .parse()
            .map_err(|_| format!("{arg} {v}: expected a number"))?;
        match arg.as_str() {
            "--frames" => a.frames = n,
            "--cycles" => a.cycles = n,
            "--seeks" => a.seeks = n,
            "--fuzz" => a.fuzz = n,
            "--large" => a.large = n,
            "--seed" => a.seed = n,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// helpers (small copies of those in tests/reliability.rs)
// ---------------------------------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, n: u64, d: u64) -> bool {
        self.below(d) < n
    }
}

/// A pipeline taken to NULL when dropped (bounded: a hang is reported, the pipeline leaked).
struct Pipeline(gst::Pipeline);

impl Pipeline {
    fn launch(desc: &str) -> Result<Pipeline, String> {
        let p = gst::parse::launch(desc).map_err(|e| format!("{desc}: {e}"))?;
        p.downcast::<gst::Pipeline>()
            .map(Pipeline)
            .map_err(|_| "not a pipeline".into())
    }
    fn by(&self, name: &str) -> Result<gst::Element, String> {
        self.0.by_name(name).ok_or_else(|| format!("no {name}"))
    }
    fn pad(&self, elem: &str, pad: &str) -> Result<gst::Pad, String> {
        self.by(elem)?
            .static_pad(pad)
            .ok_or_else(|| format!("no {elem}.{pad}"))
    }
    fn bus(&self) -> gst::Bus {
        self.0.bus().expect("a pipeline has a bus")
    }
    fn play(&self) -> Result<(), String> {
        self.0
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|e| format!("PLAYING: {e}"))
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Err(e) = stop_within(&self.0, WAIT) {
            eprintln!("dropping the pipeline: {e}");
        }
    }
}

/// `set_state(NULL)` on a helper thread, waited for at most `bound`.
fn stop_within(p: &gst::Pipeline, bound: Duration) -> Result<Duration, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = p.clone();
    let t0 = Instant::now();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(p2.set_state(gst::State::Null).is_ok());
    });
    match rx.recv_timeout(bound) {
        Ok(ok) => {
            let _ = handle.join();
            ok.then(|| t0.elapsed())
                .ok_or_else(|| "set_state(NULL) failed".into())
        }
        Err(_) => Err(format!("set_state(NULL) has not returned after {bound:?}")),
    }
}

/// The next message of `types` within `timeout`; an ERROR is an `Err`.
fn wait_for(bus: &gst::Bus, types: &[gst::MessageType], timeout: Duration) -> Result<(), String> {
    let mut all = types.to_vec();
    all.push(gst::MessageType::Error);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &all,
        )
        .ok_or_else(|| format!("no {types:?} within {timeout:?}"))?;
    match common::describe(&msg) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn errors(bus: &gst::Bus) -> Result<(), String> {
    match bus.pop_filtered(&[gst::MessageType::Error]) {
        Some(m) => Err(common::describe(&m).unwrap_or_default()),
        None => Ok(()),
    }
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map_or(0, |d| d.count())
}

fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
            .filter(|n| n.starts_with("imdn-"))
            .count()
    })
}

fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// frames
// ---------------------------------------------------------------------------------------------

/// Checks the PTS of buffers as they pass (nothing is stored: a growing log would show up in
/// the RSS): the i-th must be videotestsrc's i × 10⁹ / 30 at 30/1.
#[derive(Default)]
struct PtsCheck {
    seen: u64,
    first_bad: Option<(u64, Option<gst::ClockTime>)>,
}

impl PtsCheck {
    fn see(&mut self, pts: Option<gst::ClockTime>) {
        let want = gst::ClockTime::from_nseconds(self.seen * 1_000_000_000 / 30);
        if pts != Some(want) && self.first_bad.is_none() {
            self.first_bad = Some((self.seen, pts));
        }
        self.seen += 1;
    }
}

/// `frames` frames at `depth`: returns the summary line.
fn frames_at(
    depth: i32,
    format: &str,
    frames: u64,
    model_path: Option<&str>,
) -> Result<String, String> {
    let model = model_path.map_or(String::new(), |m| format!("model-path=\"{m}\""));
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! \
         video/x-raw,format={format},width=64,height=36,framerate=30/1 ! \
         imdnupscale name=up {model} max-frames-in-flight={depth} ! \
         fakesink sync=false"
    ))?;
    let ins = Arc::new(Mutex::new(PtsCheck::default()));
    let outs = Arc::new(Mutex::new(PtsCheck::default()));
    // RSS every 500 frames out, preallocated so that sampling does not grow it
    let rss = Arc::new(Mutex::new(Vec::with_capacity((frames / 500 + 1) as usize)));
    for (pad, check) in [("sink", ins.clone()), ("src", outs.clone())] {
        let rss = rss.clone();
        let sample = pad == "src";
        p.pad("up", pad)?
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    let mut check = lock(&check);
                    check.see(b.pts());
                    if sample
                        && check.seen.is_multiple_of(500)
                        && let Some(kb) = rss_kb()
                    {
                        lock(&rss).push(kb);
                    }
                }
                gst::PadProbeReturn::Ok
            })
            .ok_or("probe")?;
    }
    p.play()?;
    wait_for(
        &p.bus(),
        &[gst::MessageType::Eos],
        WAIT + Duration::from_millis(frames),
    )?;
    let processed = p.by("up")?.property::<u64>("frames-processed");
    stop_within(&p.0, WAIT)?;
    let rss = lock(&rss).clone();
    let (ins, outs) = (lock(&ins), lock(&outs));
    if ins.seen != frames || outs.seen != frames || processed != frames {
        return Err(format!(
            "{} in, {} out, frames-processed {processed}",
            ins.seen, outs.seen
        ));
    }
    if let Some((i, pts)) = ins.first_bad.or(outs.first_bad) {
        return Err(format!(
            "frame {i} has PTS {pts:?} (lost, repeated or reordered)"
        ));
    }
    // after the warm-up sample (frame 500)
    let (first, last) = (
        rss.first().copied().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
    );
    let growth_mb = last.saturating_sub(first) as f64 / 1024.0;
    let line = format!(
        "frames depth={depth} {format}: in {} out {}, in order with their input PTS; \
         RSS {first} → {last} KiB, growth {growth_mb:.2} MB after a 500-frame warm-up",
        ins.seen, outs.seen
    );
    if growth_mb >= 5.0 {
        return Err(format!("{line}: ≥ 5 MB"));
    }
    Ok(line)
}

// ---------------------------------------------------------------------------------------------
// cycles
// ---------------------------------------------------------------------------------------------

fn cycles(n: u64) -> Result<String, String> {
    let p = Pipeline::launch(
        "videotestsrc name=src ! video/x-raw,format=I420,width=32,height=18,framerate=30/1 ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight=2 ! \
         fakesink sync=false",
    )?;
    let out = Arc::new(AtomicU64::new(0));
    let o = out.clone();
    p.pad("up", "src")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            o.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        })
        .ok_or("probe")?;
    let src = p.by("src")?;
    let cycle = |i: u64| -> Result<(), String> {
        out.store(0, Ordering::SeqCst);
        let to_eos = i.is_multiple_of(2);
        src.set_property("num-buffers", if to_eos { 10i32 } else { -1 });
        p.play()?;
        if to_eos {
            wait_for(&p.bus(), &[gst::MessageType::Eos], WAIT)?;
            let n = out.load(Ordering::SeqCst);
            if n != 10 {
                return Err(format!("{n} frames out of 10"));
            }
        } else {
            let deadline = Instant::now() + WAIT;
            while out.load(Ordering::SeqCst) < 5 {
                if Instant::now() > deadline {
                    return Err("no 5 frames".into());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        errors(&p.bus())?;
        stop_within(&p.0, WAIT)?;
        match worker_threads() {
            0 => Ok(()),
            n => Err(format!("{n} worker threads alive at NULL")),
        }
    };
    for i in 0..2 {
        cycle(i).map_err(|e| format!("warm-up cycle {i}: {e}"))?;
    }
    let (threads, fds) = (count_dir("/proc/self/task"), count_dir("/proc/self/fd"));
    let t0 = Instant::now();
    for i in 2..2 + n {
        cycle(i).map_err(|e| format!("cycle {i}: {e}"))?;
    }
    let (threads2, fds2) = (count_dir("/proc/self/task"), count_dir("/proc/self/fd"));
    let line = format!(
        "cycles: {n} NULL→PLAYING→NULL in {:.1} s, threads {threads} → {threads2}, \
         fds {fds} → {fds2}, no worker thread at NULL",
        t0.elapsed().as_secs_f64()
    );
    // 2 threads of slack: GStreamer's shared GThreadPool keeps up to 2 idle threads
    if threads2 > threads + 2 || fds2 > fds {
        return Err(format!("{line}: growth"));
    }
    Ok(line)
}

// ---------------------------------------------------------------------------------------------
// seeks
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct SeekLog {
    pending: u64,
    generation: u64,
    flush_stops: u64,
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// (generation, stream time, arrival)
    buffers: Vec<(u64, Option<gst::ClockTime>, Instant)>,
}

fn seeks(n: u64, seed: u64) -> Result<String, String> {
    let mp4 = std::env::temp_dir().join(format!("imdn-soak-{}.mp4", std::process::id()));
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(mp4.clone());
    {
        let p = Pipeline::launch(&format!(
            "videotestsrc num-buffers=150 ! video/x-raw,width=64,height=36,framerate=30/1 ! \
             x264enc key-int-max=10 ! mp4mux ! filesink location={}",
            mp4.display()
        ))?;
        p.play()?;
        wait_for(&p.bus(), &[gst::MessageType::Eos], WAIT)?;
    }
    let p = Pipeline::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight=3 ! \
         fakesink sync=false",
        mp4.display()
    ))?;
    let log = Arc::new((Mutex::new(SeekLog::default()), Condvar::new()));
    let l = log.clone();
    p.pad("up", "src")?
        .add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |_, info| {
                let mut log = lock(&l.0);
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
                        _ => {}
                    }
                }
                l.1.notify_all();
                gst::PadProbeReturn::Ok
            },
        )
        .ok_or("probe")?;
    p.0.set_state(gst::State::Paused)
        .map_err(|e| e.to_string())?;
    wait_for(&p.bus(), &[gst::MessageType::AsyncDone], WAIT)?;
    p.play()?;
    let mut rng = XorShift(seed.max(1));
    let mut targets = vec![gst::ClockTime::ZERO];
    let mut times = Vec::new();
    let (m, cv) = &*log;
    for k in 1..=n {
        let target = gst::ClockTime::from_nseconds(rng.below(4_800_000_000));
        targets.push(target);
        lock(m).pending = k;
        let t0 = Instant::now();
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
        let deadline = t0 + Duration::from_secs(5);
        let mut g = lock(m);
        let arrival = loop {
            if let Some(&(.., at)) = g.buffers.iter().find(|(gen_, ..)| *gen_ == k) {
                break at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("seek {k} to {target}: no frame within 5 s"));
            }
            g = cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(g);
        times.push(arrival.saturating_duration_since(t0));
        // the next seek right away, or a little later (some after EOS)
        std::thread::sleep(Duration::from_millis(rng.below(4) * 10));
        errors(&p.bus()).map_err(|e| format!("after seek {k}: {e}"))?;
    }
    stop_within(&p.0, WAIT)?;
    let log = lock(m);
    if log.flush_stops != n {
        return Err(format!("{} flush stops for {n} seeks", log.flush_stops));
    }
    for k in 1..=n {
        let target = targets[k as usize];
        let ts: Vec<_> = log
            .buffers
            .iter()
            .filter(|(g, ..)| *g == k)
            .map(|(_, t, _)| *t)
            .collect();
        let earliest = target.saturating_sub(FRAME_30);
        if let Some(bad) = ts.iter().find(|t| t.is_none_or(|t| t < earliest)) {
            return Err(format!(
                "seek {k} to {target}: a frame at {bad:?} after the flush"
            ));
        }
        if ts.first().copied().flatten() > Some(target + FRAME_30) {
            return Err(format!("seek {k} to {target}: first frame at {:?}", ts[0]));
        }
        if !ts.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!("seek {k} to {target}: not increasing"));
        }
    }
    times.sort();
    Ok(format!(
        "seeks: {n} flushing accurate seeks, completion median {:.1} ms, max {:.1} ms, \
         no stale frame",
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap_or(&Duration::ZERO))
    ))
}

// ---------------------------------------------------------------------------------------------
// fuzz
// ---------------------------------------------------------------------------------------------

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

/// A frame of `info` with every plane's rows padded by random strides (VideoMeta), or the
/// default layout.
fn fuzz_frame(info: &VideoInfo, rng: &mut XorShift, k: u64) -> gst::Buffer {
    let (w, h) = (info.width() as usize, info.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let geo = match info.format() {
        VideoFormat::I420 => vec![(w, h), (cw, ch), (cw, ch)],
        VideoFormat::Nv12 => vec![(w, h), (2 * cw, ch)],
        f => vec![(
            w * gst_video::VideoFormatInfo::from_format(f).pixel_stride()[0] as usize,
            h,
        )],
    };
    let meta = rng.chance(2, 3);
    let (mut offsets, mut strides, mut at) = (Vec::new(), Vec::new(), 0usize);
    if meta {
        for &(row, rows) in &geo {
            at += rng.below(25) as usize;
            offsets.push(at);
            strides.push(row + rng.below(41) as usize);
            at += strides.last().copied().unwrap_or(0) * rows;
        }
    }
    let size = if meta { at } else { info.size() };
    let mut buf = gst::Buffer::with_size(size.max(1)).expect("buffer");
    {
        let b = buf.get_mut().expect("writable");
        if let Ok(mut map) = b.map_writable() {
            map.fill((k as u8).wrapping_mul(37));
        }
        if meta {
            let s: Vec<i32> = strides.iter().map(|&s| s as i32).collect();
            let _ = gst_video::VideoMeta::add_full(
                b,
                gst_video::VideoFrameFlags::empty(),
                info.format(),
                info.width(),
                info.height(),
                &offsets,
                &s,
            );
        }
        b.set_pts(gst::ClockTime::from_mseconds(10 * k));
    }
    buf
}

/// Whether `g_object_set_property` would take `v` (see tests/reliability.rs).
fn accepts(pspec: &glib::ParamSpec, v: &glib::Value) -> bool {
    let mut copy = v.clone();
    // SAFETY: valid pointers for the call; `copy` is ours
    unsafe {
        glib::gobject_ffi::g_param_value_validate(pspec.to_glib_none().0, copy.to_glib_none_mut().0)
            == glib::ffi::GFALSE
    }
}

#[derive(Default)]
struct FuzzStats {
    cases: u64,
    frames_in: u64,
    frames_out: u64,
    restarts: u64,
    invalid: u64,
    large: u64,
}

fn fuzz_case(case: u64, seed: u64, large_left: &mut u64, st: &mut FuzzStats) -> Result<(), String> {
    let mut rng = XorShift((seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15)).max(1));
    let format = FORMATS[rng.below(12) as usize];
    let large = *large_left > 0 && rng.chance(1, 200);
    let (w, h) = if large {
        *large_left -= 1;
        st.large += 1;
        (rng.range(1025, 4096) as u32, rng.range(577, 2304) as u32)
    } else if rng.chance(1, 10) {
        (rng.range(1, 512) as u32, rng.range(1, 512) as u32)
    } else {
        (rng.range(1, 64) as u32, rng.range(1, 64) as u32)
    };
    let what = format!("case {case}: {format:?} {w}x{h}");
    let scale = if large {
        2
    } else {
        [0u32, 2, 3, 4][rng.below(4) as usize]
    };
    let depth = rng.range(0, 9) as i32 - 1;
    let elem = gst::ElementFactory::make("imdnupscale")
        .property("model-path", "test:nearest")
        .property("scale", scale)
        .property("max-frames-in-flight", depth)
        .property("tile-size", rng.below(32768) as u32)
        .property("n-threads", rng.below(1025) as u32)
        .property("processing-latency", rng.below(u64::MAX))
        .build()
        .map_err(|e| e.to_string())?;
    // invalid values: refused by the ParamSpecs (never set: GLib would warn)
    for (name, v) in [
        ("scale", (rng.range(5, u32::MAX.into()) as u32).to_value()),
        (
            "max-frames-in-flight",
            (rng.range(9, i32::MAX as u64) as i32).to_value(),
        ),
        (
            "tile-size",
            (rng.range(32768, u32::MAX.into()) as u32).to_value(),
        ),
        (
            "n-threads",
            (rng.range(1025, u32::MAX.into()) as u32).to_value(),
        ),
        ("processing-latency", u64::MAX.to_value()),
    ] {
        st.invalid += 1;
        let pspec = elem.find_property(name).ok_or("no property")?;
        if accepts(&pspec, &v) {
            return Err(format!("{what}: {name}={v:?} passes its ParamSpec"));
        }
    }
    // Our own bus, flushed when the case ends: queued messages reference the element, which
    // references the bus, a cycle that would leak both (and the bus's fds) otherwise.
    struct OwnBus(gst::Bus);
    impl Drop for OwnBus {
        fn drop(&mut self) {
            self.0.set_flushing(true);
        }
    }
    let bus = OwnBus(gst::Bus::new());
    elem.set_bus(Some(&bus.0));
    let mut hs = gst_check::Harness::with_element(&elem, Some("sink"), Some("src"));
    let info = VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .map_err(|e| e.to_string())?;
    let caps = info.to_caps().map_err(|e| e.to_string())?;
    let start = |hs: &mut gst_check::Harness| {
        hs.push_event(gst::event::StreamStart::new(&format!("soak-{case}")))
            && hs.push_event(gst::event::Caps::new(&caps))
            && hs.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()))
    };
    let states = [
        gst::State::Null,
        gst::State::Ready,
        gst::State::Paused,
        gst::State::Playing,
    ];
    for _ in 0..rng.below(4) {
        let s = states[rng.below(4) as usize];
        elem.set_state(s)
            .map_err(|e| format!("{what}: {s:?}: {e}"))?;
    }
    elem.set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    if !start(&mut hs) {
        return Err(format!("{what}: caps refused"));
    }
    let eff_depth = if depth < 0 { 1 } else { depth as u64 };
    let (mut expected, mut run) = (0u64, 0u64);
    let n = if large { 1 } else { rng.range(1, 4) };
    for k in 0..n {
        hs.push(fuzz_frame(&info, &mut rng, k))
            .map_err(|e| format!("{what}: frame {k}: {e:?}"))?;
        st.frames_in += 1;
        run += 1;
        if k + 1 < n && rng.chance(1, 4) {
            elem.set_state(gst::State::Ready)
                .map_err(|e| e.to_string())?;
            expected += run.saturating_sub(eff_depth);
            run = 0;
            st.restarts += 1;
            elem.set_state(gst::State::Playing)
                .map_err(|e| e.to_string())?;
            if !start(&mut hs) {
                return Err(format!("{what}: caps refused after a restart"));
            }
        }
    }
    if !hs.push_event(gst::event::Eos::new()) {
        return Err(format!("{what}: EOS refused"));
    }
    expected += run;
    if let Some(m) = bus.0.pop_filtered(&[gst::MessageType::Error]) {
        return Err(format!(
            "{what}: {}",
            common::describe(&m).unwrap_or_default()
        ));
    }
    let got = u64::from(hs.buffers_in_queue());
    if got != expected {
        return Err(format!("{what}: {got} frames out, expected {expected}"));
    }
    let ocaps = elem
        .static_pad("src")
        .and_then(|p| p.current_caps())
        .ok_or("no output caps")?;
    let oinfo = VideoInfo::from_caps(&ocaps).map_err(|e| e.to_string())?;
    let want = if scale == 0 {
        (2 * w, 2 * h)
    } else {
        (w * scale, h * scale)
    };
    if (oinfo.width(), oinfo.height()) != want || oinfo.format() != format {
        return Err(format!("{what}: output {ocaps}, expected {want:?}"));
    }
    for _ in 0..got {
        let out = hs.pull().map_err(|e| e.to_string())?;
        if out.size() < oinfo.size() {
            return Err(format!("{what}: {} bytes out", out.size()));
        }
        st.frames_out += 1;
    }
    st.cases += 1;
    Ok(())
}

fn fuzz(n: u64, large: u64, seed: u64) -> Result<String, String> {
    let mut st = FuzzStats::default();
    let mut large_left = large;
    let t0 = Instant::now();
    // a warm-up case, then the fd count may not grow (a leaked element keeps its bus's fds)
    fuzz_case(u64::MAX, seed, &mut 0, &mut FuzzStats::default())?;
    let fds = count_dir("/proc/self/fd");
    for case in 0..n {
        fuzz_case(case, seed, &mut large_left, &mut st)?;
    }
    let fds2 = count_dir("/proc/self/fd");
    let line = format!(
        "fuzz: {} cases run in {:.1} s, frames in {} out {} ({} restarts discarding frames in \
         flight, {} large), {} invalid property values refused by their ParamSpecs, \
         fds {fds} → {fds2}",
        st.cases,
        t0.elapsed().as_secs_f64(),
        st.frames_in,
        st.frames_out,
        st.restarts,
        st.large,
        st.invalid
    );
    if fds2 > fds {
        return Err(format!("{line}: growth"));
    }
    Ok(line)
}

// ---------------------------------------------------------------------------------------------

fn run(a: Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstimdn::plugin_register_static().map_err(|e| e.to_string())?;
    // one line per case, as it finishes
    let mut failed = Vec::new();
    let mut report = |name: &str, r: Result<String, String>| match r {
        Ok(line) => println!("ok   {line}"),
        Err(e) => {
            println!("FAIL {name}: {e}");
            failed.push(name.to_string());
        }
    };
    if a.frames > 0 {
        for (depth, format) in [(0, "RGB"), (1, "I420"), (2, "NV12"), (8, "BGRA")] {
            report(
                &format!("frames depth={depth}"),
                frames_at(depth, format, a.frames, a.model_path.as_deref()),
            );
        }
    }
    if a.cycles > 0 {
        report("cycles", cycles(a.cycles));
    }
    if a.seeks > 0 {
        report("seeks", seeks(a.seeks, a.seed));
    }
    if a.fuzz > 0 {
        report("fuzz", fuzz(a.fuzz, a.large, a.seed));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

fn main() -> ExitCode {
    common::main_with("soak", parse_args, run)
}
