//! Stand-ins for the network that let the element's plumbing be tested without weights or a
//! device (`model-path=test:...`); built only with the cargo feature `test-backends`, which the
//! tests enable (`scripts/test.sh`).

use super::backend::{Backend, BackendSpec, Loaded};

/// A test backend chosen by `model-path`.
#[derive(Clone, Copy, Debug)]
pub enum TestBackend {
    Nearest,
    Failing { panic: bool },
    FailOnce,
    Slow { ms: u64 },
    ErrorAfter { frames: u64 },
}

/// `model-path` values that select test backends (never a default):
/// - `test:nearest`: [`Nearest`], a deterministic stand-in for the network;
/// - `test:error` / `test:panic`: [`Failing`], to exercise the runtime error paths;
/// - `test:fail-once`: [`FailOnce`], a stand-in for a CUDA backend whose first frame fails, to
///   exercise `fallback-to-cpu` (its CPU rebuild is `test:nearest`);
/// - `test:slow:MS`: [`Nearest`] taking at least MS milliseconds a frame (QoS, latency);
/// - `test:error-after:N`: [`Nearest`] for N frames, then errors (a fault mid-stream).
pub fn parse(model_path: &str) -> Option<TestBackend> {
    let number = |prefix: &str| model_path.strip_prefix(prefix)?.parse::<u64>().ok();
    match model_path {
        "test:nearest" => Some(TestBackend::Nearest),
        "test:error" => Some(TestBackend::Failing { panic: false }),
        "test:panic" => Some(TestBackend::Failing { panic: true }),
        "test:fail-once" => Some(TestBackend::FailOnce),
        _ => {
            if let Some(ms) = number("test:slow:") {
                Some(TestBackend::Slow { ms })
            } else {
                number("test:error-after:").map(|frames| TestBackend::ErrorAfter { frames })
            }
        }
    }
}

/// Test backend: [`Nearest`], at least `ms` milliseconds a frame.
pub struct Slow {
    ms: u64,
}

impl Backend for Slow {
    fn upscale(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        out: (usize, usize),
    ) -> Result<Vec<f32>, String> {
        let t0 = std::time::Instant::now();
        let result = Nearest.upscale(input, size, out);
        let left = std::time::Duration::from_millis(self.ms).saturating_sub(t0.elapsed());
        std::thread::sleep(left);
        result
    }
}

/// Test backend: [`Nearest`] for `frames` frames, then an error on every frame.
pub struct ErrorAfter {
    frames: u64,
    done: u64,
}

impl Backend for ErrorAfter {
    fn upscale(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        out: (usize, usize),
    ) -> Result<Vec<f32>, String> {
        if self.done >= self.frames {
            return Err(format!(
                "test:error-after:{} backend: injected fault at frame {}",
                self.frames, self.done
            ));
        }
        self.done += 1;
        Nearest.upscale(input, size, out)
    }
}

impl TestBackend {
    pub fn build(self) -> Loaded {
        match self {
            TestBackend::Nearest => {
                Loaded::test(Box::new(Nearest), "nearest-neighbour test backend")
            }
            TestBackend::Failing { panic } => {
                Loaded::test(Box::new(Failing { panic }), "failing test backend")
            }
            TestBackend::FailOnce => Loaded {
                fallback: Some(BackendSpec::Test(TestBackend::Nearest)),
                ..Loaded::test(
                    Box::new(FailOnce { failed: false }),
                    "fail-once test backend (stands in for CUDA)",
                )
            },
            TestBackend::Slow { ms } => {
                Loaded::test(Box::new(Slow { ms }), "slow nearest-neighbour test backend")
            }
            TestBackend::ErrorAfter { frames } => Loaded::test(
                Box::new(ErrorAfter { frames, done: 0 }),
                "fault-injecting nearest-neighbour test backend",
            ),
        }
    }
}

/// Test backend: every output pixel copies the input pixel it falls in
/// (`x_in = ⌊x_out · w / out_w⌋`, so an integer scale repeats each pixel `scale` times).
pub struct Nearest;

impl Backend for Nearest {
    fn upscale(
        &mut self,
        input: &[f32],
        (w, h): (usize, usize),
        (ow, oh): (usize, usize),
    ) -> Result<Vec<f32>, String> {
        if input.len() != 3 * w * h || ow == 0 || oh == 0 {
            return Err(format!(
                "{w}×{h} frame with {} floats to {ow}×{oh}",
                input.len()
            ));
        }
        let xs: Vec<usize> = (0..ow).map(|x| x * w / ow).collect();
        let mut out = Vec::with_capacity(3 * ow * oh);
        for plane in input.chunks_exact(w * h) {
            for y in 0..oh {
                let row = &plane[(y * h / oh) * w..][..w];
                out.extend(xs.iter().map(|&x| row[x]));
            }
        }
        Ok(out)
    }
}

/// Test backend whose every frame fails, with an error or a panic.
pub struct Failing {
    panic: bool,
}

impl Backend for Failing {
    fn upscale(
        &mut self,
        _: &[f32],
        _: (usize, usize),
        _: (usize, usize),
    ) -> Result<Vec<f32>, String> {
        if self.panic {
            panic!("test:panic backend");
        }
        Err("test:error backend".into())
    }
}

/// Test backend standing in for a CUDA network that hits a runtime error on its first frame.
pub struct FailOnce {
    failed: bool,
}

impl Backend for FailOnce {
    fn upscale(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        out: (usize, usize),
    ) -> Result<Vec<f32>, String> {
        if !self.failed {
            self.failed = true;
            return Err("test:fail-once backend: simulated CUDA error".into());
        }
        Nearest.upscale(input, size, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_repeats_pixels() {
        // one plane per channel, 2×1 → 4×2
        let input = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let out = Nearest.upscale(&input, (2, 1), (4, 2)).unwrap();
        assert_eq!(
            out,
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
        let out = Nearest.upscale(&input, (3, 1), (5, 1)).unwrap();
        assert_eq!(&out[..5], [0.0, 0.0, 0.5, 0.5, 1.0]);
        let out = Nearest.upscale(&input, (3, 1), (2, 1)).unwrap();
        assert_eq!(&out[..2], [0.0, 0.5]);
    }
}
