//! Our CPU executor computes what the candle model computes, for every variant and odd sizes.

mod common;

use std::cell::RefCell;

use candle_core::{DType, Device, Tensor};
use imdn::Result;
use imdn::acs::{Acs, Forward, FrameStats, Nhw, Rect};
use imdn::cpu::CpuNet;
use imdn::kernels::Kernels;
use imdn::model::{Config, Network, init_tensors, scale_code};
use imdn::weights::shipped;

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
    use imdn::ops::autograd::conv2d_same;
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
        let ours = conv2d_same(&x, &wt, &b, Kernels::default()).unwrap();
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
    let ours = imdn::ops::autograd::leaky_relu(&x).unwrap();
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
                imdn::kernels::conv::conv_weight_grad(&x, &g, n, (h, w), (cin, cout, 3)),
                Kernels::default().weight_grad(&x, &g, n, (h, w), (cin, cout, 3)),
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
    // the two ways of the same sums, over sides odd and even, one tile and many; from 32
    // input channels by F(4×4, 3×3), below by F(2×2, 3×3)
    for (n, cin, cout, h, w) in [
        (1, 16, 16, 1, 1),
        (2, 12, 9, 4, 4),
        (2, 16, 6, 2, 3),
        (1, 24, 12, 5, 7),
        (1, 32, 8, 1, 1),
        (2, 40, 5, 6, 7),
        (3, 64, 48, 16, 16),
        (2, 48, 64, 11, 30),
        (1, 64, 64, 48, 48),
    ] {
        let x: Vec<f32> = (0..n * cin * h * w)
            .map(|i| ((i * 7919 + 5) % 1013) as f32 / 1013.0 - 0.5)
            .collect();
        let g: Vec<f32> = (0..n * cout * h * w)
            .map(|i| ((i * 104729 + 3) % 997) as f32 / 997.0 - 0.5)
            .collect();
        let want = imdn::kernels::conv::conv_weight_grad(&x, &g, n, (h, w), (cin, cout, 3));
        let got = Kernels::default().weight_grad(&x, &g, n, (h, w), (cin, cout, 3));
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        // F(4×4, 3×3)'s transforms multiply by up to 8: a looser bound, as in winograd.rs
        let tolerance = if cin >= imdn::kernels::plan::F4_MIN_CHANNELS {
            4e-5
        } else {
            1e-5
        };
        assert!(
            diff <= tolerance * scale,
            "({n},{cin},{cout},{h},{w}): diff {diff}, scale {scale}"
        );
    }
}

