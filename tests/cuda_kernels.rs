//! The CUDA executor's kernels (`src/cuda/kernels.cu`) without a GPU: compiled for the host
//! with `host_shim.h` standing in for CUDA's built-ins, every step of a schedule launched as
//! `cuda::args` builds it, against `cuda::Reference` (which `tests/cuda_schedule.rs` checks
//! against candle's networks): IMDN, IMDN_RTC and IMDN_AS, batches of frames, f32 and f16
//! activations. Needs a C++ compiler (`c++`, or `$CXX`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use half::f16;
use imdn::cuda::args::{
    Addresses, Args, AttentionArgs, ConvArgs, StatsArgs, Storage, ViewArg, launches,
};
use imdn::cuda::schedule::Grid;
use imdn::cuda::{Reference, Schedule, Step};
use imdn::model::Config;
use imdn::weights::shipped;
use libloading::{Library, Symbol};

/// `kernels.cu` and its host launcher, compiled once per test run.
fn host_kernels() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cuda");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imdn-host-kernels.so");
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let status = Command::new(&cxx)
            .args([
                "-std=c++17",
                "-O2",
                "-shared",
                "-fPIC",
                "-Wall",
                "-Werror",
                "-o",
            ])
            .arg(&out)
            .arg(dir.join("host_launch.cpp"))
            .status()
            .unwrap_or_else(|e| panic!("{cxx} (a C++ compiler) cannot run: {e}"));
        assert!(status.success(), "{cxx} failed on kernels.cu");
        // SAFETY: our own library, with no initialisers
        unsafe { Library::new(&out) }.unwrap()
    })
}

fn host_sizeof(name: &str) -> usize {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: host_launch.cpp's `unsigned long host_sizeof(const char*)`
    unsafe {
        let f: Symbol<unsafe extern "C" fn(*const std::ffi::c_char) -> u64> =
            host_kernels().get(b"host_sizeof").unwrap();
        f(name.as_ptr()) as usize
    }
}

/// Runs each launch on the CPU.
fn run_on_host(launches: &[imdn::cuda::args::Launch]) {
    // SAFETY: host_launch.cpp's `int host_launch(const char*, const void*, unsigned, unsigned)`;
    // the launches' addresses point into the caller's live host buffers
    unsafe {
        let launch: Symbol<
            unsafe extern "C" fn(*const std::ffi::c_char, *const u8, u32, u32) -> i32,
        > = host_kernels().get(b"host_launch").unwrap();
        for l in launches {
            let name = std::ffi::CString::new(l.kernel.as_str()).unwrap();
            let rc = launch(name.as_ptr(), l.args.bytes().as_ptr(), l.grid, l.block);
            assert_eq!(rc, 0, "kernel {} unknown to the host launcher", l.kernel);
        }
    }
}

#[test]
fn argument_structs_are_the_kernels() {
    for (name, size) in [
        ("ViewArg", size_of::<ViewArg>()),
        ("ConvArgs", size_of::<ConvArgs>()),
        ("StatsArgs", size_of::<StatsArgs>()),
        ("AttentionArgs", size_of::<AttentionArgs>()),
    ] {
        assert_eq!(host_sizeof(name), size, "{name}");
    }
}

#[test]
fn host_f16_rounds_as_the_gpu() {
    // PTX cvt.rn.f16.f32 rounds to nearest even, as the half crate does: normals, ties,
    // subnormals, overflow
    // SAFETY: host_launch.cpp's conversions
    let (to_half, to_float) = unsafe {
        let a: Symbol<unsafe extern "C" fn(f32) -> u16> =
            host_kernels().get(b"host_float_to_half").unwrap();
        let b: Symbol<unsafe extern "C" fn(u16) -> f32> =
            host_kernels().get(b"host_half_to_float").unwrap();
        (*a, *b)
    };
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

/// A deterministic NHWC input in [0, 1).
fn frames(n: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n * h * w * 3)
        .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
        .collect()
}

/// Host memory for one buffer: f32, or f16 bits.
enum HostBuffer {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl HostBuffer {
    fn address(&self) -> u64 {
        match self {
            HostBuffer::F32(v) => v.as_ptr() as u64,
            HostBuffer::F16(v) => v.as_ptr() as u64,
        }
    }

