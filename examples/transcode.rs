//! Upscales a video file with `imdnupscale` and writes H.264 (or H.265) + AAC in MP4, keeping
//! the audio.
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example transcode -- IN OUT --scale 2 \
//!     [--model-path weights.safetensors] [--size WxH] [--n-threads T] [--max-frames-in-flight D]
//! ```
//!
//! Pipeline: `filesrc ! decodebin`, then per stream
//! - video: `queue ! videoconvert ! imdnupscale ! capsfilter(size) ! videoconvertscale !
//!   capsfilter(I420, even size) ! x264enc (or x265enc ! h265parse) ! queue ! mp4mux` (the
//!   encoders need even sizes: an odd output, e.g. scale=3 on odd input, is resized to the next
//!   even size). Constant quality by default, with the peak rate scaled to the output's pixels
//!   per second: x264enc would otherwise cap its quality mode at its default 2048 kbit/s and
//!   throw away what the network adds at large sizes;
//! - audio: `queue ! audioconvert ! audioresample ! <AAC encoder> ! queue ! mp4mux`
//!   (avenc_aac, fdkaacenc or voaacenc, whichever is installed);
//! - anything else (subtitles, data): `fakesink`.
//!
//! `--segment START_NS:STOP_NS` upscales only the frames with START_NS ≤ stream time < STOP_NS
//! (no STOP_NS: to the end), video only, and keeps their timestamps in OUT (.mkv): the pieces a
//! cluster job makes (`scripts/cluster-upscale.py`). Two subcommands serve it:
//! `transcode plan IN [--segment-seconds S]` lists segments of about S seconds that start at
//! keyframes (`plan.rs`), and `transcode join OUT --audio-from IN SEGMENT...` joins the pieces
//! into one MP4 without re-encoding them and copies IN's audio packets as they are (`join.rs`).
//!
//! The plugin is registered statically, so no GST_PLUGIN_PATH is needed. Progress goes to
//! stderr every second; an error on the bus is printed and the exit status is 1.

mod common;
#[path = "common/element_args.rs"]
mod element_args;
#[path = "transcode/join.rs"]
mod join;
#[path = "transcode/plan.rs"]
mod plan;
#[path = "transcode/segment.rs"]
mod segment;

use element_args::{ElementArgs, number};

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

const USAGE: &str = "usage: transcode IN OUT [--scale N] [--size WxH] [--model-path P] \
[--model auto|imdn|rtc|as] [--device auto|cpu|cuda] [--n-threads T] [--max-frames-in-flight D] \
[--codec h264|h265] [--quality Q] [--bitrate KBPS] [--compare] [--segment START_NS:STOP_NS]
       transcode plan IN [--segment-seconds S]
       transcode join OUT --audio-from IN SEGMENT...

  --codec C                 h264 (x264enc, default) or h265 (x265enc)
  --quality Q               constant quality: x264's quantizer in quality mode, x265's QP
                            (default 16; lower = better and larger; 0 = lossless for h264)
  --bitrate KBPS            a constant bitrate instead of constant quality
  --n-threads T             (T > 0) also caps the decoder's and the encoder's threads at T, so
                            that a job given T CPUs (a cluster task) uses T cores
  --compare                 a split screen: bicubic (Catmull-Rom) on the left, the network on
                            the right, a black divider between them
  --segment START:STOP      only the frames with START ≤ stream time < STOP (nanoseconds, as
                            plan prints them; STOP may be empty: to the end), video only,
                            their timestamps kept in a .mkv OUT
  --segment-seconds S       (plan) about S seconds a segment (default 10)
  --audio-from IN           (join) the file whose audio packets are copied into OUT";

/// Constant-quality default: measured in BENCHMARKS.md ("What the encoder keeps").
const DEFAULT_QUALITY: u32 = 16;
/// The peak rate of constant quality, in bits per output pixel per frame.
const PEAK_BITS_PER_PIXEL: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    H264,
    H265,
}

