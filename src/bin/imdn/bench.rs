//! `imdn bench`: the network's time per frame (against candle's and our other conv paths,
//! interleaved), or a training step's, or its phases.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use clap::Args;

use imdn::engine::Upscaler;
use imdn::model::Config;

use crate::common::{RunArgs, auto_tile, load, load_tensors};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Input frame size, WxH.
    #[arg(long, default_value = "640x360")]
    size: String,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Also time candle's own network on the same frame, interleaved, and print the ratio.
    #[arg(long)]
    compare_candle: bool,
    /// Also time our CPU network with im2col instead of Winograd for its 3×3 convs,
    /// interleaved, and print the ratio.
    #[arg(long)]
    compare_im2col: bool,
    /// Also time our CPU network (or, with --train-batch, training step) with Winograd
    /// F(2×2, 3×3) instead of F(4×4, 3×3) for its 3×3 convs of 32 or more input channels,
    /// interleaved, and print the ratio.
    #[arg(long)]
    compare_f2: bool,
    /// With --train-batch: also time the training step with the distillation block as its
    /// separate ops instead of the fused ones (`imdn::cpu::block_ops`), interleaved.
    #[arg(long)]
    compare_unfused: bool,
    /// For external drivers (scripts/compare-cpu.sh): after the warm-up, run one timed frame
    /// per line read on stdin and print its milliseconds on stdout, until end of input.
    #[arg(long)]
    stdin_sync: bool,
    /// Time a training step (forward + L1 backward) on a batch of B patches of the --size
    /// instead, ours against candle's own conv2d, interleaved.
    #[arg(long, value_name = "B")]
    pub train_batch: Option<usize>,
    /// With --train-batch: time the training step's phases (forward, backward, Adam update,
    /// the device synchronised between them) on --device instead: where a GPU step's time goes.
    #[arg(long, requires = "train_batch")]
    phases: bool,
    /// With --phases on CUDA: keep cudarc's event tracking on (training turns it off) to
    /// time what it costs.
    #[arg(long, requires = "phases")]
    cuda_events: bool,
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .context("size must be WxH, e.g. 640x360")?;
    let size = (w.trim().parse()?, h.trim().parse()?);
    if size.0 == 0 || size.1 == 0 {
        bail!("size {s} is empty");
    }
    Ok(size)
}

/// Median, min and max of durations in ms.
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Self {
            median: ms[ms.len() / 2],
            min: ms[0],
            max: ms[ms.len() - 1],
        }
    }
}

/// f32 GEMM throughput of this machine through candle's matmul, for the efficiency figure.
fn gemm_gflops(device: &Device) -> Result<f64> {
    let n = 1024;
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        let c = a.matmul(&b)?;
        device.synchronize()?;
        drop(c);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// Times `f` `iters` times after one warm-up.
fn time_ms(iters: usize, label: &str, mut f: impl FnMut() -> Result<()>) -> Result<Stats> {
    f()?;
    let mut times = Vec::new();
    for i in 0..iters.max(1) {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        eprintln!("  {label} {}: {:.2} ms", i + 1, times[i]);
    }
    Ok(Stats::of(times))
}

/// One warm-up, then one timed forward per stdin line, its ms printed on stdout.
fn bench_stdin_sync(up: &mut Upscaler, frame: &[f32], size: (usize, usize)) -> Result<()> {
    use std::io::{BufRead, Write};
    let mut result = Vec::new();
    up.forward_planar_into(frame, size, &mut result)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        line?;
        let t0 = Instant::now();
        up.forward_planar_into(frame, size, &mut result)?;
        writeln!(out, "{:.3}", t0.elapsed().as_secs_f64() * 1e3)?;
        out.flush()?;
    }
    Ok(())
}

/// What `bench --train-batch` trains: the --weights' configuration built fresh on `dev` as for
/// training (its variables in the map), and a random batch of inputs and targets.
struct TrainBench {
    config: Config,
    vars: candle_nn::VarMap,
    net: imdn::model::Network,
    x: Tensor,
    y: Tensor,
    size: (usize, usize),
}

