//! The seek storm: flushing accurate seeks to random positions of an H.264 MP4, one after the
//! other while frames are in flight.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::pipeline::{Pipeline, no_errors, stop_within, wait_for};
use super::rng::XorShift;
use super::{FRAME_30, TempPath, WAIT, lock, temp_path};

/// A 5 s, 64×36, 30 fps H.264 MP4 with a keyframe every 10 frames.
pub fn make_mp4(path: &Path) -> Result<(), String> {
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers=150 ! video/x-raw,width=64,height=36,framerate=30/1 ! \
         x264enc key-int-max=10 ! mp4mux ! filesink location={}",
        path.display()
    ))?;
    p.play()?;
    wait_for(&p.bus(), &[gst::MessageType::Eos], WAIT * 3)
        .map_err(|e| format!("writing the MP4: {e}"))?;
    Ok(())
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

/// Seeks `n` times to seeded random positions in an MP4 made for the purpose, with frames of
/// the last seek in flight or after EOS; each seek must complete within 5 s with no frame from
/// before its target after its flush, and the last play to EOS. Returns the completion times
/// (from the seek call to the first buffer at the new position leaving the element), sorted.
pub fn seek_storm(n: u64, seed: u64) -> Result<Vec<Duration>, String> {
    let dir = TempPath(temp_path("seek"));
    std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
    let mp4 = dir.0.join("clip.mp4");
    make_mp4(&mp4)?;
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
        .ok_or("probe")?;
    let bus = p.bus();
    p.set_state(gst::State::Paused).map_err(|e| e.to_string())?;
    wait_for(&bus, &[gst::MessageType::AsyncDone], WAIT)?;
    p.play()?;

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
        no_errors(&bus).map_err(|e| format!("after seek {k}: {e}"))?;
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
    no_errors(&bus)?;
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
    times.sort();
    Ok(times)
}