/// Largest absolute difference of `a` and `b`, relative to `b`'s largest magnitude (at least 1).
fn relative_diff(a: &Tensor, b: &Tensor) -> f32 {
    let max = |t: &Tensor| {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    max(&(a - b).unwrap()) / max(b).max(1.0)
}

/// The fused distillation op equals the composition it replaces (our conv and LeakyReLU ops,
/// candle's narrow and cat), in value and in the gradients of the input and all eight
/// parameters; 64 channels (Winograd everywhere) and RTC's 12 (3 distilled: im2col for c2..c4's
/// adjoint), odd sides too.
#[test]
fn distill_op_and_its_gradients_match_the_composition() {
    use candle_core::Var;
    use imdn::ops::autograd::{conv2d_same, leaky_relu};
    let dev = Device::Cpu;
    for (n, c, h, w) in [(2, 64, 6, 7), (3, 12, 5, 4), (1, 16, 1, 3)] {
        let (d, r) = (c / 4, c - c / 4);
        let x = Var::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
        let shapes = [(c, c), (c, r), (c, r), (d, r)];
        let params: Vec<Var> = shapes
            .iter()
            .flat_map(|&(cout, cin)| {
                [
                    Var::randn(0f32, 0.2, (cout, cin, 3, 3), &dev).unwrap(),
                    Var::randn(0f32, 0.5, cout, &dev).unwrap(),
                ]
            })
            .collect();
        let p: Vec<&Tensor> = params.iter().map(|v| v.as_tensor()).collect();
        let fused =
            imdn::ops::block_ops::distill(&x, p.clone().try_into().unwrap(), Kernels::default())
                .unwrap();
        let conv = |x: &Tensor, k: usize| {
            conv2d_same(x, p[2 * k], p[2 * k + 1], Kernels::default()).unwrap()
        };
        let o1 = leaky_relu(&conv(&x, 0)).unwrap();
        let o2 = leaky_relu(&conv(&o1.narrow(1, d, r).unwrap(), 1)).unwrap();
        let o3 = leaky_relu(&conv(&o2.narrow(1, d, r).unwrap(), 2)).unwrap();
        let o4 = conv(&o3.narrow(1, d, r).unwrap(), 3);
        let parts = [&o1, &o2, &o3].map(|o| o.narrow(1, 0, d).unwrap());
        let composed = Tensor::cat(&[&parts[0], &parts[1], &parts[2], &o4], 1).unwrap();
        assert_eq!(fused.dims(), &[n, 4 * d, h, w]);
        let what = format!("({n}, {c}, {h}, {w})");
        assert!(relative_diff(&fused, &composed) < 1e-5, "forward {what}");
        let target = Tensor::randn(0f32, 1.0, (n, 4 * d, h, w), &dev).unwrap();
        let loss = |y: &Tensor| (y * &target).unwrap().sum_all().unwrap();
        let g1 = loss(&fused).backward().unwrap();
        let g2 = loss(&composed).backward().unwrap();
        for (i, v) in std::iter::once(&x).chain(&params).enumerate() {
            let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            let diff = relative_diff(a, b);
            assert!(
                diff < 1e-4,
                "gradient {i} {what}: relative difference {diff}"
            );
        }
    }
}

/// The fused channel attention equals candle's composition (mean, population std, 1×1 convs
/// as matrix products, ReLU, sigmoid, broadcast product), in value and in the gradients of the
/// input and its four parameters.
#[test]
fn cca_op_and_its_gradients_match_candle() {
    use candle_core::Var;
    let dev = Device::Cpu;
    for (n, c, m, h, w) in [(2, 64, 4, 6, 7), (1, 16, 1, 3, 5)] {
        let x = Var::randn(0.3f32, 1.0, (n, c, h, w), &dev).unwrap();
        let down_w = Var::randn(0f32, 0.3, (m, c, 1, 1), &dev).unwrap();
        let down_b = Var::randn(0f32, 0.3, m, &dev).unwrap();
        let up_w = Var::randn(0f32, 0.3, (c, m, 1, 1), &dev).unwrap();
        let up_b = Var::randn(0f32, 0.3, c, &dev).unwrap();
        let vars = [&x, &down_w, &down_b, &up_w, &up_b];
        let fused = imdn::ops::block_ops::cca(&x, [&down_w, &down_b, &up_w, &up_b]).unwrap();
        let flat = x.reshape((n, c, h * w)).unwrap();
        let mean = flat.mean_keepdim(2).unwrap();
        let var = flat
            .broadcast_sub(&mean)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_keepdim(2)
            .unwrap();
        let stats = (var.sqrt().unwrap() + mean)
            .unwrap()
            .reshape((n, c))
            .unwrap();
        let dense = |v: &Tensor, wt: &Var, b: &Var, cout: usize, cin: usize| {
            v.matmul(&wt.reshape((cout, cin)).unwrap().t().unwrap())
                .unwrap()
                .broadcast_add(b)
                .unwrap()
        };
        let hidden = dense(&stats, &down_w, &down_b, m, c).relu().unwrap();
        let attn = candle_nn::ops::sigmoid(&dense(&hidden, &up_w, &up_b, c, m)).unwrap();
        let composed = x
            .broadcast_mul(&attn.reshape((n, c, 1, 1)).unwrap())
            .unwrap();
        assert!(relative_diff(&fused, &composed) < 1e-5, "forward");
        let target = Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
        let loss = |y: &Tensor| (y * &target).unwrap().sum_all().unwrap();
        let g1 = loss(&fused).backward().unwrap();
        let g2 = loss(&composed).backward().unwrap();
        for (i, v) in vars.into_iter().enumerate() {
            let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            let diff = relative_diff(a, b);
            assert!(
                diff < 1e-4,
                "gradient {i} ({n}, {c}): relative difference {diff}"
            );
        }
    }
}

/// Our executor behind ACS with the scale code IMDN_AS needs, keeping the whole frame's
/// statistics that ACS gathered from the tiles.
struct StatsSpy<'a> {
    cpu: &'a CpuNet,
    code: Option<f32>,
    gathered: RefCell<Option<FrameStats>>,
}

