//! The CUDA executor's kernels (`src/cuda/kernels.cu`) without a GPU: compiled for the host
//! with `host_shim.h` standing in for CUDA's built-ins, every step of a schedule launched as
//! `cuda::args` builds it, against `cuda::Reference` (which `tests/cuda_schedule.rs` checks
//! against candle's networks): IMDN, IMDN_RTC and IMDN_AS, batches of frames, f32 and f16
//! activations. Needs a C++ compiler (`c++`, or `$CXX`).

mod common;

use common::host_kernels::{self, Deferred, HOST, Host, replicate, run_on_host, window};
use half::f16;
use imdn::acs::Framing;
use imdn::cuda::args::{
    Args, AttentionArgs, ConvArgs, FramesArgs, KERNELS, PackedArgs, StatsArgs, Storage, Tap,
    ViewArg, YuvInArgs, YuvOutArgs,
};
use imdn::cuda::executor::{Conversions, Executor, Lane, RawAddresses, RawFrame, RawInput};
use imdn::cuda::{Reference, Schedule};
use imdn::model::Config;
use imdn::weights::shipped;

#[test]
fn every_kernel_is_known_to_the_host() {
    // an empty grid runs nothing: only the name is looked up
    let zero = Args::Conv(ConvArgs::default());
    for name in KERNELS {
        // SAFETY: no thread runs
        assert!(
            unsafe { host_kernels::launch(name, zero.bytes(), 0, 32) },
            "{name}"
        );
    }
}

#[test]
fn argument_structs_are_the_kernels() {
    for (name, size) in [
        ("ViewArg", size_of::<ViewArg>()),
        ("ConvArgs", size_of::<ConvArgs>()),
        ("StatsArgs", size_of::<StatsArgs>()),
        ("AttentionArgs", size_of::<AttentionArgs>()),
        ("FramesArgs", size_of::<FramesArgs>()),
        ("YuvInArgs", size_of::<YuvInArgs>()),
        ("YuvOutArgs", size_of::<YuvOutArgs>()),
        ("PackedArgs", size_of::<PackedArgs>()),
        ("Tap", size_of::<Tap>()),
    ] {
        assert_eq!(host_kernels::size_of_struct(name), size, "{name}");
    }
}

#[test]
fn host_f16_rounds_as_the_gpu() {
    // PTX cvt.rn.f16.f32 rounds to nearest even, as the half crate does: normals, ties,
    // subnormals, overflow
    let (to_half, to_float) = host_kernels::f16_conversions();
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        65504.0,
        65520.0,
    ];
    values.extend([1e-5, 3e-8, 6.1e-5, 1e9, -2.5e-3, 0.1, 1.0 / 3.0]);
    values.extend((0..20_000).map(|i| ((i as f32) * 0.7311).sin() * 10f32.powi(i % 9 - 5)));
    for v in values {
        let want = f16::from_f32(v);
        // SAFETY: plain conversions
        let got = unsafe { to_half(v) };
        assert_eq!(got, want.to_bits(), "{v}");
        assert_eq!(
            unsafe { to_float(got) }.to_bits(),
            want.to_f32().to_bits(),
            "{v}"
        );
    }
}

/// Planar frames `[n][3][h][w]` as NHWC `[n][h][w][3]` into `out`.
fn planar_to_nhwc(src: &[f32], (n, h, w): (usize, usize, usize), out: &mut Vec<f32>) {
    out.clear();
    out.resize(src.len(), 0.0);
    let plane = h * w;
    for f in 0..n {
        for c in 0..3 {
            let from = &src[(f * 3 + c) * plane..][..plane];
            for (p, &v) in from.iter().enumerate() {
                out[(f * plane + p) * 3 + c] = v;
            }
        }
    }
}

/// NHWC frames as planar into `out`.
fn nhwc_to_planar(src: &[f32], (n, h, w): (usize, usize, usize), out: &mut Vec<f32>) {
    out.clear();
    out.resize(src.len(), 0.0);
    let plane = h * w;
    for f in 0..n {
        for c in 0..3 {
            let to = &mut out[(f * 3 + c) * plane..][..plane];
            for (p, v) in to.iter_mut().enumerate() {
                *v = src[(f * plane + p) * 3 + c];
            }
        }
    }
}

