//! Stand-ins for the network that let the element's plumbing be tested without weights or a
//! device (`model-path=test:...`); built only with the cargo feature `test-backends`, which the
//! tests enable (`scripts/test.sh`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gst_video::VideoInfo;

use super::backend::{Backend, BackendSpec, Loaded, Sizes};
use super::pixels;

/// A test backend chosen by `model-path`.
#[derive(Clone, Copy, Debug)]
pub enum TestBackend {
    Nearest,
    Failing {
        panic: bool,
    },
    FailOnce,
    Slow {
        ms: u64,
    },
    ErrorAfter {
        frames: u64,
    },
    /// Nearest with the frames "converted on its device" (here: by the host, when queued
    /// by [`Backend::submit_on_device`], written out when finished); a frame it would take
    /// that way fails on the host path. Refuses a third frame in flight, or one of other
    /// sizes beside one in flight, as our CUDA executor does.
    DeviceOnly,
    /// As `DeviceOnly`, but the first frame fails when queued and the fallback is `Nearest`.
    DeviceFailOnce,
    /// As `DeviceFailOnce`, but the first frame fails when finished (and is slow to queue,
    /// so that the next is queued behind it).
    DeviceFailLate,
}

/// `model-path` values that select test backends (never a default):
/// - `test:nearest`: [`nearest`], a deterministic stand-in for the network;
/// - `test:error` / `test:panic`: every frame fails, to exercise the runtime error paths;
/// - `test:fail-once`: a stand-in for a CUDA backend whose first frame fails, to exercise
///   `fallback-to-cpu` (its CPU rebuild is `test:nearest`);
/// - `test:slow:MS`: nearest, taking at least MS milliseconds a frame (QoS, latency);
/// - `test:error-after:N`: nearest for N frames, then errors (a fault mid-stream);
/// - `test:device-only`: nearest, taking frames unconverted as a backend converting on its
///   device does (whole multiples of the input only); such a frame on the host path fails;
/// - `test:device-fail-once`: the same, its first frame failing, rebuilt as `test:nearest`;
/// - `test:device-fail-late`: the same, its first frame failing when finished.
pub fn parse(model_path: &str) -> Option<TestBackend> {
    let number = |prefix: &str| model_path.strip_prefix(prefix)?.parse::<u64>().ok();
    match model_path {
        "test:nearest" => Some(TestBackend::Nearest),
        "test:error" => Some(TestBackend::Failing { panic: false }),
        "test:panic" => Some(TestBackend::Failing { panic: true }),
        "test:fail-once" => Some(TestBackend::FailOnce),
        "test:device-only" => Some(TestBackend::DeviceOnly),
        "test:device-fail-once" => Some(TestBackend::DeviceFailOnce),
        "test:device-fail-late" => Some(TestBackend::DeviceFailLate),
        _ => {
            if let Some(ms) = number("test:slow:") {
                Some(TestBackend::Slow { ms })
            } else {
                number("test:error-after:").map(|frames| TestBackend::ErrorAfter { frames })
            }
        }
    }
}

impl TestBackend {
    pub fn build(self) -> Loaded {
        let backend = Box::new(Stand {
            kind: self,
            frames: 0,
            queued: VecDeque::new(),
        });
        match self {
            TestBackend::FailOnce | TestBackend::DeviceFailOnce | TestBackend::DeviceFailLate => {
                Loaded {
                    fallback: Some(BackendSpec::Test(TestBackend::Nearest)),
                    ..Loaded::test(backend, "fail-once test backend (stands in for CUDA)")
                }
            }
            _ => Loaded::test(backend, "test backend"),
        }
    }
}

/// A test backend at work: its kind, the frames it has been given, and those queued "on
/// its device" (their number, planar output and size).
struct Stand {
    kind: TestBackend,
    frames: u64,
    queued: VecDeque<(u64, Vec<f32>, (usize, usize))>,
}

impl Backend for Stand {
    fn upscale(&mut self, input: &[f32], sizes: Sizes, dst: &mut Vec<f32>) -> Result<(), String> {
        let (size, out) = sizes;
        let frame = self.frames;
        self.frames += 1;
        match self.kind {
            TestBackend::Failing { panic: true } => panic!("test:panic backend"),
            TestBackend::Failing { panic: false } => Err("test:error backend".into()),
            TestBackend::FailOnce if frame == 0 => {
                Err("test:fail-once backend: simulated CUDA error".into())
            }
            TestBackend::DeviceOnly | TestBackend::DeviceFailOnce | TestBackend::DeviceFailLate
                if takes(size, out) =>
            {
                Err(
                    "test:device backend: a frame it takes unconverted came to the host path"
                        .into(),
                )
            }
            TestBackend::ErrorAfter { frames } if frame >= frames => Err(format!(
                "test:error-after:{frames} backend: injected fault at frame {frame}"
            )),
            TestBackend::Slow { ms } => {
                let t0 = Instant::now();
                let result = nearest(input, size, out, dst);
                std::thread::sleep(Duration::from_millis(ms).saturating_sub(t0.elapsed()));
                result
            }
            _ => nearest(input, size, out, dst),
        }
    }

    fn converts_on_device(&self) -> bool {
        matches!(
            self.kind,
            TestBackend::DeviceOnly | TestBackend::DeviceFailOnce | TestBackend::DeviceFailLate
        )
    }

