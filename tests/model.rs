//! The model family without the authors' files: shapes, variant detection, parameter counts,
//! any frame size at every scale, and clear refusals of weights that fit no variant.

mod common;

use candle_core::{Device, Tensor};
use imdn::acs::Acs;
use imdn::acs::Nhw;
use imdn::engine::Upscaler;
use imdn::model::{Config, Variant, init_tensors};
use imdn::weights;
use imdn::weights::parameter_count;

fn upscaler(config: &Config) -> Upscaler {
    let tensors = init_tensors(config, &Device::Cpu).unwrap();
    Upscaler::from_tensors(tensors, &Device::Cpu).unwrap()
}

#[test]
fn parameter_counts_match_the_paper() {
    for (config, count) in [
        (Config::imdn(2), 694_404),
        (Config::imdn(3), 703_059),
        (Config::imdn(4), 715_176),
        (Config::imdn_as_paper(), 752_104),
        (
            Config {
                scale_input: false,
                ..Config::imdn_as()
            },
            752_107,
        ),
        (Config::imdn_as(), 752_171),
        (Config::rtc(2), 20_190),
    ] {
        let tensors = init_tensors(&config, &Device::Cpu).unwrap();
        assert_eq!(parameter_count(&tensors), count, "{config}");
        assert_eq!(Config::detect(&tensors).unwrap(), config);
    }
}

#[test]
fn every_scale_handles_1x1_and_7x5_frames() {
    let configs = [
        Config::imdn(2),
        Config::imdn(3),
        Config::imdn(4),
        Config::rtc(2),
        Config::rtc(3),
        Config::rtc(4),
        Config::imdn_as(),
    ];
    for config in configs {
        let mut up = upscaler(&config);
        // IMDN_AS: the raw network's frames as if upscaled ×3
        up.set_refine_scale(3.0).unwrap();
        for (w, h) in [(1, 1), (7, 5)] {
            let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 53 % 256) as u8).collect();
            let s = if config.variant == Variant::As {
                3
            } else {
                config.net_scale()
            };
            let out = up.upscale_u8(&src, (w, h), 3, (w * s, h * s)).unwrap();
            assert_eq!(out.len(), w * s * h * s * 3, "{config} on {w}×{h}");
            let raw = up.forward_planar(&vec![0.5; 3 * w * h], (w, h)).unwrap();
            let n = config.net_scale();
            assert_eq!(raw.len(), 3 * w * n * h * n, "{config} raw on {w}×{h}");
        }
    }
}

/// IMDN_AS with a scale input: the raw paths refuse frames until told their scale, and
/// `upscale_planar` (which works the scale out from the sizes) is the bicubic frame through
/// `forward_planar` told the same sizes, as the element runs it.
#[test]
fn imdn_as_is_told_the_scale_of_raw_frames() {
    use candle_core::Module;
    let config = Config::imdn_as();
    let mut up = upscaler(&config);
    let (w, h, ow, oh) = (6, 5, 15, 11);
    let src: Vec<f32> = (0..3 * w * h).map(|i| (i % 23) as f32 / 23.0).collect();
    let big = imdn::image_ops::imresize_f32_chw(&src, w, h, 3, ow, oh);
    let err = up.forward_planar(&big, (ow, oh)).unwrap_err().to_string();
    assert!(err.contains("scale"), "{err}");
    let x = Tensor::from_slice(&big[..3 * 8 * 8], (1, 3, 8, 8), &Device::Cpu).unwrap();
    assert!(up.forward_candle(&x).is_err());
    let (net, _) = imdn::model::Network::from_tensors(
        init_tensors(&config, &Device::Cpu).unwrap(),
        &Device::Cpu,
        candle_core::DType::F32,
    )
    .unwrap();
    assert!(net.forward(&x).is_err());

    let whole = up.upscale_planar(&src, (w, h), (ow, oh)).unwrap();
    up.set_refine_sizes((w, h), (ow, oh));
    assert_eq!(up.forward_planar(&big, (ow, oh)).unwrap(), whole);
    up.set_refine_scale(4.0).unwrap();
    let other = up.forward_planar(&big, (ow, oh)).unwrap();
    let diff = common::max_abs_diff(&other, &whole);
    assert!(
        diff > 1e-3,
        "told ×4 instead of ×2.5: the output moved by {diff}"
    );
    for bad in [f64::NAN, f64::INFINITY, 0.0, -2.0] {
        assert!(up.set_refine_scale(bad).is_err(), "scale {bad}");
    }
    // the scale code: octaves above ×2, clamped to the trained 1.1–4
    assert_eq!(imdn::model::scale_code(2.0), 0.0);
    assert_eq!(imdn::model::scale_code(4.0), 1.0);
    assert_eq!(imdn::model::scale_code(8.0), 1.0);
    assert_eq!(imdn::model::scale_code(1.0), imdn::model::scale_code(1.1));
}

