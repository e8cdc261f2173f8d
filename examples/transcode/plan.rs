//! `transcode plan IN --segment-seconds S`: the input's video frames and keyframes, read by
//! demuxing and parsing only (nothing is decoded), cut into segments of about S seconds that each
//! start at a keyframe. Printed as one JSON object a line: the segments, then a summary.

use std::sync::{Arc, Mutex};

use gst::prelude::*;

/// One video access unit as the parser gave it, at its stream time (what seeks use).
#[derive(Debug, Clone, Copy)]
struct Frame {
    pts_ns: u64,
    keyframe: bool,
}

/// A time range of the input: every frame with `start_ns <= stream time < stop_ns` (no stop: to
/// the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start_ns: u64,
    pub stop_ns: Option<u64>,
    pub frames: usize,
}

/// Segments of about `seconds` each, cut at keyframes; the first starts at 0 so that nothing
/// before the first keyframe is lost, the last runs to the end.
fn cut(frames: &[Frame], seconds: f64) -> Vec<Segment> {
    let mut pts: Vec<u64> = frames.iter().map(|f| f.pts_ns).collect();
    pts.sort_unstable();
    let mut keys: Vec<u64> = frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.pts_ns)
        .collect();
    keys.sort_unstable();
    let length_ns = (seconds * 1e9) as u64;
    let mut starts = vec![0u64];
    for &k in &keys {
        if k >= starts[starts.len() - 1] + length_ns {
            starts.push(k);
        }
    }
    let count = |lo: u64, hi: Option<u64>| {
        pts.iter()
            .filter(|&&p| p >= lo && hi.is_none_or(|h| p < h))
            .count()
    };
    starts
        .iter()
        .enumerate()
        .map(|(i, &start_ns)| {
            let stop_ns = starts.get(i + 1).copied();
            Segment {
                start_ns,
                stop_ns,
                frames: count(start_ns, stop_ns),
            }
        })
        .collect()
}

/// Reads the frames of `input`'s first video stream (timestamps and keyframe flags).
fn read_frames(input: &str) -> Result<Vec<Frame>, String> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! parsebin name=parse",
        input.replace('"', "\\\"")
    ))
    .map_err(|e| format!("building the pipeline: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let parse = pipeline.by_name("parse").ok_or("no parsebin")?;
    let frames = Arc::new(Mutex::new(Vec::new()));
    let video_taken = Arc::new(Mutex::new(false));
    {
        let pipeline = pipeline.downgrade();
        let frames = frames.clone();
        parse.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline.upgrade() else {
                return;
            };
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                .unwrap_or(false);
            let Ok(sink) = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
            else {
                return;
            };
            let first_video = is_video && !std::mem::replace(&mut *lock(&video_taken), true);
            if first_video {
                let frames = frames.clone();
                pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                    if let Some(buf) = info.buffer() {
                        let time = buf
                            .pts()
                            .and_then(|pts| super::segment::stream_time(pad, pts));
                        if let Some(pts) = time {
                            lock(&frames).push(Frame {
                                pts_ns: pts.nseconds(),
                                keyframe: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
                            });
                        }
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            let _ = pipeline.add(&sink);
            let _ = sink.sync_state_with_parent();
            if let Some(sink_pad) = sink.static_pad("sink") {
                let _ = pad.link(&sink_pad);
            }
        });
    }
    super::common::run_to_end(&pipeline)?;
    let frames = std::mem::take(&mut *lock(&frames));
    if frames.is_empty() {
        return Err(format!("{input}: no video frames with timestamps"));
    }
    Ok(frames)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints the plan of `input`: one line per segment, then the totals.
pub fn run(input: &str, seconds: f64) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    if !std::path::Path::new(input).is_file() {
        return Err(format!("{input}: no such file"));
    }
    let frames = read_frames(input)?;
    let segments = cut(&frames, seconds);
    for (i, s) in segments.iter().enumerate() {
        println!(
            "{{\"segment\": {i}, \"start_ns\": {}, \"stop_ns\": {}, \"frames\": {}}}",
            s.start_ns,
            s.stop_ns.map_or("null".into(), |t| t.to_string()),
            s.frames
        );
    }
    let keyframes = frames.iter().filter(|f| f.keyframe).count();
    println!(
        "{{\"frames\": {}, \"keyframes\": {keyframes}, \"segments\": {}}}",
        frames.len(),
        segments.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: u64, key_every: u64) -> Vec<Frame> {
        (0..n)
            .map(|i| Frame {
                pts_ns: i * 40_000_000,
                keyframe: i % key_every == 0,
            })
            .collect()
    }

    #[test]
    fn segments_start_at_keyframes_and_cover_every_frame_once() {
        // 25 fps, a keyframe every 2 s, 10 s: 2-second segments
        let f = frames(250, 50);
        let s = cut(&f, 2.0);
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|s| s.start_ns % 2_000_000_000 == 0));
        assert_eq!(s.iter().map(|s| s.frames).sum::<usize>(), 250);
        assert_eq!(s[4].stop_ns, None);
        for w in s.windows(2) {
            assert_eq!(w[0].stop_ns, Some(w[1].start_ns));
        }
    }

    #[test]
    fn a_segment_never_splits_a_group_of_pictures() {
        // 3-second segments on 2-second keyframes: cuts at 4 s and 8 s
        let s = cut(&frames(250, 50), 3.0);
        let starts: Vec<u64> = s.iter().map(|s| s.start_ns).collect();
        assert_eq!(starts, [0, 4_000_000_000, 8_000_000_000]);
    }

    #[test]
    fn frames_before_the_first_keyframe_belong_to_the_first_segment() {
        let mut f = frames(100, 50);
        f[0].keyframe = false;
        let s = cut(&f, 1.0);
        assert_eq!(s[0].start_ns, 0);
        assert_eq!(s.iter().map(|s| s.frames).sum::<usize>(), 100);
    }
}
