//! 8-bit inference on the CPU (`Precision::Int8`): IMDN_RTC's block convs on u8 inputs packed in
//! the streamed executor's rings. The shipped models keep Set5 within 0.05 dB of f32; every
//! pixel, the frame's borders included, stays near the f32 output on every frame size and
//! thread count; calibration records ranges that run; and the cases it does not cover are
//! refused with a reason.

mod common;

use candle_core::Device;
use imdn::cpu::CpuNet;
use imdn::engine::{Options, Precision, Upscaler};
use imdn::eval::{LrSource, evaluate};
use imdn::kernels::{Kernels, int8};
use imdn::model::{Config, init_tensors};
use imdn::weights::shipped;

fn int8() -> Kernels {
    Kernels {
        int8: true,
        ..Kernels::default()
    }
}

/// Whether this CPU runs the 8-bit kernels (else the test says why it is skipped).
fn vnni() -> bool {
    let ok = int8::available();
    if !ok {
        eprintln!("skipped: this CPU lacks AVX-512 VNNI");
    }
    ok
}

/// A smooth frame with edges, in 0..1, like the photographs the ranges were calibrated on.
fn frame(h: usize, w: usize) -> Vec<f32> {
    (0..3 * h * w)
        .map(|i| {
            let (c, y, x) = (i / (h * w), i / w % h, i % w);
            let ramp = (x as f32 / w as f32 + y as f32 / h as f32) / 2.0;
            let edge = if (x / 7 + y / 5 + c) % 3 == 0 {
                0.3
            } else {
                0.0
            };
            (0.6 * ramp + edge + 0.05 * c as f32).min(1.0)
        })
        .collect()
}

#[test]
fn shipped_rtc_models_in_8_bits_stay_within_0_05_db_of_f32_on_set5() {
    let Some(hr) = common::reference("Set5/HR") else {
        return;
    };
    if !vnni() {
        return;
    }
    for scale in [2, 3, 4] {
        let name = format!("imdn_rtc_x{scale}");
        let tensors = shipped::by_name(&name).unwrap().tensors().unwrap();
        let mut psnr = Vec::new();
        for precision in [Precision::F32, Precision::Int8] {
            let options = Options {
                precision,
                ..Options::default()
            };
            let mut up = Upscaler::with_options(tensors.clone(), &Device::Cpu, options).unwrap();
            let report = evaluate(&mut up, &hr, LrSource::Downscale, scale, |_| {}).unwrap();
            psnr.push(report.mean_sr().0);
            let reruns = up.int8_stats().map(|s| s.reruns);
            let in_8_bits = (precision == Precision::Int8).then_some(0);
            assert_eq!(reruns, in_8_bits, "{name}: every image in 8 bits");
        }
        let loss = psnr[0] - psnr[1];
        eprintln!("{name}: f32 {:.4} dB, int8 {:.4} dB", psnr[0], psnr[1]);
        assert!(loss <= 0.05, "{name}: int8 loses {loss:.4} dB");
        assert!(loss > 0.0 || psnr[1] != psnr[0], "{name}: int8 ran f32");
    }
}

/// Sizes around the tile, the vector of tiles, the strip width and the reach.
const SIZES: [(usize, usize); 7] = [
    (1, 1),
    (5, 3),
    (4, 64),
    (37, 61),
    (9, 130),
    (70, 13),
    (6, 1100),
];

/// Every output pixel of the shipped RTC ×2 in 8 bits near f32's, on every size and thread
/// count: at the frame's borders too, where the convs read the zero points as padding. (The
/// largest difference, on a few pixels of the 6×1100 frame, is 0.030–0.031 of full scale
/// depending on how the threads cut it.)
#[test]
fn every_pixel_stays_near_f32_on_every_size_and_thread_count() {
    if !vnni() {
        return;
    }
    let tensors = shipped::by_name("imdn_rtc_x2").unwrap().tensors().unwrap();
    let config = Config::detect(&tensors).unwrap();
    for threads in [1, 2, 3] {
        let f32_net = CpuNet::new(&config, &tensors, threads).unwrap();
        let int8_net = CpuNet::with_kernels(&config, &tensors, threads, int8()).unwrap();
        for (h, w) in SIZES {
            let input = frame(h, w);
            let want = f32_net.forward(&input, 1, h, w).unwrap();
            let got = int8_net.forward(&input, 1, h, w).unwrap();
            let worst = common::max_abs_diff(&got, &want);
            let mean = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
                / want.len() as f32;
            assert!(
                worst < 0.035 && mean < 0.002,
                "{h}×{w} on {threads} threads: largest difference {worst}, mean {mean}"
            );
        }
    }
}

/// Ranges recorded on a frame calibrate weights that had none (the shipped RTC ×3's, its
/// ranges removed): they hold 0, and the 8-bit network then follows the f32 one on that frame.
#[test]
fn recorded_ranges_calibrate_weights_without_them() {
    if !vnni() {
        return;
    }
    let mut tensors = shipped::by_name("imdn_rtc_x3").unwrap().tensors().unwrap();
    tensors.retain(|name, _| !name.starts_with("int8."));
    let config = Config::detect(&tensors).unwrap();
    let f32_net = CpuNet::new(&config, &tensors, 2).unwrap();
    let (h, w) = (40, 70);
    let input = frame(h, w);
    let mut ranges = Vec::new();
    f32_net
        .record_input_ranges(&input, (h, w), &mut ranges)
        .unwrap();
    assert_eq!(ranges.len(), 4 * config.blocks);
    for r in &ranges {
        assert!(r.iter().all(|&(lo, hi)| lo <= 0.0 && 0.0 <= hi && lo < hi));
    }
    let calibration = f32_net.calibration(&ranges).unwrap();
    assert_eq!(calibration.len(), 4 * config.blocks);
    tensors.extend(calibration);
    let int8_net = CpuNet::with_kernels(&config, &tensors, 2, int8()).unwrap();
    let want = f32_net.forward(&input, 1, h, w).unwrap();
    let got = int8_net.forward(&input, 1, h, w).unwrap();
    assert_eq!(int8_net.int8_stats().unwrap().reruns, 0, "in 8 bits");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = common::max_abs_diff(&got, &want);
    assert!(
        worst < 0.03 * scale,
        "largest difference {worst} of {scale}"
    );
}