impl TrainBench {
    fn new(a: &BenchArgs, batch: usize, dev: &Device) -> Result<Self> {
        use candle_core::DType;
        use candle_nn::{VarBuilder, VarMap};
        let (w, h) = parse_size(&a.size)?;
        let config = Config::detect(&load_tensors(&a.run, 2)?).map_err(anyhow::Error::msg)?;
        let vars = VarMap::new();
        let net =
            imdn::model::Network::new(&config, VarBuilder::from_varmap(&vars, DType::F32, dev))?;
        let s = config.net_scale();
        let x = Tensor::rand(0f32, 1.0, (batch, 3, h, w), dev)?;
        let y = Tensor::rand(0f32, 1.0, (batch, 3, h * s, w * s), dev)?;
        Ok(Self {
            config,
            vars,
            net,
            x,
            y,
            size: (w, h),
        })
    }

    /// The L1 loss of one forward pass.
    fn loss(&self) -> Result<Tensor> {
        Ok(
            (candle_core::Module::forward(&self.net, &self.x)? - &self.y)?
                .abs()?
                .mean_all()?,
        )
    }
}

/// The conv code a `bench --train-batch` step runs: process-wide switches in `imdn::cpu`.
#[derive(Clone, Copy)]
struct ConvPath {
    name: &'static str,
    /// Our conv op (else candle's conv2d, and the switches below mean nothing).
    ours: bool,
    /// Winograd for the 3×3 convs (else im2col).
    winograd: bool,
    /// Winograd F(4×4, 3×3) for 3×3 convs of 32 or more input channels (else F(2×2, 3×3)).
    f4: bool,
    /// The fused distillation-block ops (else their separate ops).
    fused: bool,
}

impl ConvPath {
    const OURS: Self = Self {
        name: "ours",
        ours: true,
        winograd: true,
        f4: true,
        fused: true,
    };
    const CANDLE: Self = Self {
        name: "candle",
        ours: false,
        winograd: false,
        f4: false,
        fused: false,
    };

    fn select(&self) {
        imdn::cpu::autograd::set_enabled(self.ours);
        imdn::cpu::winograd::set_enabled(self.winograd);
        imdn::cpu::winograd4::set_enabled(self.f4);
        imdn::cpu::block_ops::set_enabled(self.fused);
    }
}

