//! Our CPU executor computes what the candle model computes, for every variant and odd sizes.

mod common;

use candle_core::{DType, Device, Tensor};
use imdn::cpu::CpuNet;
use imdn::model::{Config, Network, init_tensors};

fn compare(config: Config, n: usize, h: usize, w: usize, threads: usize) {
    let tensors = init_tensors(&config, &Device::Cpu).unwrap();
    let (net, _) = Network::from_tensors(tensors.clone(), &Device::Cpu, DType::F32).unwrap();
    let cpu = CpuNet::new(&config, &tensors, threads).unwrap();
    let input: Vec<f32> = (0..n * 3 * h * w)
        .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
        .collect();
    let x = Tensor::from_slice(&input, (n, 3, h, w), &Device::Cpu).unwrap();
    // what IMDN_AS with a scale input is told (ignored by the others)
    let code = 0.3f32;
    let codes = Tensor::full(code, n, &Device::Cpu).unwrap();
    let want = net
        .forward_at(&x, Some(&codes))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // twice: the second run reuses the buffers of the first
    for _ in 0..2 {
        let mut got = Vec::new();
        cpu.forward_at_into(&input, n, h, w, Some(code), &mut got)
            .unwrap();
        assert_eq!(got.len(), want.len(), "{config} {n}×{h}×{w}");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let max = common::max_abs_diff(&got, &want);
        assert!(
            max <= 1e-4 * scale,
            "{config} {n}×{h}×{w}: max diff {max} (scale {scale})"
        );
    }
}

#[test]
fn rtc_matches_candle() {
    for s in [2, 3, 4] {
        compare(Config::rtc(s), 1, 7, 5, 2);
    }
    compare(Config::rtc(2), 2, 1, 1, 1);
    compare(Config::rtc(2), 1, 37, 61, 2);
}

#[test]
fn imdn_matches_candle() {
    for s in [2, 3, 4] {
        compare(Config::imdn(s), 1, 9, 6, 2);
    }
    compare(Config::imdn(2), 2, 1, 1, 2);
    compare(Config::imdn(2), 1, 33, 40, 1);
}

#[test]
fn imdn_as_matches_candle() {
    compare(Config::imdn_as(), 1, 4, 4, 2);
    compare(Config::imdn_as(), 2, 24, 36, 2);
    compare(Config::imdn_as_paper(), 1, 8, 12, 2);
    let skip_only = Config {
        scale_input: false,
        ..Config::imdn_as()
    };
    compare(skip_only, 1, 8, 8, 1);
}

/// IMDN_AS with a scale input refuses frames without their scale, and its output depends on
/// it (its head's bias is moved by the code, cached between frames of the same scale).
#[test]
fn imdn_as_is_told_the_scale() {
    let config = Config::imdn_as();
    let tensors = init_tensors(&config, &Device::Cpu).unwrap();
    let cpu = CpuNet::new(&config, &tensors, 1).unwrap();
    let (h, w) = (8, 12);
    let input: Vec<f32> = (0..3 * h * w).map(|i| (i % 17) as f32 / 17.0).collect();
    assert!(cpu.forward(&input, 1, h, w).is_err());
    let run = |code: f32| {
        let mut out = Vec::new();
        cpu.forward_at_into(&input, 1, h, w, Some(code), &mut out)
            .unwrap();
        out
    };
    let (x2, x4, x2_again) = (run(0.0), run(1.0), run(0.0));
    assert_eq!(x2, x2_again);
    let diff = common::max_abs_diff(&x2, &x4);
    assert!(diff > 1e-3, "the scale code changed the output by {diff}");
}

#[test]
fn frame_size_changes_reallocate() {
    let config = Config::rtc(2);
    let tensors = init_tensors(&config, &Device::Cpu).unwrap();
    let cpu = CpuNet::new(&config, &tensors, 2).unwrap();
    for (h, w) in [(8, 8), (3, 11), (8, 8)] {
        let out = cpu.forward(&vec![0.5; 3 * h * w], 1, h, w).unwrap();
        assert_eq!(out.len(), 3 * 4 * h * w);
    }
    assert!(cpu.forward(&[0.5; 10], 1, 2, 2).is_err());
}