    fn write(&mut self, values: &[f32]) {
        match self {
            HostBuffer::F32(v) => v.copy_from_slice(values),
            HostBuffer::F16(v) => v
                .iter_mut()
                .zip(values)
                .for_each(|(d, s)| *d = f16::from_f32(*s).to_bits()),
        }
    }

    fn read(&self) -> Vec<f32> {
        match self {
            HostBuffer::F32(v) => v.clone(),
            HostBuffer::F16(v) => v.iter().map(|&b| f16::from_bits(b).to_f32()).collect(),
        }
    }
}

/// The schedule of `tensors` on `n` frames of `h`×`w` through the host kernels with
/// activations in `storage`; returns the output and the reference's.
fn run_both(
    tensors: imdn::weights::Tensors,
    (n, h, w): (usize, usize, usize),
    storage: Storage,
) -> (Vec<f32>, Vec<f32>) {
    let config = Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let input = frames(n, h, w);
    let codes: Vec<f32> = (0..n).map(|i| 0.3 - 0.4 * i as f32).collect();
    let mut reference = Reference::new(schedule.clone());
    let want = reference
        .run(&input, (n, h, w), Some(&codes))
        .unwrap()
        .to_vec();

    let s = &schedule;
    let plan = s.plan(n, h, w).unwrap();
    let mut bufs: Vec<HostBuffer> = s
        .buffers
        .iter()
        .zip(&plan.buffers)
        .map(|(b, p)| match (b.grid, storage) {
            (Grid::Pixels { .. }, Storage::F16) => HostBuffer::F16(vec![0; p.elements]),
            _ => HostBuffer::F32(vec![0.0; p.elements]),
        })
        .collect();
    bufs[s.input].write(&input);
    if let Some(c) = s.codes {
        bufs[c].write(&codes);
    }
    // per step: the embed's weights and the residual's gains, kept alive for the launches
    let per_step = |pick: &dyn Fn(&imdn::cuda::schedule::Conv) -> Option<Vec<f32>>| {
        s.steps
            .iter()
            .map(|step| match step {
                Step::Conv(c) => pick(c),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let embeds = per_step(&|c| c.embed.as_ref().map(|e| e.weights.clone()));
    let gains = per_step(&|c| c.residual.as_ref().and_then(|r| r.gains.clone()));
    let address = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, |v| v.as_ptr() as u64);
    let at = Addresses {
        buffers: bufs.iter().map(HostBuffer::address).collect(),
        weights: s
            .convs
            .iter()
            .map(|c| match storage {
                Storage::F32 => c.f32.as_ptr() as u64,
                Storage::F16 => c.f16.as_ptr() as u64,
            })
            .collect(),
        weights_f32: s.convs.iter().map(|c| c.f32.as_ptr() as u64).collect(),
        biases: s.convs.iter().map(|c| c.bias.as_ptr() as u64).collect(),
        embeds: embeds.iter().map(address).collect(),
        gains: gains.iter().map(address).collect(),
    };
    let launches = launches(s, &plan, &at, storage).unwrap();
    assert_eq!(launches.len(), s.steps.len());
    assert!(launches.iter().all(|l| matches!(
        (&l.args, l.kernel.as_str()),
        (Args::Conv(_), k) if k.starts_with("conv_direct_"))
        || !matches!(l.args, Args::Conv(_))));
    run_on_host(&launches);
    (bufs[s.output].read(), want)
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
    ("imdn_x3", (2, 11, 17)),
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
fn f16_activations_stay_near_the_reference() {
    for (name, size) in CASES {
        let (got, want) = run_both(shipped_tensors(name), size, Storage::F16);
        let (max, mean) = differences(&got, &want);
        eprintln!("{name} {size:?} f16: max {max:.2e}, mean {mean:.2e}");
        // f16 keeps 11 significant bits of every activation and weight: about 5e-4 of each
        // value, compounding over the network's depth
        assert!(max < 5e-3 && mean < 5e-4, "{name}: max {max}, mean {mean}");
    }
}
