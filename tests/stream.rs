//! The streaming executor (IMDN_RTC, four rows at a time in column strips) computes what the
//! layer-by-layer executor computes, on every frame size and thread count.

mod common;

use candle_core::Device;
use imdn::acs::Framing;
use imdn::cpu::CpuNet;
use imdn::kernels::Kernels;
use imdn::model::{Config, init_tensors};
use imdn::weights::Tensors;

/// The largest difference between streamed and layer-by-layer output, relative to the
/// output's scale (at least 1), over two runs (the second reuses the first's state).
fn streamed_vs_layerwise(
    config: &Config,
    t: &Tensors,
    (n, h, w): (usize, usize, usize),
    threads: usize,
) -> f32 {
    let streamed = CpuNet::new(config, t, threads).unwrap();
    let layerwise = CpuNet::with_kernels(config, t, threads, Kernels::LAYERWISE).unwrap();
    let input: Vec<f32> = (0..n * 3 * h * w)
        .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
        .collect();
    let want = layerwise.forward(&input, n, h, w).unwrap();
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let mut worst = 0f32;
    let mut got = Vec::new();
    for _ in 0..2 {
        streamed.forward_into(&input, n, h, w, &mut got).unwrap();
        assert_eq!(got.len(), want.len());
        worst = worst.max(common::max_abs_diff(&got, &want) / scale);
    }
    worst
}

/// Sizes around the tile (4×4), the vector of tiles (64 columns), the strip width (512) and
/// the reach (22): odd sides, single pixels, tall and wide frames.
const SIZES: [(usize, usize, usize); 10] = [
    (1, 1, 1),
    (2, 1, 7),
    (1, 5, 3),
    (1, 4, 64),
    (1, 37, 61),
    (1, 23, 65),
    (1, 9, 130),
    (1, 70, 13),
    (1, 6, 1100),
    (1, 45, 200),
];

#[test]
fn streamed_equals_layerwise_on_fresh_weights() {
    for s in [2, 3, 4] {
        let config = Config::rtc(s);
        let t = init_tensors(&config, &Device::Cpu).unwrap();
        for size in SIZES {
            for threads in [1, 2, 3] {
                let d = streamed_vs_layerwise(&config, &t, size, threads);
                assert!(d <= 1e-5, "{config} {size:?} {threads} threads: {d}");
            }
        }
    }
}

#[test]
fn streamed_equals_layerwise_on_shipped_weights() {
    for file in ["imdn_rtc_x2", "imdn_rtc_x3", "imdn_rtc_x4"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("weights")
            .join(format!("{file}.safetensors"));
        let t = imdn::weights::load(&path).unwrap();
        let config = Config::detect(&t).unwrap();
        for size in [(1, 37, 61), (1, 90, 160), (1, 8, 700)] {
            let d = streamed_vs_layerwise(&config, &t, size, 2);
            assert!(d <= 1e-5, "{file} {size:?}: {d}");
        }
    }
}

/// For profiling the kernels (`perf stat -e cycles:u cargo test --release --test stream --
/// --ignored timing`): 20 frames of 640×360 (or SIZE=WxH) through the shipped RTC ×2 on one
/// thread (or THREADS, layer by layer with LAYERWISE set).
#[test]
#[ignore]
fn timing() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/imdn_rtc_x2.safetensors");
    let t = imdn::weights::load(&path).unwrap();
    let config = Config::detect(&t).unwrap();
    let kernels = match std::env::var_os("LAYERWISE") {
        Some(_) => Kernels::LAYERWISE,
        None => Kernels::default(),
    };
    let threads = std::env::var("THREADS").map_or(1, |t| t.parse().unwrap());
    let net = CpuNet::with_kernels(&config, &t, threads, kernels).unwrap();
    let (h, w) = match std::env::var("SIZE") {
        Ok(s) => {
            let (w, h) = s.split_once('x').unwrap();
            (h.parse().unwrap(), w.parse().unwrap())
        }
        Err(_) => (360, 640),
    };
    let input: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i * 7919) % 256) as f32 / 255.0)
        .collect();
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    for _ in 0..20 {
        net.forward_into(&input, 1, h, w, &mut out).unwrap();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / 20.0;
    eprintln!(
        "{ms:.1} ms a frame, {:.1} ns a pixel",
        ms * 1e6 / (h * w) as f64
    );
}

/// Planar frame `src` (`w`×`h`) `margin` pixels into a `pw`×`ph` one of its border pixels
/// replicated.
fn replicate(src: &[f32], (w, h): (usize, usize), (pw, ph): (usize, usize), m: usize) -> Vec<f32> {
    (0..3)
        .flat_map(|c| (0..ph).flat_map(move |y| (0..pw).map(move |x| (c, y, x))))
        .map(|(c, y, x)| {
            src[(c * h + y.saturating_sub(m).min(h - 1)) * w + x.saturating_sub(m).min(w - 1)]
        })
        .collect()
}

#[test]
fn framed_frames_equal_padded_then_cropped_ones() {
    // the edge mode without the padded frame in memory: bit for bit what padding the frame,
    // running it and cropping the output gives, across strips (1100 wide), bands, single
    // pixels, margins beyond the frame and padding beyond the margin, on 1–3 threads
    for s in [2, 3] {
        let config = Config::rtc(s);
        let t = init_tensors(&config, &Device::Cpu).unwrap();
        for (h, w) in [(1, 1), (5, 3), (37, 61), (6, 1100), (45, 200)] {
            for (m, extra) in [(8, 0), (3, 2), (0, 5)] {
                for threads in [1, 2, 3] {
                    let net = CpuNet::new(&config, &t, threads).unwrap();
                    let input: Vec<f32> = (0..3 * h * w)
                        .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
                        .collect();
                    let (ph, pw) = (h + 2 * m + extra, w + 2 * m + extra);
                    let padded = replicate(&input, (w, h), (pw, ph), m);
                    let whole = net.forward(&padded, 1, ph, pw).unwrap();
                    let (ow, oh, opw) = (w * s, h * s, pw * s);
                    let want: Vec<f32> = (0..3)
                        .flat_map(|c| (0..oh).flat_map(move |y| (0..ow).map(move |x| (c, y, x))))
                        .map(|(c, y, x)| whole[(c * ph * s + y + m * s) * opw + x + m * s])
                        .collect();
                    let mut got = Vec::new();
                    let framing = Framing {
                        frame: (h, w),
                        margin: m,
                    };
                    let ran = net.forward_framed_into(&input, framing, (ph, pw), &mut got);
                    assert!(ran.unwrap());
                    assert!(
                        got == want,
                        "×{s} {h}×{w} margin {m}+{extra}, {threads} threads"
                    );
                }
            }
        }
    }
    // the layer-by-layer executor leaves padding to the caller
    let config = Config::rtc(2);
    let t = init_tensors(&config, &Device::Cpu).unwrap();
    let net = CpuNet::with_kernels(&config, &t, 1, Kernels::LAYERWISE).unwrap();
    let framing = Framing {
        frame: (2, 2),
        margin: 1,
    };
    let ran = net.forward_framed_into(&[0.5; 12], framing, (4, 4), &mut Vec::new());
    assert!(!ran.unwrap());
}