#[test]
fn rgba_keeps_alpha_resized() {
    let mut up = upscaler(&Config::rtc(2));
    let src: Vec<u8> = (0..4 * 3 * 4)
        .map(|i| {
            if i % 4 == 3 {
                200
            } else {
                (i * 11 % 256) as u8
            }
        })
        .collect();
    let out = up.upscale_u8(&src, (4, 3), 4, (8, 6)).unwrap();
    assert_eq!(out.len(), 8 * 6 * 4);
    assert!(
        out.chunks_exact(4).all(|p| p[3] == 200),
        "constant alpha stays constant"
    );
}

#[test]
fn tiles_equal_the_whole_frame_when_the_overlap_covers_the_receptive_field() {
    // IMDN_RTC has no global statistics (no CCA): its receptive field is 22 pixels, so with
    // 24 pixels of context on each side, tiles must reproduce the whole-frame output.
    let mut up = upscaler(&Config::rtc(2));
    let (w, h) = (150, 97);
    let frame: Vec<f32> = (0..3 * w * h)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let whole = up.forward_planar(&frame, (w, h)).unwrap();
    up.acs = Acs {
        tile: 64,
        overlap: 48,
        batch: 3,
        margin: 0,
    };
    let tiled = up.forward_planar(&frame, (w, h)).unwrap();
    let max = common::max_abs_diff(&whole, &tiled);
    // float rounding only: the CPU path's Winograd convs round differently where a tile's
    // 2×2 output grid falls on other pixels than the whole frame's
    let scale = whole.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(max < 1e-5 * scale, "max diff {max} (scale {scale})");
}

#[test]
fn tiling_bounds_the_network_input() {
    // a frame far larger than the tile: every network call sees at most batch × tile²
    struct Spy(std::cell::Cell<usize>);
    impl imdn::acs::Forward for Spy {
        fn forward_batch_into(
            &self,
            x: &[f32],
            (n, h, w): Nhw,
            out: &mut Vec<f32>,
        ) -> imdn::Result<()> {
            self.0.set(self.0.get().max(x.len()));
            let t = Tensor::from_slice(x, (n, 3, h, w), &Device::Cpu)?;
            let up = t.upsample_nearest2d(h * 2, w * 2)?;
            *out = up.flatten_all()?.to_vec1::<f32>()?;
            Ok(())
        }
    }
    let spy = Spy(std::cell::Cell::new(0));
    let (w, h) = (1000, 700);
    let frame: Vec<f32> = (0..3 * w * h).map(|i| (i % 255) as f32 / 255.0).collect();
    let acs = Acs {
        tile: 128,
        overlap: 16,
        batch: 2,
        margin: 0,
    };
    let out = acs.run(&spy, &frame, (w, h), 2, 1).unwrap();
    assert_eq!(spy.0.get(), 2 * 3 * 128 * 128);
    // nearest-neighbour is position-independent, so stitching must give the exact upscale
    for (y, x) in [(0, 0), (699, 999), (350, 128), (127, 128), (500, 873)] {
        for c in 0..3 {
            let want = frame[(c * h + y) * w + x];
            for (dy, dx) in [(0, 0), (1, 1)] {
                assert_eq!(
                    out[(c * 2 * h + 2 * y + dy) * 2 * w + 2 * x + dx],
                    want,
                    "({x},{y})"
                );
            }
        }
    }
}

