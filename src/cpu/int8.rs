//! 8-bit inference for the streamed IMDN_RTC: the blocks' 3×3 convs on u8 inputs whose ranges
//! come calibrated with the weights (`imdn calibrate`). A frame whose values fall outside
//! them (graphics and test patterns beyond what the calibration photographs held: hard
//! gratings, noise, saturated bars) would be clipped visibly, so such a frame runs again in
//! f32 and its values widen the ranges the following frames use.

use crate::acs::Framing;
use crate::kernels::int8::Quant;

use super::stream::{State, Stream};

/// How far a frame's values may fall outside the ranges before it runs again in f32: steps
/// of u8 beyond them (each value's at most 255), summed, per pixel (`imdn eval --precision
/// int8` prints it). Photographs mostly stay under 5 (one validation tile of 30 reaches 16 at
/// ×3); test patterns that show damage from 19 (weights/README.md).
pub const EXCESS_LIMIT: f64 = 8.0;

/// How far past a clipping frame's own values (which hold 0) the ranges widen.
const HEADROOM: f32 = 1.1;

/// The 8-bit pipeline, its ranges, and what widened them.
pub struct Int8Stream {
    /// Per 8-bit conv (block i's c1..c4 at 4i..4i+3), per input channel: least and greatest.
    ranges: Vec<Vec<(f32, f32)>>,
    stream: Stream,
    state: Option<State>,
    pub stats: Int8Stats,
}

/// What an 8-bit pipeline has run, in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Int8Stats {
    /// Frames run, and of them those that ran again in f32.
    pub frames: u64,
    pub reruns: u64,
    /// Their pixels, and by how many u8 steps their values fell outside the ranges, summed
    /// (per pixel of a frame, what [`EXCESS_LIMIT`] bounds).
    pub pixels: u64,
    pub excess: u64,
}

impl Int8Stats {
    /// Steps outside the ranges per pixel of what ran since `before`.
    pub fn excess_since(&self, before: &Int8Stats) -> f64 {
        let pixels = self.pixels - before.pixels;
        (self.excess - before.excess) as f64 / pixels.max(1) as f64
    }
}

/// How ranges round to u8.
pub fn quant(ranges: &[Vec<(f32, f32)>]) -> Vec<Vec<Quant>> {
    ranges
        .iter()
        .map(|r| {
            r.iter()
                .map(|&(lo, hi)| Quant::from_range(lo, hi))
                .collect()
        })
        .collect()
}

impl Int8Stream {
    pub fn new(ranges: Vec<Vec<(f32, f32)>>, stream: Stream) -> Self {
        Self {
            ranges,
            stream,
            state: None,
            stats: Int8Stats::default(),
        }
    }

    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Runs one frame (as [`Stream::run`]) in 8 bits; when its values fall outside the
    /// ranges by more than [`EXCESS_LIMIT`] a pixel, runs it again on `f32` (with its state)
    /// into `out`, widens the ranges to its values and rebuilds the 8-bit pipeline by `build`.
    pub fn run(
        &mut self,
        (net, threads): ((usize, usize), usize),
        (frame, framing): (&[f32], Framing),
        out: &mut [f32],
        (f32_stream, f32_state): (&Stream, &mut Option<State>),
        build: impl FnOnce(&[Vec<Quant>]) -> Stream,
    ) {
        let st = self.stream.state(&mut self.state, net, threads);
        let excess = self.stream.run(st, (frame, framing), out);
        let pixels = (net.0 * net.1) as u64;
        self.stats.frames += 1;
        self.stats.pixels += pixels;
        self.stats.excess += excess;
        if excess as f64 <= EXCESS_LIMIT * pixels as f64 {
            return;
        }
        let st = f32_stream.state(f32_state, net, threads);
        let mut seen = Vec::new();
        f32_stream.run_recording(st, (frame, framing), out, &mut seen);
        // with headroom: in 8 bits the next such frame's values stray a little past f32's
        for (range, seen) in self.ranges.iter_mut().zip(seen) {
            for (r, s) in range.iter_mut().zip(seen) {
                *r = (r.0.min(HEADROOM * s.0), r.1.max(HEADROOM * s.1));
            }
        }
        self.stream = build(&quant(&self.ranges));
        self.state = None;
        self.stats.reruns += 1;
    }
}