/// A deterministic NHWC input in [0, 1).
fn frames(n: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n * h * w * 3)
        .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
        .collect()
}

/// The scale codes of `n` frames: frame `i` is told `0.3 − 0.4·i` (IMDN_AS with a scale
/// input; the others ignore them).
fn codes(n: usize) -> Vec<f32> {
    (0..n).map(|i| 0.3 - 0.4 * i as f32).collect()
}

/// The schedule of `tensors` on `n` frames of `h`×`w` through the executor on the host, with
/// activations in `storage`; returns its output and the reference's.
fn run_both(
    tensors: imdn::weights::Tensors,
    (n, h, w): (usize, usize, usize),
    storage: Storage,
) -> (Vec<f32>, Vec<f32>) {
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let (input, codes) = (frames(n, h, w), codes(n));
    let mut reference = Reference::new(schedule.clone());
    let want = reference
        .run(&input, (n, h, w), Some(&codes))
        .unwrap()
        .to_vec();
    let mut executor = Executor::new(HOST, schedule, storage).unwrap();
    let (mut planar, mut got, mut got_nhwc) = (Vec::new(), Vec::new(), Vec::new());
    nhwc_to_planar(&input, (n, h, w), &mut planar);
    executor
        .run(&planar, (n, h, w), Some(&codes), &mut got)
        .unwrap();
    assert!(executor.replays_a_graph());
    let s = config.net_scale();
    planar_to_nhwc(&got, (n, h * s, w * s), &mut got_nhwc);
    (got_nhwc, want)
}

fn shipped_tensors(name: &str) -> imdn::weights::Tensors {
    shipped::by_name(name).unwrap().tensors().unwrap()
}

/// The largest absolute difference, and the mean one.
fn differences(got: &[f32], want: &[f32]) -> (f32, f32) {
    assert_eq!(got.len(), want.len());
    let max = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    let mean = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .sum::<f32>()
        / got.len() as f32;
    (max, mean)
}

/// The shipped models the tests run, with a frame size each (IMDN_AS: sides multiple of 4).
const CASES: [(&str, (usize, usize, usize)); 4] = [
    ("imdn_rtc_x2", (2, 13, 22)),
    ("imdn_rtc_x4", (1, 9, 7)),
    ("imdn_x3", (1, 19, 31)),
    ("imdn_as", (2, 16, 20)),
];

#[test]
fn direct_kernels_compute_the_reference_in_f32() {
    for (name, size) in CASES {
        let (got, want) = run_both(shipped_tensors(name), size, Storage::F32);
        let (max, mean) = differences(&got, &want);
        eprintln!("{name} {size:?} f32: max {max:.2e}, mean {mean:.2e}");
        // the same f32 products, summed in another order
        assert!(max < 1e-4, "{name}: {max}");
    }
}

#[test]
fn tensor_core_convs_in_f16_stay_near_the_reference() {
    for (name, size) in CASES {
        let (got, want) = run_both(shipped_tensors(name), size, Storage::F16);
        let (max, mean) = differences(&got, &want);
        eprintln!("{name} {size:?} f16: max {max:.2e}, mean {mean:.2e}");
        // f16 keeps 11 significant bits of every activation and weight: about 5e-4 of each
        // value, compounding over the network's depth
        assert!(max < 5e-3 && mean < 5e-4, "{name}: max {max}, mean {mean}");
    }
}

#[test]
fn buffers_are_allocated_once_per_frame_size() {
    let tensors = shipped_tensors("imdn_x2");
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    // launched one by one (the other tests replay recorded launches)
    let host = Host { graphs: false };
    let mut executor = Executor::new(host, schedule.clone(), Storage::F32).unwrap();
    let mut reference = Reference::new(schedule);
    let mut out = Vec::new();
    // a size, again, another, the first again: three allocations, every output right
    for (i, size) in [(1, 9, 14), (1, 9, 14), (2, 6, 5), (1, 9, 14)]
        .into_iter()
        .enumerate()
    {
        let (n, h, w) = size;
        // each run different frames, so that nothing stale could pass
        let input: Vec<f32> = frames(n, h, w)
            .iter()
            .map(|v| (v + 0.1 * i as f32) % 1.0)
            .collect();
        let (mut planar, mut got) = (Vec::new(), Vec::new());
        nhwc_to_planar(&input, size, &mut planar);
        executor.run(&planar, size, None, &mut out).unwrap();
        planar_to_nhwc(&out, (n, 2 * h, 2 * w), &mut got);
        let want = reference.run(&input, size, None).unwrap();
        let (max, _) = differences(&got, want);
        assert!(max < 1e-4, "run {i} {size:?}: {max}");
    }
    assert_eq!(executor.allocations(), 3);
    // the weights (f32 and biases: about 4 bytes a parameter) and one size's buffers
    let plan = schedule_bytes(&executor, (1, 9, 14));
    assert!(executor.device_bytes() >= plan && executor.device_bytes() < plan + (3 << 20));
    assert!(!executor.replays_a_graph());
}