/// Counting the values the convs read over their recorded ranges gives those ranges back when
/// nothing is left out (to a bin), and narrower ones when some is (`imdn calibrate --clip`).
#[test]
fn counted_values_give_the_recorded_ranges_or_narrower_ones() {
    let tensors = shipped::by_name("imdn_rtc_x2").unwrap().tensors().unwrap();
    let config = Config::detect(&tensors).unwrap();
    let net = CpuNet::new(&config, &tensors, 2).unwrap();
    let (h, w) = (40, 70);
    let input = frame(h, w);
    let mut hists = Vec::new();
    let err = net.count_input_values(&input, (h, w), &[], &mut hists);
    assert!(err.is_err(), "the ranges come first");
    let mut ranges = Vec::new();
    net.record_input_ranges(&input, (h, w), &mut ranges)
        .unwrap();
    net.count_input_values(&input, (h, w), &ranges, &mut hists)
        .unwrap();
    assert_eq!(hists.len(), ranges.len());
    let mut narrower = 0;
    for (r, h) in ranges.iter().zip(&hists) {
        assert_eq!(r.len(), h.len());
        for (&(lo, hi), h) in r.iter().zip(h) {
            let bin = (hi - lo) / 4096.0 + 1e-6;
            let all = h.clipped(0.0);
            assert!(
                (all.0 - lo).abs() <= bin && (all.1 - hi).abs() <= bin,
                "{all:?} {lo} {hi}"
            );
            let most = h.clipped(0.01);
            assert!(most.0 >= all.0 && most.1 <= all.1);
            narrower += usize::from(most != all);
        }
    }
    assert!(narrower > 0, "leaving out 1 % narrows ranges");
}

#[test]
fn what_8_bits_do_not_cover_is_refused_with_a_reason() {
    let err = |tensors, kernels| {
        let config = Config::detect(&tensors).unwrap();
        CpuNet::with_kernels(&config, &tensors, 1, kernels)
            .err()
            .expect("refused")
            .to_string()
    };
    let imdn = shipped::by_name("imdn_x2").unwrap().tensors().unwrap();
    assert!(err(imdn, int8()).contains("only streamed IMDN_RTC"));
    let rtc = shipped::by_name("imdn_rtc_x2").unwrap().tensors().unwrap();
    let layerwise = Kernels {
        int8: true,
        ..Kernels::LAYERWISE
    };
    assert!(err(rtc.clone(), layerwise).contains("only streamed IMDN_RTC"));
    if vnni() {
        let fresh = init_tensors(&Config::rtc(2), &Device::Cpu).unwrap();
        let msg = err(fresh, int8());
        assert!(msg.contains("imdn calibrate"), "{msg}");
        // a range tensor of the wrong size, or least above greatest: named
        let key = imdn::names::input_range("model.1.sub.0.c2");
        for bad in [vec![0.0f32; 4], [1.0f32, -1.0].repeat(9)] {
            let mut t = rtc.clone();
            let n = bad.len();
            t.insert(
                key.clone(),
                candle_core::Tensor::from_vec(bad, n, &Device::Cpu).unwrap(),
            );
            let msg = err(t, int8());
            assert!(msg.contains(&key) && msg.contains("pairs"), "{msg}");
        }
    } else {
        assert!(err(rtc, int8()).contains("AVX-512 VNNI"));
    }
}

/// A frame beyond the calibrated ranges (a 2-pixel checkerboard, which the ranges of
/// photographs clip badly) runs again in f32: it comes out as f32 makes it, and its values
/// widen the ranges, so that the next such frame runs in 8 bits near f32. A frame within
/// them runs once.
#[test]
fn a_frame_that_clips_runs_again_in_f32_and_widens_the_ranges() {
    if !vnni() {
        return;
    }
    let tensors = shipped::by_name("imdn_rtc_x2").unwrap().tensors().unwrap();
    let config = Config::detect(&tensors).unwrap();
    let f32_net = CpuNet::new(&config, &tensors, 2).unwrap();
    let int8_net = CpuNet::with_kernels(&config, &tensors, 2, int8()).unwrap();
    let (h, w) = (48, 64);
    let smooth = frame(h, w);
    int8_net.forward(&smooth, 1, h, w).unwrap();
    assert_eq!(
        int8_net.int8_stats().unwrap().reruns,
        0,
        "a frame within the ranges"
    );
    let checkers: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i % w / 2 + i / w % h / 2) % 2) as f32)
        .collect();
    let want = f32_net.forward(&checkers, 1, h, w).unwrap();
    let got = int8_net.forward(&checkers, 1, h, w).unwrap();
    assert_eq!(int8_net.int8_stats().unwrap().reruns, 1);
    assert_eq!(got, want, "the frame that clipped is f32's");
    let again = int8_net.forward(&checkers, 1, h, w).unwrap();
    assert_eq!(
        int8_net.int8_stats().unwrap().reruns,
        1,
        "the widened ranges hold it"
    );
    assert_ne!(again, want, "in 8 bits");
    let mean = again
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / want.len() as f32;
    assert!(mean < 0.01, "mean difference {mean}");
}