impl Forward for StatsSpy<'_> {
    fn forward_batch_into(&self, x: &[f32], (n, h, w): Nhw, out: &mut Vec<f32>) -> Result<()> {
        self.cpu.forward_at_into(x, n, h, w, self.code, out)
    }

    fn frame_stages(&self) -> usize {
        self.cpu.frame_stages()
    }

    fn add_stage_sums(
        &self,
        x: &[f32],
        nhw: Nhw,
        shares: &[Rect],
        stage: usize,
        stats: &mut FrameStats,
    ) -> Result<()> {
        self.cpu
            .add_block_sums_at(x, nhw, self.code, (shares, stage), stats)
    }

    fn forward_batch_with_stats_into(
        &self,
        x: &[f32],
        nhw: Nhw,
        stats: &FrameStats,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        *self.gathered.borrow_mut() = Some(stats.clone());
        self.cpu
            .forward_with_stats_at_into(x, nhw, self.code, stats, out)
    }
}

/// The whole frame's attention statistics, block after block, with the frame as one tile.
fn whole_frame_stats(
    cpu: &CpuNet,
    frame: &[f32],
    (w, h): (usize, usize),
    code: Option<f32>,
) -> FrameStats {
    let mut stats = FrameStats::default();
    stats.clear(cpu.frame_stages());
    for block in 0..cpu.frame_stages() {
        let whole = [Rect::whole((w, h))];
        cpu.add_block_sums_at(frame, (1, h, w), code, (&whole, block), &mut stats)
            .unwrap();
    }
    stats
}

/// The tiles' shares partition the frame, so the sums ACS gathers over them are the whole
/// frame's: IMDN on an odd-sized frame, IMDN_AS where shares end mid-way through its ¼-size
/// block pixels. The overlaps are twice the receptive fields, where tiles see all their
/// shares depend on (IMDN_AS's 110, not the 48 its tiles run with: at that reach its
/// statistics differ by up to 2e-5 of a channel's deviation, which `tests/acs.rs` bounds in
/// the output).
#[test]
fn tile_shares_gather_the_whole_frames_attention_statistics() {
    for (name, (w, h), (tile, reach)) in [
        ("imdn_x2", (157, 123), (96, 27)),
        ("imdn_as", (300, 260), (256, 112)),
    ] {
        let tensors = shipped::by_name(name).unwrap().tensors().unwrap();
        let config = Config::detect(&tensors).unwrap();
        let cpu = CpuNet::new(&config, &tensors, 2).unwrap();
        let code = config.scale_input.then(|| scale_code(2.0));
        let frame: Vec<f32> = (0..3 * h * w)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w % h) as f32);
                0.5 + 0.3 * (0.11 * x).sin() * (0.07 * y).cos()
                    + 0.1 * ((i * 7919) % 13) as f32 / 13.0
            })
            .collect();
        let spy = StatsSpy {
            cpu: &cpu,
            code,
            gathered: RefCell::new(None),
        };
        let acs = Acs {
            tile,
            ..Acs::for_reach(reach)
        };
        let (m, s) = (config.input_multiple(), config.net_scale());
        acs.run(&spy, &frame, (w, h), s, m).unwrap();
        let tiled = spy
            .gathered
            .take()
            .expect("tiles ran with gathered statistics");
        let whole = whole_frame_stats(&cpu, &frame, (w, h), code);
        assert_eq!(tiled.stages.len(), config.blocks, "{name}");
        for (block, (t, f)) in tiled.stages.iter().zip(&whole.stages).enumerate() {
            assert_eq!(t.pixels, f.pixels, "{name} block {block}");
            for c in 0..f.sums.len() {
                let ((tm, ts), (fm, fs)) = (t.mean_std(c), f.mean_std(c));
                let off = (tm - fm).abs().max((ts - fs).abs()) / fs;
                assert!(
                    off <= 1e-5,
                    "{name} block {block} channel {c}: {off:.1e} of its std"
                );
            }
        }
    }
}
