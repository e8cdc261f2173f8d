//! The CUDA executor's device-independent parts (issue 43), on the CPU: the fused schedule run
//! by its CPU reference computes what candle's networks compute (IMDN, IMDN_RTC, IMDN_AS, odd
//! sizes, batches); the weights' GPU packing round-trips; the buffer plan's sizes; no buffer
//! allocated after a size's first frame; no copy step for the IMDB's split and concatenation.

mod common;

use candle_core::{DType, Device, Tensor};
use imdn::cuda::pack::{CHANNEL_ALIGN, ConvShape, PackedConv};
use imdn::cuda::schedule::{Grid, Write};
use imdn::cuda::{Reference, Schedule, Step, View};
use imdn::model::{Config, Network, init_tensors};
use imdn::names;
use imdn::weights::Tensors;
use imdn::weights::shipped;

fn shipped(name: &str) -> Tensors {
    shipped::by_name(name).unwrap().tensors().unwrap()
}

/// A deterministic NCHW input in [0, 1).
fn frames(n: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n * 3 * h * w)
        .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
        .collect()
}

/// NCHW → NHWC.
fn to_nhwc(x: &[f32], (n, c, h, w): (usize, usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for f in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                out[(f * h * w + p) * c + ch] = x[(f * c + ch) * h * w + p];
            }
        }
    }
    out
}

/// Runs `sizes` through candle's network and the schedule's reference; asserts they agree
/// within 1e-4: absolute for trained weights (whose outputs are pixels around [0, 1]), times
/// the output's magnitude where it exceeds 1 for a fresh init (`fresh`), whose outputs are
/// not. Frame `i` is told the
/// scale code `0.3 − 0.4·i` (IMDN_AS with a scale input; the others ignore it).
fn compare(tensors: Tensors, sizes: &[(usize, usize, usize)], fresh: bool) -> Config {
    let (net, config) = Network::from_tensors(tensors.clone(), &Device::Cpu, DType::F32).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let mut reference = Reference::new(schedule);
    for &(n, h, w) in sizes {
        let input = frames(n, h, w);
        let codes: Vec<f32> = (0..n).map(|i| 0.3 - 0.4 * i as f32).collect();
        let x = Tensor::from_slice(&input, (n, 3, h, w), &Device::Cpu).unwrap();
        let codes_t = Tensor::from_slice(&codes, n, &Device::Cpu).unwrap();
        let want = net.forward_at(&x, Some(&codes_t)).unwrap();
        let (_, _, oh, ow) = want.dims4().unwrap();
        let want = to_nhwc(
            &want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            (n, 3, oh, ow),
        );
        let got = reference
            .run(&to_nhwc(&input, (n, 3, h, w)), (n, h, w), Some(&codes))
            .unwrap();
        assert_eq!(got.len(), want.len(), "{config} {n}×{h}×{w}");
        let scale = match fresh {
            true => want.iter().fold(1f32, |m, v| m.max(v.abs())),
            false => 1.0,
        };
        let max = common::max_abs_diff(got, &want);
        assert!(
            max <= 1e-4 * scale,
            "{config} {n}×{h}×{w}: max diff {max} (tolerance 1e-4 × {scale})"
        );
    }
    config
}

#[test]
fn imdn_x2_and_rtc_x3_match_candle() {
    for (name, expected) in [
        ("imdn_x2", Config::imdn(2)),
        ("imdn_rtc_x3", Config::rtc(3)),
    ] {
        let config = compare(shipped(name), &[(1, 13, 9), (1, 1, 1), (2, 24, 16)], false);
        assert_eq!(config, expected, "{name}");
    }
}

#[test]
fn imdn_as_matches_candle() {
    // the shipped one, and ours with both extras (input skip and scale input) from a fresh init
    let sizes = [(1, 28, 20), (1, 4, 4), (2, 16, 24)];
    compare(shipped("imdn_as"), &sizes, false);
    let tensors = init_tensors(&Config::imdn_as(), &Device::Cpu).unwrap();
    let config = compare(tensors, &sizes, true);
    assert!(config.input_skip && config.scale_input);
    let tensors = init_tensors(&Config::imdn_as_paper(), &Device::Cpu).unwrap();
    compare(tensors, &[(1, 12, 8)], true);
}

#[test]
fn other_scales_match_candle_from_a_fresh_init() {
    for config in [Config::imdn(4), Config::rtc(2), Config::rtc(4)] {
        let tensors = init_tensors(&config, &Device::Cpu).unwrap();
        assert_eq!(compare(tensors, &[(1, 7, 5)], true), config);
    }
}