/// Forward + L1 backward of a freshly initialised network of the weights' variant, ours
/// against candle's conv2d.
fn bench_train(a: &BenchArgs, batch: usize, threads: usize) -> Result<()> {
    let tb = TrainBench::new(a, batch, &Device::Cpu)?;
    let (config, (w, h)) = (tb.config, tb.size);
    let step = || -> Result<f64> {
        let t0 = Instant::now();
        drop(tb.loss()?.backward()?);
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    eprintln!("training step of {config}: batch {batch} of {w}×{h}, {threads} threads");
    step()?;
    // interleaved step by step, ours first (the others' ratios are to it)
    let mut paths = vec![ConvPath::OURS, ConvPath::CANDLE];
    if a.compare_im2col {
        paths.insert(
            1,
            ConvPath {
                name: "ours with im2col",
                winograd: false,
                f4: false,
                ..ConvPath::OURS
            },
        );
    }
    if a.compare_unfused {
        paths.insert(
            1,
            ConvPath {
                name: "ours unfused",
                fused: false,
                ..ConvPath::OURS
            },
        );
    }
    if a.compare_f2 {
        paths.insert(
            1,
            ConvPath {
                name: "ours with F(2x2, 3x3)",
                f4: false,
                ..ConvPath::OURS
            },
        );
    }
    let mut times = vec![Vec::new(); paths.len()];
    for i in 0..a.iters.max(1) {
        for (path, t) in paths.iter().zip(&mut times) {
            path.select();
            t.push(step()?);
        }
        let line: Vec<String> = paths
            .iter()
            .zip(&times)
            .map(|(p, t)| format!("{} {:.0} ms", p.name, t[i]))
            .collect();
        eprintln!("  {}: {}", i + 1, line.join(", "));
    }
    ConvPath::OURS.select();
    let medians: Vec<f64> = times.into_iter().map(|t| Stats::of(t).median).collect();
    let ours = medians[0];
    let others: Vec<String> = paths
        .iter()
        .zip(&medians)
        .skip(1)
        .map(|(p, m)| format!("{} {m:.0} ms ({:.2}× ours)", p.name, m / ours))
        .collect();
    println!(
        "{config} training step, batch {batch} of {w}x{h}, {threads} threads (medians, \
         interleaved): ours {ours:.0} ms; {}",
        others.join("; ")
    );
    Ok(())
}

/// `bench --train-batch B --phases`: one training step as `imdn train` runs it (the network
/// built as for training, L1 loss, our Adam), its phases timed apart on the chosen device.
fn bench_train_phases(a: &BenchArgs, batch: usize) -> Result<()> {
    use imdn::train::adam::{Adam, AdamParams};
    let dev = a.run.device.open()?;
    if !a.cuda_events {
        imdn::train::single_stream(&dev);
    }
    let tb = TrainBench::new(a, batch, &dev)?;
    let (config, (w, h)) = (tb.config, tb.size);
    let named: Vec<(String, candle_core::Var)> = tb
        .vars
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map poisoned"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut adam = Adam::new(named, AdamParams::default())?;
    eprintln!(
        "training step phases of {config} on {:?}: batch {batch} of {w}×{h}{}",
        dev.location(),
        if a.cuda_events && dev.is_cuda() {
            ", event tracking on"
        } else {
            ""
        }
    );
    let mut phases = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..=a.iters.max(1) {
        let t0 = Instant::now();
        let loss = tb.loss()?;
        dev.synchronize()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        dev.synchronize()?;
        let t2 = Instant::now();
        adam.step(&grads, 1e-4)?;
        dev.synchronize()?;
        let t3 = Instant::now();
        let ms = [t1 - t0, t2 - t1, t3 - t2].map(|d| d.as_secs_f64() * 1e3);
        eprintln!(
            "  {i}: forward {:.1} ms, backward {:.1} ms, Adam {:.1} ms{}",
            ms[0],
            ms[1],
            ms[2],
            if i == 0 { " (warm-up)" } else { "" }
        );
        if i > 0 {
            for (p, m) in phases.iter_mut().zip(ms) {
                p.push(m);
            }
        }
    }
    let [f, b, u] = phases.map(|p| Stats::of(p).median);
    println!(
        "{config} training step phases, batch {batch} of {w}x{h}, {:?} (medians): forward \
         {f:.1} ms, backward {b:.1} ms, Adam {u:.1} ms, total {:.1} ms",
        dev.location(),
        f + b + u
    );
    Ok(())
}

/// Runs `a` and `b` alternately `iters` times (at least once), printing each pair; returns
/// their median milliseconds.
fn interleaved(
    iters: usize,
    (name_a, a): (&str, &mut dyn FnMut() -> imdn::Result<()>),
    (name_b, b): (&str, &mut dyn FnMut() -> imdn::Result<()>),
) -> Result<(f64, f64)> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for i in 0..iters.max(1) {
        let t0 = Instant::now();
        a()?;
        ta.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        b()?;
        tb.push(t0.elapsed().as_secs_f64() * 1e3);
        eprintln!(
            "  interleaved {}: {name_a} {:.1} ms, {name_b} {:.1} ms",
            i + 1,
            ta[i],
            tb[i]
        );
    }
    Ok((Stats::of(ta).median, Stats::of(tb).median))
}

