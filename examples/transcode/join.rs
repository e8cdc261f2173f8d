//! `transcode join OUT --audio-from IN SEGMENT...`: the segments' video, one after the other,
//! and IN's audio, both as they are (parsed, never decoded), into one MP4.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

#[derive(Debug)]
pub struct Args {
    output: String,
    audio_from: Option<String>,
    segments: Vec<String>,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let (mut positional, mut audio_from) = (Vec::new(), None);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--audio-from" => {
                    audio_from = Some(args.next().ok_or("--audio-from needs a value")?);
                }
                a if a.starts_with("--") => return Err(format!("join: unknown option {a}")),
                _ => positional.push(arg),
            }
        }
        if positional.len() < 2 {
            return Err("join: expected OUT and at least one SEGMENT".into());
        }
        let output = positional.remove(0);
        Ok(Args {
            output,
            audio_from,
            segments: positional,
        })
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("no GStreamer element {factory} (scripts/install-deps.sh)"))
}

/// `filesrc location=path ! parsebin` in `pipeline`; returns the parsebin.
fn parsed_file(pipeline: &gst::Pipeline, path: &str) -> Result<gst::Element, String> {
    if !std::path::Path::new(path).is_file() {
        return Err(format!("{path}: no such file"));
    }
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path)
        .build()
        .map_err(|e| e.to_string())?;
    let parse = make("parsebin")?;
    pipeline
        .add_many([&src, &parse])
        .map_err(|e| e.to_string())?;
    src.link(&parse).map_err(|e| e.to_string())?;
    Ok(parse)
}

/// Links each stream `parsebin` finds whose caps start with `kind` to `target()` (through
/// `prepare(pad, caps)`'s elements and a queue), and every other stream to a fakesink. `target`
/// is asked once per matching stream; a stream it has no pad for is an error.
fn route(
    pipeline: &gst::Pipeline,
    parse: &gst::Element,
    kind: &'static str,
    prepare: fn(&gst::Pad, &gst::Caps) -> Result<Vec<gst::Element>, String>,
    target: impl Fn() -> Option<gst::Pad> + Send + Sync + 'static,
) {
    let pipeline = pipeline.downgrade();
    parse.connect_pad_added(move |parse, pad| {
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let wanted = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with(kind));
        let linked = (|| {
            let sink = match wanted.then(&target) {
                Some(None) => return Err(format!("no muxer pad for a {kind} stream")),
                Some(Some(sink)) => {
                    let mut chain = prepare(pad, &caps)?;
                    chain.push(make("queue")?);
                    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
                    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
                    let last = chain.last().and_then(|e| e.static_pad("src"));
                    last.ok_or("queue without src")?
                        .link(&sink)
                        .map_err(|e| format!("linking a {kind} stream to the muxer: {e:?}"))?;
                    chain
                }
                None => return discard(&pipeline, pad),
            };
            for e in sink.iter().rev() {
                e.sync_state_with_parent().map_err(|e| e.to_string())?;
            }
            let sink_pad = sink[0].static_pad("sink").ok_or("no sink pad")?;
            pad.link(&sink_pad).map_err(|e| {
                let codec = caps
                    .structure(0)
                    .map_or("?".into(), |s| s.name().to_string());
                format!("{codec} cannot go into an MP4 file ({e:?})")
            })?;
            Ok::<_, String>(())
        })();
        if let Err(e) = linked {
            gst::element_error!(parse, gst::CoreError::Negotiation, ("{}", e));
        }
    });
}

/// A segment's video: its running time made its timestamps (`keep_timestamps`), and decode
/// timestamps computed again where the codec reorders frames (Matroska stores none).
fn segment_video(pad: &gst::Pad, caps: &gst::Caps) -> Result<Vec<gst::Element>, String> {
    keep_timestamps(pad);
    let name = caps.structure(0).map(|s| s.name().to_string());
    Ok(match name.as_deref() {
        Some("video/x-h264") => vec![make("h264timestamper")?],
        Some("video/x-h265") => vec![make("h265timestamper")?],
        _ => Vec::new(),
    })
}

/// Makes running time equal to the timestamps on `pad`: a demuxer starts each file's running
/// time at zero, and the segments must instead land where their frames were in the input.
fn keep_timestamps(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        let Some(gst::EventView::Segment(ev)) = info.event().map(|e| e.view()) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(segment) = ev.segment().downcast_ref::<gst::ClockTime>() else {
            return gst::PadProbeReturn::Ok;
        };
        let mut segment = segment.clone();
        segment.set_base(segment.start());
        let seqnum = ev.event().seqnum();
        info.data = Some(gst::PadProbeData::Event(
            gst::event::Segment::builder(&segment)
                .seqnum(seqnum)
                .build(),
        ));
        gst::PadProbeReturn::Ok
    });
}

