//! A live source through `imdnupscale` to a sink, with per-second statistics: frames in and
//! out of the element, output fps, the latency the pipeline reports (and the element's share
//! of it), and the lag actually measured at the sink (clock running time on arrival minus the
//! frame's running time).
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example live -- [--model-path W] [--seconds 10] \
//!     [--source "v4l2src ! capsfilter caps=video/x-raw,width=320,height=180"] \
//!     [--sink "fakesink sync=true"] [--scale N | --size WxH] [--max-frames-in-flight D] \
//!     [--n-threads T] [--device auto|cpu|cuda] [--model auto|imdn|rtc|as]
//! ```
//!
//! `--sink autovideosink` shows the result on a display. The plugin is registered statically.

mod common;
#[path = "common/element_args.rs"]
mod element_args;

use element_args::{ElementArgs, number};

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

// (a caps filter at the end of a bin description needs the capsfilter element spelled out)
const DEFAULT_SOURCE: &str = "videotestsrc is-live=true pattern=ball ! \
                              capsfilter caps=video/x-raw,width=320,height=180,framerate=30/1";
const DEFAULT_SINK: &str = "fakesink sync=true qos=true";

const USAGE: &str =
    "usage: live [--seconds N] [--source DESC] [--sink DESC] [--scale N | --size WxH] \
[--model-path P] [--model auto|imdn|rtc|as] [--device auto|cpu|cuda] [--n-threads T] \
[--max-frames-in-flight D]

  --source DESC   a gst-launch description of a live source (default: a 320x180 30 fps ball)
  --sink DESC     default \"fakesink sync=true qos=true\"; e.g. autovideosink to watch it";

struct Args {
    seconds: u64,
    source: String,
    sink: String,
    element: ElementArgs,
}

fn parse_args() -> Result<Args, String> {
    let usage = || format!("{USAGE}\n{}", element_args::USAGE);
    let mut a = Args {
        seconds: 10,
        source: DEFAULT_SOURCE.into(),
        sink: DEFAULT_SINK.into(),
        element: ElementArgs::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Err(usage()),
            "--seconds" => a.seconds = number(&arg, &value()?, 1..=86400)?,
            "--source" => a.source = value()?,
            "--sink" => a.sink = value()?,
            other if a.element.take(other, &mut value)? => {}
            other => return Err(format!("unknown argument {other}\n\n{}", usage())),
        }
    }
    Ok(a)
}

/// Counters written by pad probes, read once a second.
#[derive(Default)]
struct Stats {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    /// Lag at the sink of the frames this second, ns (sum, count, max).
    lag: Mutex<(u64, u64, u64)>,
}

fn latency(pad: &gst::Pad, peer: bool) -> Option<(bool, gst::ClockTime)> {
    let mut q = gst::query::Latency::new();
    let ok = if peer {
        pad.peer_query(&mut q)
    } else {
        pad.query(&mut q)
    };
    ok.then(|| {
        let (live, min, _) = q.result();
        (live, min)
    })
}

fn ms(t: gst::ClockTime) -> f64 {
    t.nseconds() as f64 / 1e6
}