#[derive(Debug)]
struct Args {
    input: String,
    output: String,
    element: ElementArgs,
    codec: Codec,
    quality: u32,
    bitrate: Option<u32>,
    compare: bool,
    segment: Option<segment::Range>,
}

/// What the command line asks for.
enum Command {
    Transcode(Args),
    Plan { input: String, seconds: f64 },
    Join(join::Args),
}

fn parse_command() -> Result<Command, String> {
    let usage = || format!("{USAGE}\n{}", element_args::USAGE);
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("plan") => {
            args.next();
            let (mut input, mut seconds) = (None, 10.0);
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--segment-seconds" => {
                        let v = args.next().ok_or("--segment-seconds needs a value")?;
                        seconds = number(&arg, &v, 0.001..=86_400.0)?;
                    }
                    a if a.starts_with("--") => {
                        return Err(format!("unknown option {a}\n\n{}", usage()));
                    }
                    _ if input.is_none() => input = Some(arg),
                    _ => return Err(format!("plan takes one input\n\n{}", usage())),
                }
            }
            let input = input.ok_or_else(|| format!("plan: expected IN\n\n{}", usage()))?;
            Ok(Command::Plan { input, seconds })
        }
        Some("join") => {
            args.next();
            join::Args::parse(args)
                .map(Command::Join)
                .map_err(|e| format!("{e}\n\n{}", usage()))
        }
        _ => parse_args(args).map(Command::Transcode),
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let usage = || format!("{USAGE}\n{}", element_args::USAGE);
    let mut positional = Vec::new();
    let mut element = ElementArgs::default();
    let (mut codec, mut quality, mut bitrate) = (Codec::H264, DEFAULT_QUALITY, None);
    let mut compare = false;
    let mut segment = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Err(usage()),
            "--quality" | "--quantizer" => quality = number(&arg, &value()?, 0..=50)?,
            "--compare" => compare = true,
            "--segment" => segment = Some(segment::Range::parse(&value()?)?),
            "--bitrate" => bitrate = Some(number(&arg, &value()?, 1..=2_048_000)?),
            "--codec" => {
                codec = match value()?.as_str() {
                    "h264" => Codec::H264,
                    "h265" => Codec::H265,
                    other => return Err(format!("--codec {other}: h264 or h265")),
                }
            }
            a if element.take(a, &mut value)? => {}
            a if a.starts_with("--") => return Err(format!("unknown option {a}\n\n{}", usage())),
            _ => positional.push(arg),
        }
    }
    let [input, output]: [String; 2] = positional
        .try_into()
        .map_err(|_| format!("expected IN and OUT\n\n{}", usage()))?;
    Ok(Args {
        input,
        output,
        element,
        codec,
        quality,
        bitrate,
        compare,
        segment,
    })
}

fn make(factory: &str, name: Option<&str>) -> Result<gst::Element, String> {
    let mut b = gst::ElementFactory::make(factory);
    if let Some(n) = name {
        b = b.name(n);
    }
    b.build().map_err(|_| {
        format!(
            "no GStreamer element {factory}: install gstreamer1.0-plugins-good, -bad, -ugly and \
             gstreamer1.0-libav (scripts/install-deps.sh)"
        )
    })
}

fn caps_filter(caps: gst::Caps) -> Result<gst::Element, String> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|e| e.to_string())
}

/// Bicubic (videoscale's Catmull-Rom, the kernel of MATLAB's bicubic) on the left half and
/// imdnupscale (named `imdn`) on the right, both at `ow`×`oh`, with a 4-pixel black divider.
fn split_screen((ow, oh): (i32, i32)) -> Result<gst::Bin, String> {
    let mid = (ow / 2) & !1;
    let (left_end, right_start) = ((mid - 2).max(0), (mid + 2).min(ow));
    let size = format!("capsfilter caps=video/x-raw,width={ow},height={oh}");
    let desc = format!(
        "tee name=t \
         t. ! queue ! videoscale method=catrom ! {size} ! videocrop right={} ! comp.sink_0 \
         t. ! queue ! imdnupscale name=imdn ! {size} ! videocrop left={right_start} ! comp.sink_1 \
         compositor name=comp background=black sink_1::xpos={right_start} ! {size}",
        ow - left_end
    );
    gst::parse::bin_from_description(&desc, true)
        .map_err(|e| format!("building the split screen: {e}"))
}