/// Links `pad` to a fakesink of its own.
fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let fake = make("fakesink")?;
    // no preroll: the demuxer's one thread must reach the other streams too
    fake.set_property("sync", false);
    fake.set_property("async", false);
    pipeline.add(&fake).map_err(|e| e.to_string())?;
    fake.sync_state_with_parent().map_err(|e| e.to_string())?;
    let sink = fake.static_pad("sink").ok_or("no sink pad")?;
    pad.link(&sink).map(|_| ()).map_err(|e| format!("{e:?}"))
}

/// The audio as it is.
fn no_change(_: &gst::Pad, _: &gst::Caps) -> Result<Vec<gst::Element>, String> {
    Ok(Vec::new())
}

/// How many audio streams `input` has: the muxer's pads must all exist before it starts (it
/// gives none afterwards), and parsebin finds the streams only once data flows.
fn count_audio_streams(input: &str) -> Result<usize, String> {
    let pipeline = gst::Pipeline::new();
    let parse = parsed_file(&pipeline, input)?;
    // (streams, audio streams)
    let count = Arc::new(Mutex::new((0usize, 0usize)));
    {
        let (count, pipeline) = (count.clone(), pipeline.downgrade());
        parse.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let audio = caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("audio/"));
            let mut count = count.lock().unwrap_or_else(|e| e.into_inner());
            count.0 += 1;
            count.1 += usize::from(audio);
            // a queue each, so that every stream prerolls: PAUSED is reached once all are found
            let (Some(pipeline), Ok(queue), Ok(fake)) =
                (pipeline.upgrade(), make("queue"), make("fakesink"))
            else {
                return;
            };
            let _ = pipeline.add_many([&queue, &fake]);
            let _ = queue.link(&fake);
            let _ = fake.sync_state_with_parent();
            let _ = queue.sync_state_with_parent();
            if let Some(sink) = queue.static_pad("sink") {
                let _ = pad.link(&sink);
            }
        });
    }
    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    let streams = || count.lock().unwrap_or_else(|e| e.into_inner()).0;
    let _ = pipeline.set_state(gst::State::Paused);
    // parsebin adds all its pads at once, each with a sink that then prerolls: PAUSED is
    // reached again once every stream has been found
    let mut found = Err(format!("{input}: no streams found within 30 s"));
    for _ in 0..3000 {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            found = Err(super::common::describe(&msg).unwrap_or_default());
            break;
        }
        if streams() > 0 {
            let (reached, _, _) = pipeline.state(gst::ClockTime::from_seconds(30));
            found = reached
                .map(|_| ())
                .map_err(|_| format!("{input}: does not preroll"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = pipeline.set_state(gst::State::Null);
    found?;
    Ok(count.lock().unwrap_or_else(|e| e.into_inner()).1)
}

pub fn run(args: &Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    let concat = make("concat")?;
    // the segments carry the input's timestamps: keep them rather than make them adjacent
    concat.set_property("adjust-base", false);
    let mux = make("mp4mux")?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", &args.output)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&concat, &mux, &sink])
        .map_err(|e| e.to_string())?;
    let video_pad = mux
        .request_pad_simple("video_%u")
        .ok_or("mp4mux gave no video pad")?;
    concat
        .static_pad("src")
        .ok_or("concat without src")?
        .link(&video_pad)
        .map_err(|e| format!("{e:?}"))?;
    mux.link(&sink).map_err(|e| e.to_string())?;
    for path in &args.segments {
        let parse = parsed_file(&pipeline, path)?;
        // concat's sink pads in the segments' order, requested now, linked when parsed
        let pad = concat
            .request_pad_simple("sink_%u")
            .ok_or("concat gave no sink pad")?;
        let slot = Arc::new(Mutex::new(Some(pad)));
        route(&pipeline, &parse, "video/", segment_video, move || {
            slot.lock().unwrap_or_else(|e| e.into_inner()).take()
        });
    }
    if let Some(input) = &args.audio_from {
        let parse = parsed_file(&pipeline, input)?;
        let pads = (0..count_audio_streams(input)?)
            .map(|_| {
                mux.request_pad_simple("audio_%u")
                    .ok_or("mp4mux gave no audio pad")
            })
            .collect::<Result<VecDeque<_>, _>>()?;
        let pads = Mutex::new(pads);
        route(&pipeline, &parse, "audio/", no_change, move || {
            pads.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
        });
    }
    super::common::run_to_end(&pipeline)?;
    println!("{}", args.output);
    Ok(())
}