    fn submit_on_device(
        &mut self,
        (input, in_info): (&gst::BufferRef, &VideoInfo),
        (_, out_info): (&gst::BufferRef, &VideoInfo),
    ) -> Result<bool, String> {
        let frame = self.frames;
        self.frames += 1;
        if matches!(self.kind, TestBackend::DeviceFailOnce) && frame == 0 {
            return Err("test:device-fail-once backend: simulated CUDA error".into());
        }
        let size = |i: &VideoInfo| (i.width() as usize, i.height() as usize);
        let ((w, h), (ow, oh)) = (size(in_info), size(out_info));
        if !takes((w, h), (ow, oh)) {
            return Ok(false);
        }
        if self.queued.len() == 2 || self.queued.iter().any(|q| q.2 != (ow, oh)) {
            return Err(format!(
                "test:device backend: a {ow}×{oh} frame queued beside {:?}",
                self.queued.iter().map(|q| q.2).collect::<Vec<_>>()
            ));
        }
        if matches!(self.kind, TestBackend::DeviceFailLate) && frame == 0 {
            // slow, so that the next frame waits and is queued behind this one
            std::thread::sleep(Duration::from_millis(30));
        }
        let mut scratch = pixels::Scratch::default();
        let planar = pixels::read_frame(input, in_info, Vec::new(), Vec::new, &mut scratch)?;
        let mut rgb = Vec::new();
        nearest(&planar.rgb, (w, h), (ow, oh), &mut rgb)?;
        self.queued.push_back((frame, rgb, (ow, oh)));
        Ok(true)
    }

    fn finish_on_device(
        &mut self,
        (output, out_info): (&mut gst::BufferRef, &VideoInfo),
    ) -> Result<(), String> {
        let (frame, rgb, size) = self.queued.pop_front().ok_or("no frame queued")?;
        if matches!(self.kind, TestBackend::DeviceFailLate) && frame == 0 {
            return Err("test:device-fail-late backend: simulated CUDA error".into());
        }
        if size != (out_info.width() as usize, out_info.height() as usize) {
            return Err(format!(
                "a {size:?} frame finished into a {out_info:?} buffer"
            ));
        }
        pixels::write_frame(
            output,
            out_info,
            &rgb,
            None,
            &mut pixels::Scratch::default(),
        )
    }
}

/// Whether the device test backends take frames of these sizes unconverted: as our CUDA
/// executor, only whole multiples (here any factor) of the input.
fn takes((w, h): (usize, usize), (ow, oh): (usize, usize)) -> bool {
    ow % w == 0 && oh % h == 0 && ow / w == oh / h
}

/// Every output pixel copies the input pixel it falls in (`x_in = ⌊x_out · w / out_w⌋`, so an
/// integer scale repeats each pixel `scale` times).
fn nearest(
    input: &[f32],
    (w, h): (usize, usize),
    (ow, oh): (usize, usize),
    dst: &mut Vec<f32>,
) -> Result<(), String> {
    if input.len() != 3 * w * h || ow == 0 || oh == 0 {
        return Err(format!(
            "{w}×{h} frame with {} floats to {ow}×{oh}",
            input.len()
        ));
    }
    let xs: Vec<usize> = (0..ow).map(|x| x * w / ow).collect();
    dst.clear();
    dst.reserve(3 * ow * oh);
    for plane in input.chunks_exact(w * h) {
        for y in 0..oh {
            let row = &plane[(y * h / oh) * w..][..w];
            dst.extend(xs.iter().map(|&x| row[x]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upscaled(input: &[f32], size: (usize, usize), out: (usize, usize)) -> Vec<f32> {
        let mut dst = Vec::new();
        nearest(input, size, out, &mut dst).unwrap();
        dst
    }

    #[test]
    fn nearest_repeats_pixels() {
        // one plane per channel, 2×1 → 4×2
        let input = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        assert_eq!(
            upscaled(&input, (2, 1), (4, 2)),
            [
                0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.2, 0.2, //
                0.3, 0.3, 0.4, 0.4, 0.3, 0.3, 0.4, 0.4, //
                0.5, 0.5, 0.6, 0.6, 0.5, 0.5, 0.6, 0.6
            ]
        );
    }

    #[test]
    fn nearest_takes_any_size() {
        // 3×1 → 5×1: x_in = ⌊x · 3 / 5⌋ = 0, 0, 1, 1, 2; 3×1 → 2×1 (down): 0, 1
        let input = [0.0, 0.5, 1.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0];
        assert_eq!(
            &upscaled(&input, (3, 1), (5, 1))[..5],
            [0.0, 0.0, 0.5, 0.5, 1.0]
        );
        assert_eq!(&upscaled(&input, (3, 1), (2, 1))[..2], [0.0, 0.5]);
    }

    #[test]
    fn error_after_counts_frames_and_fail_once_recovers() {
        let frame = [0.5f32; 3];
        let run = |kind| {
            let mut stand = Stand {
                kind,
                frames: 0,
                queued: VecDeque::new(),
            };
            let mut dst = Vec::new();
            (0..4)
                .map(|_| stand.upscale(&frame, ((1, 1), (2, 2)), &mut dst).is_ok())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(TestBackend::ErrorAfter { frames: 2 }),
            [true, true, false, false]
        );
        assert_eq!(run(TestBackend::FailOnce), [false, true, true, true]);
    }
}