#[test]
fn bad_frames_are_refused() {
    let tensors = shipped_tensors("imdn_as");
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let scale = schedule.config.net_scale();
    let mut executor = Executor::new(HOST, schedule, Storage::F16).unwrap();
    let mut out = Vec::new();
    let input = frames(1, 8, 8);
    // a short input, a side not a multiple of 4, no scale codes
    assert!(
        executor
            .run(&input[1..], (1, 8, 8), Some(&codes(1)), &mut out)
            .is_err()
    );
    assert!(
        executor
            .run(&frames(1, 8, 6), (1, 8, 6), Some(&codes(1)), &mut out)
            .is_err()
    );
    assert!(executor.run(&input, (1, 8, 8), None, &mut out).is_err());
    executor
        .run(&input, (1, 8, 8), Some(&codes(1)), &mut out)
        .unwrap();
    assert_eq!(out.len(), (scale * 8).pow(2) * 3);
}

#[test]
fn planar_and_nhwc_round_trip() {
    let (n, h, w) = (2, 3, 5);
    let planar: Vec<f32> = (0..n * 3 * h * w).map(|i| i as f32).collect();
    let (mut nhwc, mut back) = (Vec::new(), Vec::new());
    planar_to_nhwc(&planar, (n, h, w), &mut nhwc);
    // frame 1, channel 2, pixel (1, 4)
    assert_eq!(
        nhwc[((h + 1) * w + 4) * 3 + 2],
        planar[((3 + 2) * h + 1) * w + 4]
    );
    nhwc_to_planar(&nhwc, (n, h, w), &mut back);
    assert_eq!(back, planar);
}

/// Bytes of the buffers of a frame size in f32 (what the executor must hold at least).
fn schedule_bytes(executor: &Executor<Host>, (n, h, w): (usize, usize, usize)) -> usize {
    executor.schedule().plan(n, h, w).unwrap().bytes_f32()
}

#[test]
fn raw_frames_are_converted_padded_and_cropped_on_the_device() {
    // IMDN_RTC ×2, frames in and out as packed R'G'B' bytes with padded rows, the network's
    // frames their pixels replicated 3 out (more at the right and bottom): two frames of a
    // size (recorded, then replayed), then another size
    let tensors = shipped_tensors("imdn_rtc_x2");
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let s = config.net_scale();
    let margin = 3;
    let mut executor = Executor::new(HOST, schedule.clone(), Storage::F32).unwrap();
    let mut plain = Executor::new(HOST, schedule, Storage::F32).unwrap();
    for (i, (w, h)) in [(11, 7), (11, 7), (6, 9)].into_iter().enumerate() {
        let (stride, out_stride) = (3 * w + 5, 3 * w * s + 2);
        let (pw, ph) = (w + 2 * margin + 1, h + 2 * margin + 2);
        let bytes: Vec<u8> = (0..stride * h)
            .map(|k| ((k * 37 + i * 101) % 256) as u8)
            .collect();
        // on the host: read, pad, the network, crop, write
        let mut planar = vec![0f32; 3 * w * h];
        let read = PackedArgs::rgb(
            bytes.as_ptr() as u64,
            stride,
            planar.as_mut_ptr() as u64,
            (w, h),
        );
        run_on_host(&[read.launch(true).unwrap()]);
        let mut out = Vec::new();
        let padded = replicate(&planar, (w, h), (pw, ph), margin);
        plain.run(&padded, (1, ph, pw), None, &mut out).unwrap();
        let cropped = window(&out, (pw * s, ph * s), margin * s, (w * s, h * s));
        let mut want = vec![0u8; out_stride * h * s];
        let at = (want.as_mut_ptr() as u64, cropped.as_ptr() as u64);
        let write = PackedArgs::rgb(at.0, out_stride, at.1, (w * s, h * s));
        run_on_host(&[write.launch(false).unwrap()]);
        // on the device
        let mut got = vec![0u8; want.len()];
        let framing = Framing {
            frame: (h, w),
            margin,
        };
        let frame = RawFrame {
            inputs: &[&bytes],
            tables: &[],
            outputs: &mut [&mut got],
        };
        executor
            .run_raw(((1, ph, pw), framing), None, frame, |at, (into, out_of)| {
                let read = PackedArgs::rgb(at.inputs[0], stride, at.planar_in, (w, h));
                let write =
                    PackedArgs::rgb(at.outputs[0], out_stride, at.planar_out, (w * s, h * s));
                into.push(read.launch(true)?);
                out_of.push(write.launch(false)?);
                Ok(())
            })
            .unwrap();
        assert!(got == want, "frame {i}");
        assert!(executor.replays_a_graph());
    }
    assert_eq!(executor.allocations(), 2);
    // frames that do not fit the network's with their margin
    let framing = Framing {
        frame: (9, 6),
        margin: 4,
    };
    let frame = RawFrame {
        inputs: &[],
        tables: &[],
        outputs: &mut [],
    };
    let refused = executor.run_raw(((1, 12, 12), framing), None, frame, |_, _| Ok(()));
    assert!(refused.is_err());
}

