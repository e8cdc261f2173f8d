//! `transcode --segment START:STOP`: a time range of the input, in stream time. The pipeline
//! prerolls with its video held back, seeks to a little before and past the range, and only
//! then lets frames through, those of the range alone, so the output holds exactly its frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gst::prelude::*;

/// The stream time of `pts` on `pad`: the time seeks and ranges are in (a demuxer's edit list can
/// put it apart from the PTS).
pub fn stream_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0)?
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_stream_time(pts)
}

/// How far before and past a range the demuxer reads. Past the end: with open groups of
/// pictures, frames shown before the next segment's keyframe are decoded after it.
const MARGIN: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// Frames with `start <= stream time < stop` (no stop: to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: gst::ClockTime,
    pub stop: Option<gst::ClockTime>,
}

impl Range {
    /// `START_NS:STOP_NS` or `START_NS:` in nanoseconds, as `transcode plan` prints them.
    pub fn parse(s: &str) -> Result<Range, String> {
        let bad = || format!("--segment {s}: expected START_NS:STOP_NS (or START_NS: to the end)");
        let (start, stop) = s.split_once(':').ok_or_else(bad)?;
        let start = gst::ClockTime::from_nseconds(start.parse().map_err(|_| bad())?);
        let stop = match stop {
            "" => None,
            t => Some(gst::ClockTime::from_nseconds(t.parse().map_err(|_| bad())?)),
        };
        if stop.is_some_and(|t| t <= start) {
            return Err(format!("--segment {s}: STOP must come after START"));
        }
        Ok(Range { start, stop })
    }

    /// Where the seek goes: [`MARGIN`] before the range, so that decoding starts at a keyframe
    /// before the range's own (libav drops the first frame of an open group of pictures it starts
    /// at) and the frame a decoder clips to the seek's start lies outside the range. The gate
    /// drops what comes before the range.
    pub fn seek_position(&self) -> gst::ClockTime {
        self.start.saturating_sub(MARGIN)
    }

    /// The flushing, accurate seek to the range, from [`Range::seek_position`] to [`MARGIN`]
    /// past its end.
    pub fn seek(&self) -> gst::Event {
        let stop_type = match self.stop {
            Some(_) => gst::SeekType::Set,
            None => gst::SeekType::None,
        };
        gst::event::Seek::new(
            1.0,
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::SeekType::Set,
            self.seek_position(),
            stop_type,
            self.stop.map(|t| t + MARGIN),
        )
    }

    /// Where `position` (stream time) stands in the range, 0..=1, once the range's end is known.
    pub fn fraction(
        &self,
        position: gst::ClockTime,
        duration: Option<gst::ClockTime>,
    ) -> Option<f64> {
        let end = self.stop.or(duration)?;
        let length = end.checked_sub(self.start)?.nseconds() as f64;
        let done = position.saturating_sub(self.start).nseconds() as f64;
        (length > 0.0).then(|| (done / length).min(1.0))
    }
}

/// Holds the decoded video (and its end) back until the segment event of the range's seek
/// arrives (what the demuxer pushes before the seek must not reach the encoder or the muxer),
/// then lets through the range's frames only (the seek reads a margin around the range).
pub struct Gate {
    range: Range,
    seek: gst::Event,
    open: AtomicBool,
}

impl Gate {
    pub fn new(range: Range) -> Arc<Gate> {
        Arc::new(Gate {
            range,
            seek: range.seek(),
            open: AtomicBool::new(false),
        })
    }

    /// The seek whose segment event opens the gate.
    pub fn seek(&self) -> gst::Event {
        self.seek.clone()
    }

    /// What to add to running time (which counts from the seek's position) to make it stream
    /// time, the input's timeline.
    pub fn running_time_offset(&self) -> i64 {
        self.range.seek_position().nseconds() as i64
    }

    fn passes(&self, pad: &gst::Pad, buffer: &gst::BufferRef) -> bool {
        let in_range = |t: gst::ClockTime| {
            t >= self.range.start && self.range.stop.is_none_or(|stop| t < stop)
        };
        self.open.load(Ordering::Acquire)
            && buffer
                .pts()
                .is_none_or(|pts| stream_time(pad, pts).is_some_and(in_range))
    }

    /// Drops `pad`'s buffers until the seek's segment event passes it, and those outside the
    /// range after it.
    pub fn install(self: &Arc<Self>, pad: &gst::Pad) {
        let gate = self.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |pad, info| {
                if let Some(ev) = info.event() {
                    if ev.type_() == gst::EventType::Segment && ev.seqnum() == gate.seek.seqnum() {
                        gate.open.store(true, Ordering::Release);
                    }
                    // a short input can end before the seek: that end must not finish the muxer
                    let early_end = matches!(ev.type_(), gst::EventType::Eos | gst::EventType::Gap);
                    return if early_end && !gate.open.load(Ordering::Acquire) {
                        gst::PadProbeReturn::Drop
                    } else {
                        gst::PadProbeReturn::Ok
                    };
                }
                match info.buffer() {
                    Some(buffer) if !gate.passes(pad, buffer) => gst::PadProbeReturn::Drop,
                    _ => gst::PadProbeReturn::Ok,
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_plan_prints_them() {
        let r = Range::parse("2000000000:4000000000").unwrap();
        assert_eq!(r.start, gst::ClockTime::from_seconds(2));
        assert_eq!(r.stop, Some(gst::ClockTime::from_seconds(4)));
        assert_eq!(Range::parse("8000000000:").unwrap().stop, None);
        for bad in ["", "5", "a:b", "4:2", "3:3", "-1:5"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn progress_within_the_range() {
        let r = Range::parse("2000000000:4000000000").unwrap();
        let f = |s| r.fraction(gst::ClockTime::from_mseconds(s), None).unwrap();
        assert_eq!(f(2000), 0.0);
        assert_eq!(f(3000), 0.5);
        assert_eq!(f(5000), 1.0);
    }
}
