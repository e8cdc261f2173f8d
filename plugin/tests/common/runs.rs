//! Streams through the element in a pipeline: many frames at one depth (every frame out once,
//! in order, RSS sampled as they pass), and NULL ↔ PLAYING cycles with frames flowing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::pipeline::{Pipeline, count_buffers, no_errors, stop_within, wait_for};
use super::{Counts, WAIT, lock, poll_until, rss_kb, worker_threads};

/// Checks the PTS of buffers as they pass (nothing is stored: a growing log would show up in
/// the RSS): the i-th must be videotestsrc's i × 10⁹ / 30 at 30/1.
#[derive(Debug, Default)]
pub struct PtsCheck {
    pub seen: u64,
    /// The first buffer with another PTS: its index and PTS.
    pub first_bad: Option<(u64, Option<gst::ClockTime>)>,
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

/// What went in and came out of the element's pads during [`run_frames`].
#[derive(Debug)]
pub struct FramesRun {
    pub ins: PtsCheck,
    pub outs: PtsCheck,
    /// `frames-processed` at EOS.
    pub processed: u64,
    /// (frames out, RSS in KiB) every 500 frames out.
    pub rss: Vec<(u64, u64)>,
}

impl FramesRun {
    /// `Err` unless every one of the `frames` frames came in and out once, in order, with its
    /// input PTS.
    pub fn check(&self, frames: u64) -> Result<(), String> {
        let (ins, outs) = (self.ins.seen, self.outs.seen);
        if ins != frames || outs != frames || self.processed != frames {
            return Err(format!(
                "{ins} in, {outs} out, frames-processed {}, expected {frames}",
                self.processed
            ));
        }
        if let Some((i, pts)) = self.ins.first_bad {
            return Err(format!("input {i} has PTS {pts:?}"));
        }
        if let Some((i, pts)) = self.outs.first_bad {
            return Err(format!(
                "output {i} has PTS {pts:?} (lost, repeated or reordered)"
            ));
        }
        Ok(())
    }

    /// The first RSS sample (after the 500-frame warm-up) and the last, in KiB (0 if none).
    pub fn rss_span_kb(&self) -> (u64, u64) {
        let kb = |s: Option<&(u64, u64)>| s.map_or(0, |s| s.1);
        (kb(self.rss.first()), kb(self.rss.last()))
    }

    /// RSS growth from the first sample to the last, in KiB.
    pub fn rss_growth_kb(&self) -> u64 {
        let (first, last) = self.rss_span_kb();
        last.saturating_sub(first)
    }
}

/// `frames` frames of `format` at `width`×`height`, 30/1, through the element at `depth`
/// (`model_path` `None`: the shipped model), the EOS within `eos_within`.
pub fn run_frames(
    format: &str,
    (width, height): (u32, u32),
    depth: i32,
    frames: u64,
    model_path: Option<&str>,
    eos_within: Duration,
) -> Result<FramesRun, String> {
    let model = model_path.map_or(String::new(), |m| format!("model-path=\"{m}\""));
    let p = Pipeline::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! \
         video/x-raw,format={format},width={width},height={height},framerate=30/1 ! \
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
            .add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, info| {
                    let mut check = lock(&check);
                    let mut see = |pts| {
                        check.see(pts);
                        if sample
                            && check.seen.is_multiple_of(500)
                            && let Some(kb) = rss_kb()
                        {
                            lock(&rss).push((check.seen, kb));
                        }
                    };
                    if let Some(b) = info.buffer() {
                        see(b.pts());
                    } else if let Some(list) = info.buffer_list() {
                        list.iter().for_each(|b| see(b.pts()));
                    }
                    gst::PadProbeReturn::Ok
                },
            )
            .ok_or("probe")?;
    }
    p.play()?;
    wait_for(&p.bus(), &[gst::MessageType::Eos], eos_within)?;
    let processed = p.by("up")?.property::<u64>("frames-processed");
    stop_within(&p, WAIT)?;
    let rss = lock(&rss).clone();
    let ins = std::mem::take(&mut *lock(&ins));
    let outs = std::mem::take(&mut *lock(&outs));
    Ok(FramesRun {
        ins,
        outs,
        processed,
        rss,
    })
}

/// Threads and fds before and after [`state_cycles`].
#[derive(Debug)]
pub struct CyclesRun {
    /// After the warm-up cycles.
    pub before: Counts,
    pub after: Counts,
    pub took: Duration,
}

/// Two warm-up cycles (GStreamer's clock, pools and thread pool come up), then `n` NULL →
/// PLAYING → NULL cycles of one pipeline with frames flowing; no worker thread may survive
/// any NULL.
pub fn state_cycles(n: u64) -> Result<CyclesRun, String> {
    let p = Pipeline::launch(
        "videotestsrc name=src ! video/x-raw,format=I420,width=32,height=18,framerate=30/1 ! \
         imdnupscale name=up model-path=test:nearest max-frames-in-flight=2 ! \
         fakesink sync=false",
    )?;
    let out = count_buffers(&p.pad("up", "src")?);
    for i in 0..2 {
        state_cycle(&p, &out, i).map_err(|e| format!("warm-up {e}"))?;
    }
    let before = Counts::now();
    let t0 = Instant::now();
    for i in 2..2 + n {
        state_cycle(&p, &out, i)?;
    }
    Ok(CyclesRun {
        before,
        after: Counts::now(),
        took: t0.elapsed(),
    })
}

/// One NULL → PLAYING → NULL cycle with frames flowing: even cycles play 10 frames to EOS,
/// odd ones go to NULL after 5 frames came out, with frames still in the worker.
fn state_cycle(p: &Pipeline, out: &AtomicU64, i: u64) -> Result<(), String> {
    let src = p.by("src")?;
    out.store(0, Ordering::SeqCst);
    let to_eos = i.is_multiple_of(2);
    src.set_property("num-buffers", if to_eos { 10i32 } else { -1 });
    p.play().map_err(|e| format!("cycle {i}: {e}"))?;
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
    no_errors(&bus).map_err(|e| format!("cycle {i}: {e}"))?;
    stop_within(p, WAIT).map_err(|e| format!("cycle {i}: {e}"))?;
    // stop() joins the worker: none of its threads may survive NULL
    let left = worker_threads();
    if left != 0 {
        return Err(format!("cycle {i}: {left} worker threads alive at NULL"));
    }
    Ok(())
}
