//! Reliability of `imdnupscale`: long streams at every depth, state cycles (threads, fds, RSS),
//! a seek storm, renegotiation every few frames, fuzzed frames / properties / states / caps /
//! weights files, a live stream that cannot keep up, and a fault mid-stream.
//!
//! This is the CI subset: small frames and moderate counts, the whole file well under a
//! minute on 2 cores. `examples/soak.rs` runs the long versions (`--frames`, `--seeks`,
//! `--fuzz`, `--cycles`) of the same runs, from `tests/common`.
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

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::{VideoFormat, VideoInfo};

use common::frames::{FORMATS, check_nearest, layout, make_frame};
use common::fuzz::fuzz_run;
use common::pipeline::{
    OwnBus, Pipeline, count_buffers, describe, pad, pending_errors, stop_within, wait_for,
};
use common::rng::XorShift;
use common::runs::{run_frames, state_cycles};
use common::seek::seek_storm;
use common::{Growth, TempPath, WAIT, fd_count, init, lock, temp_path, weights, worker_threads};

/// Held by every test: under `cargo test` the process-wide counts (threads, fds, RSS) would
/// otherwise include other tests running at the same time. Free under nextest.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    lock(&SERIAL)
}

// ---------------------------------------------------------------------------------------------
// 1. soak: every frame once, in order; state cycles; RSS
// ---------------------------------------------------------------------------------------------

#[test]
fn soak_every_frame_comes_out_once_in_order_at_every_depth() {
    let _serial = serial();
    init();
    // 100 frames per format, the formats dealt round the depths: every format once
    let per_run = 100u64;
    let eos_within = WAIT + Duration::from_millis(20 * per_run);
    let depths = [0i32, 1, 2, 8];
    for (i, depth) in depths.into_iter().enumerate() {
        for format in FORMATS.iter().skip(i).step_by(depths.len()) {
            let format = format.to_str();
            // in and out: videotestsrc's PTS at 30/1 (i × 10⁹ / 30, rounded down), each once,
            // in order; frames-processed counts them all
            run_frames(
                format,
                (32, 18),
                depth,
                per_run,
                Some("test:nearest"),
                eos_within,
            )
            .and_then(|run| run.check(per_run))
            .unwrap_or_else(|e| panic!("{format} depth {depth}: {e}"));
        }
    }
}

#[test]
fn state_cycles_leak_no_threads_and_no_fds() {
    let _serial = serial();
    init();
    // half of the cycles play to EOS, half go to NULL with frames in the worker; none may
    // leave a worker thread alive at NULL
    let cycles = 30;
    let run = state_cycles(cycles).unwrap();
    eprintln!("{cycles} cycles: {}", Growth(run.before, run.after));
    run.before.no_growth_to(run.after).unwrap();
}

#[test]
fn rss_stays_flat_over_a_long_stream() {
    let _serial = serial();
    init();
    let (warm_up, frames) = (500u64, 3000u64);
    // RSS every 500 frames, sampled on the streaming thread as they pass; the EOS bound is a
    // hang detector only: about 4 s on an idle 2-core machine, over 60 s when starved
    let run = run_frames(
        "I420",
        (64, 36),
        2,
        warm_up + frames,
        Some("test:nearest"),
        WAIT * 15,
    )
    .unwrap();
    let samples = &run.rss;
    eprintln!("RSS (frame, KiB): {samples:?}");
    assert_eq!(samples.len() as u64, (warm_up + frames) / 500);
    // from the sample after the warm-up
    let growth = run.rss_growth_kb();
    assert!(
        growth < 5 * 1024,
        "RSS grew by {growth} KiB over {frames} frames after the warm-up: {samples:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. seek storm
// ---------------------------------------------------------------------------------------------

#[test]
fn seek_storm_completes_every_seek_without_stale_frames() {
    let _serial = serial();
    init();
    let n = 30;
    let times = seek_storm(n, 0x5eed_0001).unwrap();
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
    ))
    .unwrap();
    let sink = p.by("out").unwrap();
    let cf = p.by("cf").unwrap();
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

#[test]
fn fuzzed_frames_properties_and_states() {
    let _serial = serial();
    init();
    // All 1000 cases run in CI (about 10 s on 2 cores), with at most 2 large frames (up to
    // 4096×2304 at ×2, about 1 s each); soak.rs runs more. After one warm-up case nothing may
    // accumulate: a leaked element would keep its bus and with it the bus's file descriptors.
    let run = fuzz_run(1000, 0xf022_0000, 2).unwrap();
    eprintln!(
        "fuzz: {:?} in {:?}, slowest case {} ({:?}); {}",
        run.stats,
        run.took,
        run.slowest.1,
        run.slowest.0,
        Growth(run.before, run.after)
    );
    run.before.no_growth_to(run.after).unwrap();
    let stats = &run.stats;
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
    let st = TempPath(weights("valid.safetensors", imdn::model::Config::rtc(2)));
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
    )
    .unwrap();
    let up = p.by("up").unwrap();
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
    )
    .unwrap();
    let up = p.by("up").unwrap();
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