#[test]
fn conv_op_and_its_gradients_match_candle() {
    use candle_core::Var;
    use imdn::cpu::autograd::conv2d_same;
    let dev = Device::Cpu;
    for (n, cin, cout, k, h, w) in [
        (2, 5, 7, 3, 6, 9),
        (1, 12, 12, 1, 5, 4),
        (2, 3, 16, 3, 1, 1),
        (1, 16, 8, 3, 13, 17),
        // ≥ 8 channels: forward, input and weight gradients by Winograd (odd sides too)
        (2, 12, 9, 3, 6, 7),
        (2, 20, 24, 3, 7, 10),
        (3, 16, 17, 3, 9, 5),
        (1, 48, 16, 3, 1, 3),
    ] {
        let x = Var::randn(0f32, 1.0, (n, cin, h, w), &dev).unwrap();
        let wt = Var::randn(0f32, 0.3, (cout, cin, k, k), &dev).unwrap();
        let b = Var::randn(0f32, 1.0, cout, &dev).unwrap();
        let target = Tensor::randn(0f32, 1.0, (n, cout, h, w), &dev).unwrap();
        let ours = conv2d_same(&x, &wt, &b).unwrap();
        let theirs = x
            .conv2d(&wt, (k - 1) / 2, 1, 1, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, cout, 1, 1)).unwrap())
            .unwrap();
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let d = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let m = b
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .max(1.0);
            assert!(
                d <= 1e-4 * m,
                "{what} ({n},{cin},{cout},{k},{h},{w}): diff {d}, scale {m}"
            );
        };
        close(&ours, &theirs, "forward");
        let g1 = (ours * &target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (theirs * &target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (v, what) in [(&x, "dx"), (&wt, "dw"), (&b, "db")] {
            close(g1.get(v).unwrap(), g2.get(v).unwrap(), what);
        }
    }
}

#[test]
fn leaky_relu_op_and_its_gradient_match_candle() {
    use candle_core::Var;
    let x = Var::randn(0f32, 1.0, (2, 3, 5, 7), &Device::Cpu).unwrap();
    let t = Tensor::randn(0f32, 1.0, (2, 3, 5, 7), &Device::Cpu).unwrap();
    let ours = imdn::cpu::autograd::leaky_relu(&x).unwrap();
    let theirs = candle_nn::ops::leaky_relu(&x, 0.05).unwrap();
    let diff = |a: &Tensor, b: &Tensor| {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(diff(&ours, &theirs) < 1e-7);
    let g1 = (ours * &t).unwrap().sum_all().unwrap().backward().unwrap();
    let g2 = (theirs * &t)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-6);
}

#[test]
fn weight_gradient_is_the_same_whatever_the_threads() {
    // training reproducibility: the sums must not depend on scheduling
    let (n, cin, cout, h, w) = (3, 64, 64, 40, 37);
    let x: Vec<f32> = (0..n * cin * h * w)
        .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5)
        .collect();
    let g: Vec<f32> = (0..n * cout * h * w)
        .map(|i| ((i * 104729) % 997) as f32 / 997.0 - 0.5)
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            (
                imdn::cpu::conv::conv_weight_grad(&x, &g, n, (h, w), (cin, cout, 3)),
                imdn::cpu::winograd_dw::weight_grad(&x, &g, n, (h, w), (cin, cout)),
            )
        })
    };
    let one = run(1);
    for threads in [2, 3, 4] {
        for _ in 0..3 {
            let (im2col, winograd) = run(threads);
            assert!(im2col == one.0, "{threads} threads gave other im2col sums");
            assert!(
                winograd == one.1,
                "{threads} threads gave other Winograd sums"
            );
        }
    }
}

#[test]
fn winograd_weight_gradient_equals_im2col() {
    // the two ways of the same sums, over sides odd and even, one tile and many
    for (n, cin, cout, h, w) in [
        (1, 16, 16, 1, 1),
        (2, 12, 9, 4, 4),
        (2, 16, 6, 2, 3),
        (1, 24, 12, 5, 7),
        (3, 64, 48, 16, 16),
        (2, 48, 64, 11, 30),
    ] {
        let x: Vec<f32> = (0..n * cin * h * w)
            .map(|i| ((i * 7919 + 5) % 1013) as f32 / 1013.0 - 0.5)
            .collect();
        let g: Vec<f32> = (0..n * cout * h * w)
            .map(|i| ((i * 104729 + 3) % 997) as f32 / 997.0 - 0.5)
            .collect();
        let want = imdn::cpu::conv::conv_weight_grad(&x, &g, n, (h, w), (cin, cout, 3));
        let got = imdn::cpu::winograd_dw::weight_grad(&x, &g, n, (h, w), (cin, cout));
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-5 * scale,
            "({n},{cin},{cout},{h},{w}): diff {diff}, scale {scale}"
        );
    }
}