/// The encoder elements for `args`: constant quality (peak rate from `pixels_per_second`) or
/// `--bitrate`.
fn encoder(args: &Args, pixels_per_second: f64) -> Result<Vec<gst::Element>, String> {
    let peak_kbps =
        (pixels_per_second * PEAK_BITS_PER_PIXEL / 1000.0).clamp(1.0, 2_048_000.0) as u32;
    let threads = args.element.n_threads.filter(|&t| t > 0);
    Ok(match args.codec {
        Codec::H264 => {
            let enc = make("x264enc", None)?;
            if let Some(t) = threads {
                enc.set_property("threads", t);
            }
            match args.bitrate {
                Some(kbps) => set_bitrate(&enc, kbps)?,
                None => {
                    enc.set_property_from_str("pass", "qual");
                    enc.set_property("quantizer", args.quality);
                    // in quality mode x264enc's bitrate is the peak (VBV) rate
                    enc.set_property("bitrate", peak_kbps);
                }
            }
            vec![enc]
        }
        Codec::H265 => {
            let enc = make("x265enc", None)?;
            match args.bitrate {
                Some(kbps) => set_bitrate(&enc, kbps)?,
                None => enc.set_property("qp", args.quality as i32),
            }
            if let Some(t) = threads {
                enc.set_property("option-string", format!("pools={t}"));
            }
            vec![enc, make("h265parse", None)?]
        }
    })
}

/// `--bitrate` within what the encoder takes (x265enc: up to 102 400 kbit/s), else a clear
/// error rather than glib's abort on an out-of-range property.
fn set_bitrate(enc: &gst::Element, kbps: u32) -> Result<(), String> {
    let range = enc
        .find_property("bitrate")
        .and_then(|p| p.downcast::<glib::ParamSpecUInt>().ok())
        .map(|p| p.minimum()..=p.maximum());
    match range {
        Some(r) if r.contains(&kbps) => {
            enc.set_property("bitrate", kbps);
            Ok(())
        }
        Some(r) => Err(format!(
            "--bitrate {kbps}: {} takes {} to {} kbit/s",
            enc.factory()
                .map_or("the encoder".into(), |f| f.name().to_string()),
            r.start(),
            r.end()
        )),
        None => Err("the encoder has no bitrate property".into()),
    }
}

/// Adds `chain` to the pipeline, links it in order, links `src` to its head and its tail to
/// `sink`, and brings it to the pipeline's state (downstream first).
fn attach(
    pipeline: &gst::Pipeline,
    src: &gst::Pad,
    chain: &[gst::Element],
    sink: Option<&gst::Pad>,
) -> Result<(), String> {
    pipeline.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| format!("linking {chain:?}: {e}"))?;
    let (Some(head), Some(tail)) = (chain.first(), chain.last()) else {
        return Ok(());
    };
    if let Some(sink) = sink {
        let tail_src = tail
            .static_pad("src")
            .ok_or("no src pad at the end of the chain")?;
        tail_src
            .link(sink)
            .map_err(|e| format!("linking to the muxer: {e:?}"))?;
    }
    for e in chain.iter().rev() {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let head_sink = head.static_pad("sink").ok_or("no sink pad")?;
    src.link(&head_sink)
        .map_err(|e| format!("linking the decoder: {e:?}"))?;
    Ok(())
}