/// Times the network (or, with --train-batch, a training step) as the flags ask.
pub fn bench(a: BenchArgs, threads: usize) -> Result<()> {
    if let Some(batch) = a.train_batch {
        if a.phases {
            return bench_train_phases(&a, batch);
        }
        return bench_train(&a, batch, threads);
    }
    let (w, h) = parse_size(&a.size)?;
    let mut up = load(&a.run, 2)?;
    auto_tile(&mut up, &a.run, (w, h));
    let config = *up.config();
    // IMDN_AS refines a frame as if upscaled ×2 (the cost does not depend on the scale)
    up.set_refine_scale(2.0)?;
    let device = up.device().clone();
    let frame: Vec<f32> = (0..3 * w * h)
        .map(|i| ((i * 7919) % 256) as f32 / 255.0)
        .collect();
    let gemm = gemm_gflops(&device)?;
    eprintln!(
        "{config} on {w}×{h}, {:?}, {:?}, {threads} threads, tile {}, {} iterations (+1 warm-up)",
        device.location(),
        a.run.precision,
        up.acs.tile,
        a.iters
    );
    if a.stdin_sync {
        return bench_stdin_sync(&mut up, &frame, (w, h));
    }
    // the frame path as the element runs it: host f32 in, ACS, host f32 out into a buffer
    // kept across frames
    let mut result = Vec::new();
    let Stats { median, min, max } = time_ms(a.iters, "frame", || {
        up.forward_planar_into(&frame, (w, h), &mut result)?;
        Ok(())
    })?;
    // the network alone on a device-resident tensor (what a framework benchmark times)
    let net = if up.acs.tile == 0 && config.input_multiple() == 1 {
        let x = Tensor::from_slice(&frame, (1, 3, h, w), &device)?;
        Some(time_ms(a.iters, "network", || {
            let y = up.forward_raw(&x)?;
            device.synchronize()?;
            drop(y);
            Ok(())
        })?)
    } else {
        None
    };
    // candle's conv2d on the same frame, interleaved with ours so both see the same machine
    let candle = if a.compare_candle {
        let x = Tensor::from_slice(&frame, (1, 3, h, w), &device)?;
        let (o, t) = interleaved(
            a.iters,
            ("ours", &mut || up.forward_raw(&x).map(drop)),
            ("candle", &mut || {
                // candle's own conv2d, not our conv op that its graph uses for training
                imdn::cpu::autograd::set_enabled(false);
                let r = up.forward_candle(&x).map(drop);
                imdn::cpu::autograd::set_enabled(true);
                r
            }),
        )?;
        println!(
            "  interleaved network-only medians: ours {o:.1} ms, candle {t:.1} ms: ours {:.2}× faster",
            t / o
        );
        Some((o, t))
    } else {
        None
    };
    // our Winograd 3×3 convs against our im2col ones, interleaved
    let im2col = if a.compare_im2col {
        let x = Tensor::from_slice(&frame, (1, 3, h, w), &device)?;
        let (o, t) = interleaved(
            a.iters,
            ("winograd", &mut || {
                imdn::cpu::winograd::set_enabled(true);
                up.forward_raw(&x).map(drop)
            }),
            ("im2col", &mut || {
                imdn::cpu::winograd::set_enabled(false);
                up.forward_raw(&x).map(drop)
            }),
        )?;
        imdn::cpu::winograd::set_enabled(true);
        println!(
            "  interleaved network-only medians: Winograd {o:.1} ms, im2col {t:.1} ms: Winograd {:.2}× faster",
            t / o
        );
        Some((o, t))
    } else {
        None
    };
    // F(4×4, 3×3) against F(2×2, 3×3) on a second copy of the network built without it
    if a.compare_f2 {
        imdn::cpu::winograd4::set_enabled(false);
        let f2 = load(&a.run, 2);
        imdn::cpu::winograd4::set_enabled(true);
        let mut f2 = f2?;
        auto_tile(&mut f2, &a.run, (w, h));
        f2.set_refine_scale(2.0)?;
        let x = Tensor::from_slice(&frame, (1, 3, h, w), &device)?;
        let (o, t) = interleaved(
            a.iters,
            ("F(4x4, 3x3)", &mut || up.forward_raw(&x).map(drop)),
            ("F(2x2, 3x3)", &mut || f2.forward_raw(&x).map(drop)),
        )?;
        println!(
            "  interleaved network-only medians: F(4x4, 3x3) {o:.1} ms, F(2x2, 3x3) {t:.1} ms: F(4x4, 3x3) {:.2}× faster",
            t / o
        );
    }
    let gflop = config.flops_per_pixel() * (w * h) as f64 / 1e9;
    let gflops = gflop / (median / 1e3);
    println!(
        "{config} {w}x{h}: median {median:.2} ms/frame (min {min:.2}, max {max:.2}), {gflop:.2} GFLOP/frame, \
         {gflops:.1} GFLOP/s; GEMM {gemm:.1} GFLOP/s; efficiency {:.0}%",
        100.0 * gflops / gemm
    );
    if let Some(n) = net {
        println!(
            "  network alone (device-resident input): median {:.2} ms (min {:.2}, max {:.2})",
            n.median, n.min, n.max
        );
    }
    if a.json {
        let out = serde_json::json!({
            "model": config.to_string(),
            "size": format!("{w}x{h}"),
            "threads": threads,
            "device": format!("{:?}", device.location()),
            "precision": format!("{:?}", a.run.precision),
            "tile": up.acs.tile,
            "iters": a.iters,
            "ms_per_frame": median,
            "ms_min": min,
            "ms_max": max,
            "network_ms": net.map(|n| n.median),
            "candle_ms": candle.map(|c| c.1),
            "ours_interleaved_ms": candle.map(|c| c.0),
            "winograd_interleaved_ms": im2col.map(|c| c.0),
            "im2col_interleaved_ms": im2col.map(|c| c.1),
            "gflop_per_frame": gflop,
            "gflops_per_s": gflops,
            "gemm_gflops_per_s": gemm,
            "efficiency": gflops / gemm,
        });
        println!("{out}");
    }
    Ok(())
}