fn run(a: Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstimdn::plugin_register_static().map_err(|e| e.to_string())?;
    let source =
        gst::parse::bin_from_description(&a.source, true).map_err(|e| format!("--source: {e}"))?;
    let sink =
        gst::parse::bin_from_description(&a.sink, true).map_err(|e| format!("--sink: {e}"))?;
    let imdn = gst::ElementFactory::make("imdnupscale")
        .name("imdn")
        .build()
        .map_err(|e| e.to_string())?;
    a.element.apply(&imdn);
    let mut caps = gst::Caps::builder("video/x-raw");
    if let Some((w, h)) = a.element.size {
        caps = caps.field("width", w).field("height", h);
    }
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", caps.build())
        .build()
        .map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    let chain = [source.upcast_ref(), &imdn, &filter, sink.upcast_ref()];
    pipeline.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| format!("linking: {e}"))?;

    let stats = Arc::new(Stats::default());
    let pad = |e: &gst::Element, name: &str| {
        e.static_pad(name)
            .ok_or_else(|| format!("{} has no {name} pad", e.name()))
    };
    let (imdn_sink, imdn_src) = (pad(&imdn, "sink")?, pad(&imdn, "src")?);
    let s = stats.clone();
    imdn_sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        s.frames_in.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    let s = stats.clone();
    imdn_src.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        s.frames_out.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    // lag at the sink: the clock's running time now minus the frame's running time
    let s = stats.clone();
    let weak = pipeline.downgrade();
    pad(sink.upcast_ref(), "sink")?.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let (Some(p), Some(buf)) = (weak.upgrade(), info.buffer()) else {
            return gst::PadProbeReturn::Ok;
        };
        let running = pad.sticky_event::<gst::event::Segment>(0).and_then(|ev| {
            let seg = ev.segment().downcast_ref::<gst::ClockTime>()?.clone();
            seg.to_running_time(buf.pts()?)
        });
        if let (Some(clock), Some(base), Some(rt)) = (p.clock(), p.base_time(), running)
            && let Some(now) = clock.time().checked_sub(base)
        {
            let lag = now.nseconds().saturating_sub(rt.nseconds());
            let mut l = s.lag.lock().unwrap_or_else(|e| e.into_inner());
            *l = (l.0 + lag, l.1 + 1, l.2.max(lag));
        }
        gst::PadProbeReturn::Ok
    });

    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    let result = (|| {
        common::play(&pipeline, &bus)?;
        let start = Instant::now();
        let mut tick = start;
        let (mut last_in, mut last_out) = (0u64, 0u64);
        let mut qos_drops = 0u64;
        while start.elapsed() < Duration::from_secs(a.seconds) {
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match msg.view() {
                    gst::MessageView::Error(_) => {
                        return Err(common::describe(&msg).unwrap_or_else(|| "error".into()));
                    }
                    gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
                    gst::MessageView::Eos(_) => {
                        eprintln!("end of stream");
                        break;
                    }
                    gst::MessageView::Qos(_) if msg.src() == Some(imdn.upcast_ref()) => {
                        qos_drops += 1;
                    }
                    gst::MessageView::Latency(_) => {
                        // an element's latency changed: redistribute, as gst-launch does
                        let _ = pipeline.recalculate_latency();
                    }
                    _ => {}
                }
            }
            if tick.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let dt = tick.elapsed().as_secs_f64();
            tick = Instant::now();
            let (fin, fout) = (
                stats.frames_in.load(Ordering::Relaxed),
                stats.frames_out.load(Ordering::Relaxed),
            );
            let lag = std::mem::take(&mut *stats.lag.lock().unwrap_or_else(|e| e.into_inner()));
            let reported = latency(&imdn_src, false);
            let upstream = latency(&imdn_sink, true);
            let lat = match (reported, upstream) {
                (Some((live, total)), Some((_, up))) => format!(
                    "latency {:.1} ms{} (imdnupscale {:.1} ms)",
                    ms(total),
                    if live { "" } else { ", not live" },
                    ms(total.saturating_sub(up))
                ),
                _ => "latency ?".into(),
            };
            let lag = if lag.1 > 0 {
                format!(
                    ", lag at sink mean {:.1} / max {:.1} ms",
                    lag.0 as f64 / lag.1 as f64 / 1e6,
                    lag.2 as f64 / 1e6
                )
            } else {
                String::new()
            };
            eprintln!(
                "{:4.0} s: in {:5.1} fps, out {:5.1} fps, {lat}{lag}",
                start.elapsed().as_secs_f64(),
                (fin - last_in) as f64 / dt,
                (fout - last_out) as f64 / dt,
            );
            (last_in, last_out) = (fin, fout);
        }
        let t = start.elapsed().as_secs_f64();
        let (fin, fout) = (
            stats.frames_in.load(Ordering::Relaxed),
            stats.frames_out.load(Ordering::Relaxed),
        );
        println!(
            "{t:.1} s: {fin} frames into imdnupscale, {fout} out ({:.2} fps); {qos_drops} late \
             frames dropped by QoS",
            fout as f64 / t,
        );
        Ok(())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn main() -> ExitCode {
    common::main_with("live", parse_args, run)
}