/// What the progress report reads; written by a probe on imdnupscale's src pad.
#[derive(Default)]
struct Progress {
    /// Stream time of the last upscaled frame, ns (u64::MAX: none yet).
    position_ns: AtomicU64,
    frames: AtomicU64,
    /// decodebin's video pad, to ask for the duration.
    video_pad: Mutex<Option<gst::Pad>>,
    /// Output size, once known.
    out_size: Mutex<Option<(i32, i32)>>,
}

/// Where the decoded streams go: the muxer, with the settings and the progress report.
#[derive(Clone)]
struct Output {
    mux: gst::Element,
    args: Arc<Args>,
    progress: Arc<Progress>,
    /// With `--segment`: what holds the video back until the seek to the range.
    gate: Option<Arc<segment::Gate>>,
}

fn video_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    caps: &gst::Caps,
    out: &Output,
) -> Result<(), String> {
    let Output {
        mux,
        args,
        progress,
        gate,
    } = out;
    let info = gst_video::VideoInfo::from_caps(caps)
        .map_err(|e| format!("decoded video caps {caps}: {e}"))?;
    let (w, h) = (info.width() as i32, info.height() as i32);
    let scale = args.element.scale_property() as i32;
    let (ow, oh) = args.element.size.unwrap_or((w * scale, h * scale));
    // x264 wants even sides
    let (ew, eh) = (ow + ow % 2, oh + oh % 2);
    if (ew, eh) != (ow, oh) {
        eprintln!("output {ow}x{oh} is odd: resizing to {ew}x{eh} for x264");
    }
    *progress.out_size.lock().unwrap_or_else(|e| e.into_inner()) = Some((ew, eh));
    // the element at `ow`×`oh`, or (--compare) a split screen of bicubic and the element
    let (upscaled, imdn) = if args.compare {
        let bin = split_screen((ow, oh))?;
        let imdn = bin
            .by_name("imdn")
            .ok_or("no imdnupscale in the split screen")?;
        (bin.upcast::<gst::Element>(), imdn)
    } else {
        let imdn = make("imdnupscale", Some("imdn"))?;
        (imdn.clone(), imdn)
    };
    args.element.apply(&imdn);
    let fps = info.fps();
    let fps = if fps.numer() > 0 && fps.denom() > 0 {
        fps.numer() as f64 / fps.denom() as f64
    } else {
        30.0
    };
    let encoder = encoder(args, f64::from(ew) * f64::from(eh) * fps)?;
    let chain: Vec<gst::Element> = [
        make("queue", None)?,
        make("videoconvert", None)?,
        upscaled,
        caps_filter(
            gst::Caps::builder("video/x-raw")
                .field("width", ow)
                .field("height", oh)
                .build(),
        )?,
        make("videoconvertscale", None)?,
        caps_filter(
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", ew)
                .field("height", eh)
                .build(),
        )?,
    ]
    .into_iter()
    .chain(encoder)
    .chain([make("queue", None)?])
    .collect::<Vec<_>>();
    let mux_pad = mux
        .request_pad_simple("video_%u")
        .ok_or("mp4mux gave no video pad")?;
    let out = imdn.static_pad("src").ok_or("imdnupscale has no src pad")?;
    let p = progress.clone();
    out.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let Some(buf) = info.buffer() {
            p.frames.fetch_add(1, Ordering::Relaxed);
            let time = buf
                .pts()
                .map(|pts| segment::stream_time(pad, pts).unwrap_or(pts));
            if let Some(t) = time {
                p.position_ns.store(t.nseconds(), Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
    if let Some(gate) = gate {
        gate.install(pad);
        mux_pad.set_offset(gate.running_time_offset());
    }
    attach(pipeline, pad, &chain, Some(&mux_pad))?;
    *progress.video_pad.lock().unwrap_or_else(|e| e.into_inner()) = Some(pad.clone());
    eprintln!(
        "video: {w}x{h} {:?} → {ow}x{oh} ({})",
        info.format(),
        match scale {
            0 => "scale=0".to_string(),
            s => format!("×{s}"),
        }
    );
    Ok(())
}

fn audio_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    mux: &gst::Element,
) -> Result<(), String> {
    let encoder = ["avenc_aac", "fdkaacenc", "voaacenc"]
        .into_iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
        .ok_or(
            "the input has audio but no AAC encoder is installed (avenc_aac is in \
             gstreamer1.0-libav, voaacenc in gstreamer1.0-plugins-bad)",
        )?;
    let chain = [
        make("queue", None)?,
        make("audioconvert", None)?,
        make("audioresample", None)?,
        make(encoder, None)?,
        make("queue", None)?,
    ];
    let mux_pad = mux
        .request_pad_simple("audio_%u")
        .ok_or("mp4mux gave no audio pad")?;
    attach(pipeline, pad, &chain, Some(&mux_pad))?;
    eprintln!("audio: kept, encoded with {encoder}");
    Ok(())
}

fn on_pad_added(pipeline: &gst::Pipeline, pad: &gst::Pad, out: &Output) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    if name.starts_with("video/") {
        video_branch(pipeline, pad, &caps, out)
    } else if name.starts_with("audio/") && out.gate.is_none() {
        audio_branch(pipeline, pad, &out.mux)
    } else {
        eprintln!("ignoring a {name} stream");
        let sink = make("fakesink", None)?;
        // no preroll: the demuxer's one thread must reach the other streams too
        sink.set_property("sync", false);
        sink.set_property("async", false);
        attach(pipeline, pad, &[sink], None)
    }
}

fn clock(t: Duration) -> String {
    let s = t.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn run(args: Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstimdn::plugin_register_static().map_err(|e| e.to_string())?;
    if !std::path::Path::new(&args.input).is_file() {
        return Err(format!("{}: no such file", args.input));
    }
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", &args.input)
        .build()
        .map_err(|e| e.to_string())?;
    let decode = make("decodebin", None)?;
    if let Some(t) = args.element.n_threads.filter(|&t| t > 0) {
        cap_decoder_threads(&decode, t);
    }
    let mux = make(muxer_for(&args.output), None)?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", &args.output)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&src, &decode, &mux, &sink])
        .map_err(|e| e.to_string())?;
    src.link(&decode).map_err(|e| e.to_string())?;
    mux.link(&sink).map_err(|e| e.to_string())?;

    let progress = Arc::new(Progress::default());
    progress.position_ns.store(u64::MAX, Ordering::Relaxed);
    let gate = args.segment.map(segment::Gate::new);
    let args = Arc::new(args);
    {
        let pipeline = pipeline.downgrade();
        let out = Output {
            mux: mux.clone(),
            args: args.clone(),
            progress: progress.clone(),
            gate: gate.clone(),
        };
        decode.connect_pad_added(move |decode, pad| {
            let Some(pipeline) = pipeline.upgrade() else {
                return;
            };
            if let Err(e) = on_pad_added(&pipeline, pad, &out) {
                gst::element_error!(decode, gst::CoreError::Negotiation, ("{}", e));
            }
        });
    }

    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    let result = (|| {
        if let Some(gate) = &gate {
            seek_when_ready(&pipeline, &bus, &progress, gate.seek())?;
        }
        common::play(&pipeline, &bus)?;
        let start = Instant::now();
        let mut last = (start, 0u64);
        loop {
            let msg = bus.timed_pop(gst::ClockTime::from_seconds(1));
            if let Some(msg) = &msg {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(_) => {
                        return Err(common::describe(msg).unwrap_or_else(|| "error".into()));
                    }
                    gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
                    _ => {}
                }
            }
            if last.0.elapsed() >= Duration::from_secs(1) {
                last = report(&progress, args.segment, start, last);
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let frames = progress.frames.load(Ordering::Relaxed);
        let size = *progress.out_size.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!(
            "done: {frames} frames in {elapsed:.1} s ({:.2} fps){}",
            frames as f64 / elapsed.max(1e-9),
            size.map_or(String::new(), |(w, h)| format!(", {w}x{h}"))
        );
        Ok(())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    println!("{}", args.output);
    Ok(())
}

/// Caps the threads of the libav decoders `decode` picks at `threads`.
fn cap_decoder_threads(decode: &gst::Element, threads: u32) {
    let Some(bin) = decode.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_deep_element_added(move |_, _, element| {
        if element.find_property("max-threads").is_some() {
            element.set_property("max-threads", threads as i32);
        }
    });
}

/// Matroska for `.mkv` (it keeps timestamps as they come, so a segment's frames keep the
/// input's), else MP4 (which starts every file at zero).
fn muxer_for(output: &str) -> &'static str {
    if output.to_ascii_lowercase().ends_with(".mkv") {
        "matroskamux"
    } else {
        "mp4mux"
    }
}

/// With `--segment`: brings the pipeline to PAUSED (the video held back by the gate), and once
/// decodebin has given the video pad, seeks the demuxer to the range.
fn seek_when_ready(
    pipeline: &gst::Pipeline,
    bus: &gst::Bus,
    progress: &Progress,
    seek: gst::Event,
) -> Result<(), String> {
    if pipeline.set_state(gst::State::Paused).is_err() {
        return common::play(pipeline, bus);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let video_pad = || {
        progress
            .video_pad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    let pad = loop {
        if let Some(pad) = video_pad() {
            break pad;
        }
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(20),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            return Err(common::describe(&msg).unwrap_or_else(|| "the input has no video".into()));
        }
        if Instant::now() > deadline {
            return Err("no video stream after 60 s".into());
        }
    };
    // upstream from the decoder's pad, past muxers that refuse seeks (matroskamux)
    if !pad.send_event(seek) {
        return Err("the input cannot seek to the segment".into());
    }
    Ok(())
}

/// Prints position/duration, percent, fps over the last interval and the ETA.
fn report(
    progress: &Progress,
    range: Option<segment::Range>,
    start: Instant,
    (t0, f0): (Instant, u64),
) -> (Instant, u64) {
    let now = Instant::now();
    let frames = progress.frames.load(Ordering::Relaxed);
    let fps = (frames - f0) as f64 / (now - t0).as_secs_f64();
    let pos = match progress.position_ns.load(Ordering::Relaxed) {
        u64::MAX => None,
        ns => Some(Duration::from_nanos(ns)),
    };
    let dur = progress
        .video_pad
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|p| p.query_duration::<gst::ClockTime>())
        .map(|d| Duration::from_nanos(d.nseconds()));
    let elapsed = start.elapsed();
    let whole = segment::Range {
        start: gst::ClockTime::ZERO,
        stop: None,
    };
    let clock_time = |d: Duration| gst::ClockTime::from_nseconds(d.as_nanos() as u64);
    let frac = pos.and_then(|p| {
        range
            .unwrap_or(whole)
            .fraction(clock_time(p), dur.map(clock_time))
    });
    let line = match (pos, dur, frac) {
        (Some(p), Some(d), Some(frac)) => {
            let eta = if frac > 0.0 {
                clock(elapsed.mul_f64((1.0 - frac) / frac))
            } else {
                "?".into()
            };
            format!(
                "{} / {} ({:5.1}%), {fps:.2} fps, ETA {eta}",
                clock(p),
                clock(d),
                100.0 * frac
            )
        }
        (Some(p), _, _) => format!("{} / ?, {fps:.2} fps", clock(p)),
        _ => format!("starting ({})", clock(elapsed)),
    };
    eprintln!("{line}");
    (now, frames)
}

fn main() -> ExitCode {
    common::main_with("transcode", parse_command, |command| match command {
        Command::Transcode(args) => run(args),
        Command::Plan { input, seconds } => plan::run(&input, seconds),
        Command::Join(args) => join::run(&args),
    })
}