#[test]
fn frames_in_flight_come_out_as_frames_run_one_at_a_time() {
    // IMDN_RTC ×2 on a device whose lanes run as late as the host lets them, in each order
    // that puts one lane first (a missing wait then gives wrong bytes): five frames, each
    // submitted while the one before is still in flight, against each frame run alone on
    // the host device
    let tensors = shipped_tensors("imdn_rtc_x2");
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let s = config.net_scale();
    let ((w, h), margin) = ((9, 6), 2);
    let (pw, ph) = (w + 2 * margin, h + 2 * margin);
    let (stride, out_stride) = (3 * w + 1, 3 * w * s + 3);
    let at = (
        (1, ph, pw),
        Framing {
            frame: (h, w),
            margin,
        },
    );
    let convert = |at: &RawAddresses, (into, out_of): &mut Conversions| {
        let read = PackedArgs::rgb(at.inputs[0], stride, at.planar_in, (w, h));
        let write = PackedArgs::rgb(at.outputs[0], out_stride, at.planar_out, (w * s, h * s));
        into.push(read.launch(true)?);
        out_of.push(write.launch(false)?);
        Ok(())
    };
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            (0..stride * h)
                .map(|k| ((k * 29 + i * 83) % 256) as u8)
                .collect()
        })
        .collect();
    let mut alone = Executor::new(HOST, schedule.clone(), Storage::F32).unwrap();
    let want: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut out = vec![0u8; out_stride * h * s];
            let frame = RawFrame {
                inputs: &[f],
                tables: &[],
                outputs: &mut [&mut out],
            };
            alone.run_raw(at, None, frame, convert).unwrap();
            out
        })
        .collect();
    assert!(want.windows(2).all(|p| p[0] != p[1]), "the frames differ");
    let orders = [
        [Lane::Up, Lane::Compute, Lane::Down],
        [Lane::Up, Lane::Down, Lane::Compute],
        [Lane::Compute, Lane::Up, Lane::Down],
        [Lane::Compute, Lane::Down, Lane::Up],
        [Lane::Down, Lane::Up, Lane::Compute],
        [Lane::Down, Lane::Compute, Lane::Up],
    ];
    for order in orders {
        let mut executor =
            Executor::new(Deferred::new(order), schedule.clone(), Storage::F32).unwrap();
        let lens = [out_stride * h * s];
        let inputs: Vec<[&[u8]; 1]> = frames.iter().map(|f| [f.as_slice()]).collect();
        let mut got = Vec::new();
        for (i, planes) in inputs.iter().enumerate() {
            let frame = RawInput {
                inputs: planes,
                tables: &[],
                outputs: &lens,
            };
            executor.submit_raw(at, None, frame, convert).unwrap();
            assert_eq!(executor.frames_in_flight(), if i == 0 { 1 } else { 2 });
            if i > 0 {
                let mut out = vec![0u8; lens[0]];
                executor.finish_raw(&mut [&mut out]).unwrap();
                got.push(out);
            }
        }
        let mut out = vec![0u8; lens[0]];
        executor.finish_raw(&mut [&mut out]).unwrap();
        got.push(out);
        assert_eq!(executor.frames_in_flight(), 0);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g == w, "frame {i}, lanes in the order {order:?}");
        }
        assert_eq!(executor.allocations(), 1);
    }
}