/// Every conv's packed weights unpack to the file's exactly in f32, and to candle's own f16
/// rounding in f16; the padding is zero; the layout is KRSC.
#[test]
fn packing_round_trips() {
    for name in ["imdn_x2", "imdn_rtc_x3", "imdn_as"] {
        let tensors = shipped(name);
        let config = Config::detect(&tensors).unwrap();
        let schedule = Schedule::new(&config, &tensors).unwrap();
        for conv in &schedule.convs {
            let s = conv.shape;
            assert!(s.cout_pad.is_multiple_of(CHANNEL_ALIGN) && s.cout_pad >= s.cout);
            assert!(s.cin_pad.is_multiple_of(CHANNEL_ALIGN) && s.cin_pad < s.cin + CHANNEL_ALIGN);
            assert_eq!(conv.f32.len(), s.packed_len());
            assert_eq!(conv.f16.len(), s.packed_len());
            assert!(conv.padding_is_zero(), "{}", conv.name);
            let w = &tensors[&names::weight(&conv.name)];
            let b = &tensors[&names::bias(&conv.name)];
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(conv.unpack_f32(), flat(w), "{}", conv.name);
            assert_eq!(conv.unpack_bias(), flat(b), "{}", conv.name);
            let f16 = flat(
                &w.to_dtype(DType::F16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap(),
            );
            let back = conv.unpack_f16();
            assert_eq!(back, f16, "{}: f16 as candle rounds", conv.name);
            for (a, b) in back.iter().zip(flat(w)) {
                assert!((a - b).abs() <= b.abs() / 2048.0 + 6e-8, "{}", conv.name);
            }
        }
    }
    // the layout by hand: a 2×3×3×3 conv whose weights are their OIHW index
    let shape = ConvShape::new(2, 3, 3);
    assert_eq!((shape.cout_pad, shape.cin_pad), (8, 8));
    let oihw: Vec<f32> = (0..54).map(|i| i as f32).collect();
    let p = PackedConv::pack("t", shape, &oihw, &[1.0, 2.0]).unwrap();
    for (co, ci, ky, kx) in [(0, 0, 0, 0), (1, 2, 2, 1), (0, 1, 2, 0), (1, 0, 1, 2)] {
        let want = (((co * 3 + ci) * 3 + ky) * 3 + kx) as f32;
        assert_eq!(p.f32[((co * 3 + ky) * 3 + kx) * 8 + ci], want);
        assert_eq!(p.f16[shape.at(co, ky, kx, ci)].to_f32(), want);
    }
    assert_eq!(p.bias, [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(PackedConv::pack("t", shape, &oihw[1..], &[1.0, 2.0]).is_err());
}

/// The buffers of IMDN ×2 at 1080p and of IMDN_AS at 4K, by name, NHWC, in both precisions.
#[test]
fn buffer_plan_sizes() {
    let tensors = shipped("imdn_x2");
    let s = Schedule::new(&Config::imdn(2), &tensors).unwrap();
    let plan = s.plan(1, 1080, 1920).unwrap();
    let dims = |name: &str| plan.buffers.iter().find(|b| b.name == name).unwrap().dims;
    let px = [1, 1080, 1920];
    let with = |c: usize| [px[0], px[1], px[2], c];
    assert_eq!(dims("input"), with(3));
    assert_eq!(dims("fea"), with(64));
    // d1..d4 (4·16) and the two rest slots (2·48)
    assert_eq!(dims("block"), with(160));
    // all six blocks' outputs, the concatenation the 1×1 fusion reads
    assert_eq!(dims("blocks"), with(384));
    assert_eq!(dims("fused"), with(64));
    assert_eq!(dims("cca_stats"), [1, 1, 1, 64]);
    assert_eq!(dims("cca_attn"), [1, 1, 1, 64]);
    assert_eq!(dims("output"), [1, 2160, 3840, 3]);
    let pixels = 1080 * 1920;
    let elements = pixels * (3 + 64 + 160 + 384 + 64) + 2 * 64 + 2160 * 3840 * 3;
    assert_eq!(
        plan.buffers.iter().map(|b| b.elements).sum::<usize>(),
        elements
    );
    assert_eq!(plan.bytes_f16(), 2 * elements);
    assert_eq!(plan.bytes_f32(), 4 * elements);
    for b in &plan.buffers {
        assert_eq!(b.elements, b.dims.iter().product::<usize>());
        assert_eq!(b.bytes_f16() * 2, b.bytes_f32());
    }
    // two frames: twice everything
    assert_eq!(s.plan(2, 1080, 1920).unwrap().bytes_f16(), 4 * elements);

    let tensors = init_tensors(&Config::imdn_as(), &Device::Cpu).unwrap();
    let s = Schedule::new(&Config::imdn_as(), &tensors).unwrap();
    let plan = s.plan(1, 2160, 3840).unwrap();
    let dims = |name: &str| plan.buffers.iter().find(|b| b.name == name).unwrap().dims;
    assert_eq!(dims("input"), [1, 2160, 3840, 3]);
    assert_eq!(dims("codes"), [1, 1, 1, 1]);
    assert_eq!(dims("front"), [1, 1080, 1920, 64]);
    assert_eq!(dims("fea"), [1, 540, 960, 64]);
    assert_eq!(dims("output"), [1, 2160, 3840, 3]);
    // IMDN_AS needs sides that are multiples of 4
    assert!(s.plan(1, 13, 8).is_err());
    assert!(s.plan(0, 8, 8).is_err());
}

/// A second frame of the same size allocates nothing: the same buffers at the same
/// addresses, the same output; a new size allocates once, and so does going back.
#[test]
fn no_allocation_after_the_first_frame() {
    let tensors = shipped("imdn_rtc_x3");
    let s = Schedule::new(&Config::rtc(3), &tensors).unwrap();
    let mut r = Reference::new(s);
    let (n, h, w) = (1, 11, 7);
    let input = to_nhwc(&frames(n, h, w), (n, 3, h, w));
    let first = r.run(&input, (n, h, w), None).unwrap().to_vec();
    let addresses = r.buffer_addresses();
    assert_eq!(r.allocations(), 1);
    for _ in 0..2 {
        let again = r.run(&input, (n, h, w), None).unwrap();
        assert_eq!(again, &first[..]);
        assert_eq!(r.allocations(), 1);
        assert_eq!(r.buffer_addresses(), addresses);
    }
    let other = to_nhwc(&frames(1, 5, 6), (1, 3, 5, 6));
    r.run(&other, (1, 5, 6), None).unwrap();
    assert_eq!(r.allocations(), 2);
    assert_eq!(r.run(&input, (n, h, w), None).unwrap(), &first[..]);
    assert_eq!(r.allocations(), 3);
    // wrong input length, and an IMDN_AS with a scale input run without codes
    assert!(r.run(&input[1..], (n, h, w), None).is_err());
    let tensors = init_tensors(&Config::imdn_as(), &Device::Cpu).unwrap();
    let mut r = Reference::new(Schedule::new(&Config::imdn_as(), &tensors).unwrap());
    assert!(r.run(&[0.0; 48], (1, 4, 4), None).is_err());
}

/// The IMDB's split and concatenation are channel views of one buffer: c1..c3 write their
/// distilled quarter and the rest into the block buffer, c4 its quarter, and c5 reads the four
/// quarters as one view; the blocks' outputs are slots of one buffer that the fusion reads
/// whole. The steps are convs, CCA statistics and attention only.
#[test]
fn split_and_concat_are_views() {
    let tensors = shipped("imdn_x2");
    let s = Schedule::new(&Config::imdn(2), &tensors).unwrap();
    let buf = |name: &str| s.buffers.iter().position(|b| b.name == name).unwrap();
    let (block, blocks) = (buf("block"), buf("blocks"));
    let convs: Vec<_> = s
        .steps
        .iter()
        .filter_map(|st| match st {
            Step::Conv(c) => Some(c),
            _ => None,
        })
        .collect();
    let stats = s
        .steps
        .iter()
        .filter(|st| matches!(st, Step::CcaStats { .. }))
        .count();
    // head, 6 × (c1..c5), fusion, LR_conv, upsampler; 6 × (statistics, attention)
    assert_eq!((convs.len(), stats, s.steps.len()), (34, 6, 46));
    let d = 16;
    for i in 0..6 {
        let c = &convs[1 + 5 * i..][..5];
        for (j, conv) in c[..3].iter().enumerate() {
            let Write::Views(v) = &conv.write else {
                panic!("c{} shuffles", j + 1)
            };
            assert_eq!(v.len(), 2, "c{} splits", j + 1);
            assert_eq!(
                v[0],
                View {
                    buf: block,
                    offset: j * d,
                    channels: d
                }
            );
            assert!(v[1].buf == block && v[1].offset >= 4 * d);
        }
        assert_eq!(
            c[3].write,
            Write::Views(vec![View {
                buf: block,
                offset: 3 * d,
                channels: d
            }])
        );
        let cat = View {
            buf: block,
            offset: 0,
            channels: 4 * d,
        };
        assert_eq!(c[4].src, cat);
        assert!(c[4].src_scale.is_some(), "CCA folded into c5's input");
        let out = View {
            buf: blocks,
            offset: 64 * i,
            channels: 64,
        };
        assert_eq!(c[4].write, Write::Views(vec![out]));
        assert_eq!(
            c[4].residual.as_ref().unwrap().src.buf,
            if i == 0 { buf("fea") } else { blocks }
        );
    }
    assert_eq!(
        convs[31].src,
        View {
            buf: blocks,
            offset: 0,
            channels: 384
        }
    );
    assert!(matches!(convs[33].write, Write::Shuffle { s: 2, .. }));
    assert_eq!(s.buffers[s.output].grid, Grid::Pixels { up: 2, down: 1 });
    print!("{s}");

    // IMDN_RTC: no CCA, two block buffers taking turns, the same split
    let tensors = shipped("imdn_rtc_x3");
    let s = Schedule::new(&Config::rtc(3), &tensors).unwrap();
    assert_eq!(s.steps.len(), 1 + 5 * 5 + 2);
    assert!(s.steps.iter().all(|st| matches!(st, Step::Conv(_))));

    // the validation refuses a conv that writes what it reads
    let mut bad = s.clone();
    let Step::Conv(c2) = &mut bad.steps[2] else {
        panic!("c2 is a conv")
    };
    c2.write = Write::Views(vec![
        c2.src,
        View {
            buf: c2.src.buf,
            offset: 0,
            channels: 3,
        },
    ]);
    assert!(bad.validate().is_err());
}
