//! How steady a clip is over time: the figures behind the flicker ratio (`examples/flicker.rs`)
//! that compares the network's frames with bicubic's.

/// Running temporal figures of a clip of same-sized 8-bit frames, fed frame by frame.
#[derive(Default)]
pub struct Stability {
    previous: Vec<u8>,
    frames: u64,
    /// Sum over consecutive pairs of the mean absolute change of a sample.
    change: f64,
    /// Per sample: the sum and the sum of squares of its values over the clip.
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl Stability {
    /// Adds the next frame (all frames the same length; a different one starts over).
    pub fn push(&mut self, frame: &[u8]) {
        if frame.len() != self.sum.len() {
            *self = Stability::default();
            self.sum = vec![0.0; frame.len()];
            self.sum_sq = vec![0.0; frame.len()];
        }
        if self.frames > 0 {
            let total: u64 = frame
                .iter()
                .zip(&self.previous)
                .map(|(&a, &b)| u64::from(a.abs_diff(b)))
                .sum();
            self.change += total as f64 / frame.len().max(1) as f64;
        }
        for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(frame) {
            let v = f64::from(v);
            *s += v;
            *q += v * v;
        }
        self.previous.clear();
        self.previous.extend_from_slice(frame);
        self.frames += 1;
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Mean absolute change of a sample between consecutive frames, in 8-bit levels.
    pub fn mean_abs_change(&self) -> f64 {
        if self.frames < 2 {
            return 0.0;
        }
        self.change / (self.frames - 1) as f64
    }

    /// Mean over the samples of each one's standard deviation over the clip, in 8-bit levels:
    /// the noise a still scene shows (a moving one adds its motion).
    pub fn temporal_std(&self) -> f64 {
        if self.frames < 2 || self.sum.is_empty() {
            return 0.0;
        }
        let n = self.frames as f64;
        let total: f64 = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(&s, &q)| {
                let mean = s / n;
                // sample variance; rounding can make it a hair negative
                ((q - n * mean * mean) / (n - 1.0)).max(0.0).sqrt()
            })
            .sum();
        total / self.sum.len() as f64
    }
}

/// Holds still what did not move, against the flicker of frame-by-frame upscaling: where an
/// input pixel changed by at most `threshold` levels (of 255, in every channel) since the
/// previous frame, the output pixels it covers move only `blend` of the way from their running
/// value to the new frame's (an exponential average over the still stretch); elsewhere the new
/// frame is taken as it is, so motion is never smeared. Frames are planar RGB f32 in [0, 1].
pub struct Steady {
    threshold: f32,
    blend: f32,
    previous_input: Vec<f32>,
    /// The output as last shown.
    running: Vec<f32>,
    sizes: ((usize, usize), (usize, usize)),
}

impl Steady {
    /// `threshold` in 8-bit levels; `blend` in (0, 1] (1: no averaging).
    pub fn new(threshold: u8, blend: f32) -> Self {
        Steady {
            // a hair over the level, so that samples `threshold` codes apart still count
            threshold: (f32::from(threshold) + 0.01) / 255.0,
            blend: blend.clamp(0.0, 1.0),
            previous_input: Vec::new(),
            running: Vec::new(),
            sizes: ((0, 0), (0, 0)),
        }
    }

    /// Forgets the past: the next frame is taken as it is (after a seek or a discontinuity).
    pub fn reset(&mut self) {
        self.previous_input.clear();
    }

    /// Steadies `output` (planar RGB, `out_size`, upscaled from `input`, planar RGB
    /// `in_size`) in place.
    pub fn apply(
        &mut self,
        input: &[f32],
        in_size: (usize, usize),
        output: &mut [f32],
        out_size: (usize, usize),
    ) {
        let ((w, h), (ow, oh)) = (in_size, out_size);
        let fresh = self.sizes != (in_size, out_size) || self.previous_input.len() != input.len();
        if fresh {
            self.sizes = (in_size, out_size);
            self.running.clear();
            self.running.extend_from_slice(output);
        } else {
            let (plane, out_plane) = (w * h, ow * oh);
            for oy in 0..oh {
                let row = oy * h / oh * w;
                for ox in 0..ow {
                    let i = row + ox * w / ow;
                    let still = (0..3).all(|c| {
                        let k = c * plane + i;
                        (input[k] - self.previous_input[k]).abs() <= self.threshold
                    });
                    for c in 0..3 {
                        let o = c * out_plane + oy * ow + ox;
                        let r = &mut self.running[o];
                        *r = if still {
                            *r + self.blend * (output[o] - *r)
                        } else {
                            output[o]
                        };
                        output[o] = *r;
                    }
                }
            }
        }
        self.previous_input.clear();
        self.previous_input.extend_from_slice(input);
    }
}