#[test]
fn weights_that_fit_no_variant_are_refused_by_name() {
    let path = common::temp_path("bad.safetensors");
    let base = init_tensors(&Config::imdn(2), &Device::Cpu).unwrap();

    let mut missing = base.clone();
    missing.remove("IMDB3.c2.weight");
    weights::save_safetensors(&missing, &path).unwrap();
    let err = Upscaler::load(&path, &Device::Cpu)
        .err()
        .expect("missing tensor accepted")
        .to_string();
    assert!(err.contains("IMDB3.c2.weight"), "{err}");

    let mut wrong = base.clone();
    wrong.insert(
        "LR_conv.weight".into(),
        Tensor::zeros((64, 32, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    weights::save_safetensors(&wrong, &path).unwrap();
    let err = Upscaler::load(&path, &Device::Cpu)
        .err()
        .expect("wrong shape accepted")
        .to_string();
    assert!(err.contains("LR_conv.weight"), "{err}");

    let mut foreign = std::collections::HashMap::new();
    foreign.insert(
        "encoder.weight".to_string(),
        Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    weights::save_safetensors(&foreign, &path).unwrap();
    let err = Upscaler::load(&path, &Device::Cpu)
        .err()
        .expect("foreign file accepted")
        .to_string();
    assert!(err.contains("not an IMDN weights file"), "{err}");

    let mut bad_up = base;
    bad_up.insert(
        "upsampler.0.weight".into(),
        Tensor::zeros((10, 64, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    bad_up.insert(
        "upsampler.0.bias".into(),
        Tensor::zeros(10, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    weights::save_safetensors(&bad_up, &path).unwrap();
    let err = Upscaler::load(&path, &Device::Cpu)
        .err()
        .expect("bad upsampler accepted")
        .to_string();
    assert!(err.contains("upsampler.0.weight"), "{err}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_frame_sizes_are_errors_not_panics() {
    let mut up = upscaler(&Config::rtc(2));
    assert!(up.upscale_u8(&[], (0, 0), 3, (0, 0)).is_err());
    assert!(up.upscale_u8(&[1, 2, 3], (2, 2), 3, (4, 4)).is_err());
    assert!(up.upscale_u8(&[1, 2, 3], (1, 1), 3, (0, 2)).is_err());
    assert!(up.upscale_u8(&[1, 2], (1, 1), 2, (2, 2)).is_err());
}

#[test]
fn an_8k_frame_runs_in_bounded_tiles() {
    // 7680×4320 through ACS at scale 1 (as IMDN_AS runs): the network never sees more than
    // batch × tile², and every stitched pixel comes back from its tile
    struct Spy(std::cell::Cell<usize>);
    impl imdn::acs::Forward for Spy {
        fn forward_batch_into(&self, x: &[f32], _: Nhw, out: &mut Vec<f32>) -> imdn::Result<()> {
            self.0.set(self.0.get().max(x.len()));
            *out = x.iter().map(|v| v + 1.0).collect();
            Ok(())
        }
    }
    let (w, h) = (7680, 4320);
    let frame: Vec<f32> = (0..3 * w * h).map(|i| (i % 251) as f32).collect();
    let spy = Spy(std::cell::Cell::new(0));
    let acs = Acs {
        tile: 512,
        overlap: 32,
        batch: 2,
        margin: 0,
    };
    let out = acs.run(&spy, &frame, (w, h), 1, 4).unwrap();
    assert_eq!(spy.0.get(), 2 * 3 * 512 * 512);
    assert_eq!(out.len(), frame.len());
    assert!(
        out.iter()
            .zip(&frame)
            .step_by(9973)
            .all(|(o, i)| *o == i + 1.0)
    );
}

#[test]
fn precision_is_parsed_and_checked_against_the_device() {
    use imdn::engine::{Options, Precision};
    for (s, p) in [
        ("f32", Precision::F32),
        ("tf32", Precision::Tf32),
        ("f16", Precision::F16),
        ("bf16", Precision::Bf16),
        ("int8", Precision::Int8),
    ] {
        assert_eq!(s.parse::<Precision>().unwrap(), p);
    }
    let err = "fp64".parse::<Precision>().unwrap_err().to_string();
    assert!(err.contains("f32, tf32, f16, bf16 or int8"), "{err}");
    // the CPU runs f32 (TF32 means f32 there); half precision asks for CUDA, clearly
    let tensors = init_tensors(&Config::rtc(2), &Device::Cpu).unwrap();
    for p in [Precision::F32, Precision::Tf32] {
        let options = Options {
            precision: p,
            cpu_threads: 1,
            ..Options::default()
        };
        assert!(Upscaler::with_options(tensors.clone(), &Device::Cpu, options).is_ok());
    }
    let options = Options {
        precision: Precision::F16,
        cpu_threads: 1,
        ..Options::default()
    };
    let err = Upscaler::with_options(tensors, &Device::Cpu, options)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("needs CUDA"), "{err}");
}

#[test]
fn reused_buffers_give_the_same_frames_as_fresh_ones() {
    // forward_planar_into keeps ACS's and the executor's buffers between frames: frames of
    // changing sizes and tilings through one Upscaler must equal fresh, allocating calls
    let mut up = upscaler(&Config::rtc(3));
    let mut out = Vec::new();
    let frame = |w: usize, h: usize, k: usize| -> Vec<f32> {
        (0..3 * w * h)
            .map(|i| ((i * 7919 + k * 31) % 1000) as f32 / 1000.0)
            .collect()
    };
    for (k, &(w, h, tile)) in [
        (40, 30, 0),
        (40, 30, 0),
        (17, 9, 0),
        (70, 45, 32),
        (40, 30, 16),
    ]
    .iter()
    .enumerate()
    {
        up.acs = Acs {
            tile,
            overlap: 12,
            batch: 2,
            // an edge margin on every other frame
            margin: 8 * (k % 2),
        };
        let input = frame(w, h, k);
        up.forward_planar_into(&input, (w, h), &mut out).unwrap();
        let fresh = up.forward_planar(&input, (w, h)).unwrap();
        assert_eq!(out.len(), 3 * 9 * w * h, "frame {k}");
        assert!(out == fresh, "frame {k} ({w}×{h}, tile {tile}) differs");
    }
}