#[test]
fn frames_in_flight_are_refused_what_would_overrun_them() {
    let tensors = shipped_tensors("imdn_rtc_x2");
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let order = [Lane::Down, Lane::Up, Lane::Compute];
    let mut executor = Executor::new(Deferred::new(order), schedule, Storage::F32).unwrap();
    let framing = |(h, w)| {
        (
            (1, h, w),
            Framing {
                frame: (h, w),
                margin: 0,
            },
        )
    };
    let bytes = vec![7u8; 3 * 8 * 8];
    let lens = [3 * 16 * 16];
    let frame = RawInput {
        inputs: &[&bytes],
        tables: &[],
        outputs: &lens,
    };
    let convert = |_: &RawAddresses, _: &mut Conversions| Ok(());
    assert!(executor.finish_raw(&mut []).is_err(), "nothing in flight");
    for _ in 0..2 {
        executor
            .submit_raw(framing((8, 8)), None, frame, convert)
            .unwrap();
    }
    let third = executor.submit_raw(framing((8, 8)), None, frame, convert);
    assert!(third.is_err(), "a third frame in flight");
    let mut out = vec![0u8; lens[0]];
    executor.finish_raw(&mut [&mut out]).unwrap();
    let other_size = executor.submit_raw(framing((8, 12)), None, frame, convert);
    assert!(
        other_size.is_err(),
        "another size while a frame is in flight"
    );
    let mut planar = Vec::new();
    let run = executor.run(&vec![0.0; 3 * 8 * 12], (1, 8, 12), None, &mut planar);
    assert!(
        run.is_err(),
        "a planar frame of another size while a frame is in flight"
    );
    let mut short = vec![0u8; lens[0] - 1];
    assert!(
        executor.finish_raw(&mut [&mut short]).is_err(),
        "the wrong size"
    );
    assert_eq!(
        executor.frames_in_flight(),
        0,
        "a frame refused its outputs leaves flight"
    );
    executor
        .submit_raw(framing((8, 12)), None, frame, convert)
        .unwrap();
    // dropped with a frame in flight: it finishes first
}

#[test]
fn framed_frames_are_padded_and_cropped_on_the_device() {
    // planar frames padded by replication and cropped back by the frame kernels: what padding
    // on the host, running and cropping gives, bit for bit (IMDN_AS with its scale code and
    // its sides padded up to multiples of 4)
    for (name, (h, w), margin, (ph, pw)) in [
        ("imdn_rtc_x2", (7, 11), 3, (14, 18)),
        ("imdn_as", (5, 6), 4, (16, 16)),
    ] {
        let tensors = shipped_tensors(name);
        let config = Config::detect(&tensors).unwrap();
        let schedule = Schedule::new(&config, &tensors).unwrap();
        let s = config.net_scale();
        let mut framed = Executor::new(HOST, schedule.clone(), Storage::F32).unwrap();
        let mut plain = Executor::new(HOST, schedule, Storage::F32).unwrap();
        let mut input = Vec::new();
        nhwc_to_planar(&frames(1, h, w), (1, h, w), &mut input);
        let code = codes(1);
        let (mut out, mut got) = (Vec::new(), Vec::new());
        let padded = replicate(&input, (w, h), (pw, ph), margin);
        plain
            .run(&padded, (1, ph, pw), Some(&code), &mut out)
            .unwrap();
        let want = window(&out, (pw * s, ph * s), margin * s, (w * s, h * s));
        let framing = Framing {
            frame: (h, w),
            margin,
        };
        framed
            .run_framed(&input, ((1, ph, pw), framing), Some(&code), &mut got)
            .unwrap();
        assert!(got == want, "{name}");
    }
}
