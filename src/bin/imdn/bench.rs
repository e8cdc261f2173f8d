//! `imdn bench`: the network's time per frame (against candle's and our other conv paths,
//! interleaved), or a training step's, or its phases.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use clap::Args;
use imdn::acs::EdgeMode;
use imdn::cuda::args::PackedArgs;
use imdn::cuda::executor::{Conversions, RawAddresses, RawFrame, RawInput};

use imdn::cpu::CpuNet;
use imdn::engine::Upscaler;
use imdn::kernels::Kernels;
use imdn::model::{Config, Network};
use imdn::ops::{Ops, Ours};

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
    /// Also time our CPU network layer by layer instead of streamed (IMDN_RTC runs streamed,
    /// four rows at a time), interleaved, and print the ratio.
    #[arg(long)]
    compare_layerwise: bool,
    /// With --precision int8: also time the same streamed network in f32, interleaved, and
    /// print the ratio.
    #[arg(long)]
    compare_f32: bool,
    /// Also time the frame path with the model's edge margin (--edge replicate) against
    /// without (--edge zero), interleaved, and print what the margin costs.
    #[arg(long)]
    compare_edge: bool,
    /// With --train-batch: also time the training step with the distillation block as its
    /// separate ops instead of the fused ones (`imdn::ops::block_ops`), interleaved.
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
    net: Network,
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
        let net = Network::new(&config, VarBuilder::from_varmap(&vars, DType::F32, dev))?;
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

    /// The same network on `ops`, sharing the variables.
    fn with_ops(&self, ops: Ops) -> Result<Network> {
        let vb = candle_nn::VarBuilder::from_varmap(
            &self.vars,
            candle_core::DType::F32,
            self.x.device(),
        );
        Ok(Network::with_ops(&self.config, vb, ops)?)
    }

    /// The L1 loss of one forward pass of `net`.
    fn loss(&self, net: &Network) -> Result<Tensor> {
        Ok((candle_core::Module::forward(net, &self.x)? - &self.y)?
            .abs()?
            .mean_all()?)
    }
}

/// The ops a `bench --train-batch` step runs on.
#[derive(Clone, Copy)]
struct ConvPath {
    name: &'static str,
    ops: Ops,
}

impl ConvPath {
    fn ours(name: &'static str, ours: Ours) -> Self {
        Self {
            name,
            ops: Ops::Ours(ours),
        }
    }
}

/// Forward + L1 backward of a freshly initialised network of the weights' variant, ours
/// against candle's conv2d.
fn bench_train(a: &BenchArgs, batch: usize, threads: usize) -> Result<()> {
    let tb = TrainBench::new(a, batch, &Device::Cpu)?;
    let (config, (w, h)) = (tb.config, tb.size);
    let step = |net: &Network| -> Result<f64> {
        let t0 = Instant::now();
        drop(tb.loss(net)?.backward()?);
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    eprintln!("training step of {config}: batch {batch} of {w}×{h}, {threads} threads");
    step(&tb.net)?;
    // interleaved step by step, ours first (the others' ratios are to it)
    let ours = Ours::default();
    let candle = ConvPath {
        name: "candle",
        ops: Ops::Candle,
    };
    let mut paths = vec![ConvPath::ours("ours", ours), candle];
    if a.compare_im2col {
        let im2col = Ours {
            kernels: Kernels::IM2COL,
            ..ours
        };
        paths.insert(1, ConvPath::ours("ours with im2col", im2col));
    }
    if a.compare_unfused {
        let unfused = Ours {
            fused: false,
            ..ours
        };
        paths.insert(1, ConvPath::ours("ours unfused", unfused));
    }
    if a.compare_f2 {
        let f2 = Ours {
            kernels: Kernels {
                winograd4: false,
                ..ours.kernels
            },
            ..ours
        };
        paths.insert(1, ConvPath::ours("ours with F(2x2, 3x3)", f2));
    }
    let nets = paths
        .iter()
        .map(|p| tb.with_ops(p.ops))
        .collect::<Result<Vec<_>>>()?;
    let mut times = vec![Vec::new(); paths.len()];
    for i in 0..a.iters.max(1) {
        for (net, t) in nets.iter().zip(&mut times) {
            t.push(step(net)?);
        }
        let line: Vec<String> = paths
            .iter()
            .zip(&times)
            .map(|(p, t)| format!("{} {:.0} ms", p.name, t[i]))
            .collect();
        eprintln!("  {}: {}", i + 1, line.join(", "));
    }
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
        let loss = tb.loss(&tb.net)?;
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

/// The --weights' network on candle's own ops (not our conv op, which its graph uses for
/// training), run as `Upscaler::forward_candle` runs its network; IMDN_AS told a ×2 upscale.
struct CandleReference {
    net: Network,
    dtype: candle_core::DType,
}

impl CandleReference {
    fn new(a: &BenchArgs, device: &Device) -> Result<Self> {
        let tensors = load_tensors(&a.run, 2)?;
        let config = Config::detect(&tensors).map_err(anyhow::Error::msg)?;
        let dtype = a.run.precision.dtype();
        let vb = candle_nn::VarBuilder::from_tensors(tensors, dtype, device);
        let net = Network::with_ops(&config, vb, Ops::Candle)?;
        Ok(Self { net, dtype })
    }

    fn forward(&self, x: &Tensor) -> imdn::Result<Tensor> {
        let codes = Tensor::full(imdn::model::scale_code(2.0), x.dim(0)?, x.device())?;
        let y = self
            .net
            .forward_at(&x.to_dtype(self.dtype)?, Some(&codes))?;
        Ok(y.to_dtype(candle_core::DType::F32)?)
    }
}

/// The --weights on our CPU executor with other `kernels` than the upscaler's, run as
/// `Upscaler::forward_raw` runs its own; IMDN_AS told a ×2 upscale.
struct CpuReference {
    net: CpuNet,
    scale: usize,
}

impl CpuReference {
    fn new(a: &BenchArgs, kernels: Kernels) -> Result<Self> {
        let tensors = load_tensors(&a.run, 2)?;
        let config = Config::detect(&tensors).map_err(anyhow::Error::msg)?;
        // 0 threads: all cores, as the upscaler's
        let net = CpuNet::with_kernels(&config, &tensors, 0, kernels)?;
        let scale = config.net_scale();
        Ok(Self { net, scale })
    }

    fn forward(&self, x: &Tensor) -> imdn::Result<Tensor> {
        let (n, _, h, w) = x.dims4()?;
        let (s, code) = (self.scale, imdn::model::scale_code(2.0));
        let mut out = Vec::new();
        let x = x.flatten_all()?.to_vec1::<f32>()?;
        self.net
            .forward_at_into(&x, n, h, w, Some(code), &mut out)?;
        Ok(Tensor::from_vec(out, (n, 3, h * s, w * s), &Device::Cpu)?)
    }
}

/// Times the network (or, with --train-batch, a training step) as the flags ask.
pub fn bench(a: BenchArgs, threads: usize) -> Result<()> {
    let a = &a;
    if let Some(batch) = a.train_batch {
        if a.phases {
            return bench_train_phases(a, batch);
        }
        return bench_train(a, batch, threads);
    }
    let (w, h) = parse_size(&a.size)?;
    let mut up = load(&a.run, 2, EdgeMode::Zero)?;
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
    // edge replication against the zero padding, interleaved: what the margin costs
    let edge = if a.compare_edge {
        let (kept, margin) = (up.acs.margin, config.edge_margin());
        let cell = std::cell::RefCell::new((&mut up, Vec::new()));
        let with = |m: usize| {
            let (up, out) = &mut *cell.borrow_mut();
            up.acs.margin = m;
            up.forward_planar_into(&frame, (w, h), out)
        };
        let (r, z) = interleaved(
            a.iters,
            ("replicate", &mut || with(margin)),
            ("zero", &mut || with(0)),
        )?;
        println!(
            "  interleaved frame medians: edge replicate ({margin}-pixel margin) {r:.1} ms, zero {z:.1} ms: +{:.1} %",
            100.0 * (r / z - 1.0)
        );
        up.acs.margin = kept;
        Some((r, z))
    } else {
        None
    };
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
    // our CUDA executor's launches alone, on the frame the lines above ran last
    let launches = match up.cuda_net() {
        Some(gpu) => Some(time_ms(a.iters, "our CUDA launches", || Ok(gpu.rerun()?))?),
        None => None,
    };
    // our CUDA executor on whole frames as bytes (R'G'B', 3 bytes a pixel): uploaded,
    // converted, padded and cropped on the device, downloaded
    let s = config.net_scale();
    let raw_frames = match (up.cuda_net(), up.raw_framing((w, h), (w * s, h * s))) {
        (Some(gpu), Some(at)) => {
            let input: Vec<u8> = frame.iter().map(|v| (v * 255.0) as u8).collect();
            let mut output = vec![0u8; input.len() * s * s];
            let convert = |at: &RawAddresses, (into, out_of): &mut Conversions| {
                let read = PackedArgs::rgb(at.inputs[0], 3 * w, at.planar_in, (w, h));
                let out = (w * s, h * s);
                let write = PackedArgs::rgb(at.outputs[0], 3 * out.0, at.planar_out, out);
                into.push(read.launch(true)?);
                out_of.push(write.launch(false)?);
                Ok(())
            };
            let alone = time_ms(a.iters, "our CUDA whole frames", || {
                let frame = RawFrame {
                    inputs: &[&input],
                    tables: &[],
                    outputs: &mut [&mut output],
                };
                Ok(gpu.run_raw(at, frame, convert)?)
            })?;
            // as the element runs them: each frame queued before the one before is collected,
            // so it goes up and that one comes down while the network runs; the time between
            // frames
            let lens = [output.len()];
            let frame = RawInput {
                inputs: &[&input],
                tables: &[],
                outputs: &lens,
            };
            let mut in_flight = 0;
            let interval = time_ms(a.iters, "our CUDA whole frames, two in flight", || {
                gpu.submit_raw(at, frame, convert)?;
                in_flight += 1;
                if in_flight == 2 {
                    gpu.finish_raw(&mut [&mut output])?;
                    in_flight -= 1;
                }
                Ok(())
            })?;
            gpu.finish_raw(&mut [&mut output])?;
            Some((alone, interval))
        }
        _ => None,
    };
    // candle's conv2d on the same frame, interleaved with ours so both see the same machine
    let candle = if a.compare_candle {
        let x = Tensor::from_slice(&frame, (1, 3, h, w), &device)?;
        let reference = CandleReference::new(a, &device)?;
        let (o, t) = interleaved(
            a.iters,
            ("ours", &mut || up.forward_raw(&x).map(drop)),
            ("candle", &mut || reference.forward(&x).map(drop)),
        )?;
        println!(
            "  interleaved network-only medians: ours {o:.1} ms, candle {t:.1} ms: ours {:.2}× faster",
            t / o
        );
        Some((o, t))
    } else {
        None
    };
    if (a.compare_im2col || a.compare_f2 || a.compare_layerwise || a.compare_f32)
        && !device.is_cpu()
    {
        bail!(
            "--compare-im2col, --compare-f2, --compare-layerwise and --compare-f32 time our CPU kernels: use --device cpu"
        );
    }
    if a.compare_f32 && a.run.precision != imdn::engine::Precision::Int8 {
        bail!("--compare-f32 compares --precision int8 with f32");
    }
    // our network against the same weights on other CPU kernels, frame by frame
    let against = |kernels: Kernels, (ours, other): (&str, &str)| -> Result<(f64, f64)> {
        let reference = CpuReference::new(a, kernels)?;
        let x = Tensor::from_slice(&frame, (1, 3, h, w), &device)?;
        let (o, t) = interleaved(
            a.iters,
            (ours, &mut || up.forward_raw(&x).map(drop)),
            (other, &mut || reference.forward(&x).map(drop)),
        )?;
        println!(
            "  interleaved network-only medians: {ours} {o:.1} ms, {other} {t:.1} ms: {ours} {:.2}× faster",
            t / o
        );
        Ok((o, t))
    };
    let f32_ratio = a
        .compare_f32
        .then(|| against(Kernels::default(), ("int8", "f32")))
        .transpose()?;
    let im2col = a
        .compare_im2col
        .then(|| against(Kernels::IM2COL, ("Winograd", "im2col")))
        .transpose()?;
    let layerwise = a
        .compare_layerwise
        .then(|| against(Kernels::LAYERWISE, ("streamed", "layer by layer")))
        .transpose()?;
    if a.compare_f2 {
        let f2 = Kernels {
            winograd4: false,
            ..Kernels::default()
        };
        against(f2, ("F(4x4, 3x3)", "F(2x2, 3x3)"))?;
    }
    let gflop = config.flops_per_pixel() * (w * h) as f64 / 1e9;
    let gflops = gflop / (median / 1e3);
    println!(
        "{config} {w}x{h}: median {median:.2} ms/frame (min {min:.2}, max {max:.2}), {gflop:.2} GFLOP/frame, \
         {gflops:.1} GFLOP/s; GEMM {gemm:.1} GFLOP/s; efficiency {:.0}%",
        100.0 * gflops / gemm
    );
    if let Some(st) = up.int8_stats() {
        println!(
            "  8-bit: {} of {} frames ran again in f32 (values outside the calibrated ranges: \
             {:.3} u8 steps a pixel on average)",
            st.reruns,
            st.frames,
            st.excess_since(&Default::default())
        );
    }
    if let Some(n) = net {
        println!(
            "  network alone (device-resident input): median {:.2} ms (min {:.2}, max {:.2})",
            n.median, n.min, n.max
        );
    }
    if let (Some(l), Some(gpu)) = (launches, up.cuda_net()) {
        println!(
            "  our CUDA executor's launches alone (frames already on the GPU): median {:.2} ms (min {:.2}, max {:.2}); it holds {} MiB{}",
            l.median,
            l.min,
            l.max,
            gpu.device_bytes()? >> 20,
            match gpu.replays_a_graph()? {
                true => ", one CUDA graph a frame",
                false => ", launched one by one (no CUDA graph)",
            }
        );
    }
    if let Some((r, i)) = &raw_frames {
        println!(
            "  our CUDA executor on whole R'G'B' byte frames (upload, conversions, padding, network, crop, download): median {:.2} ms (min {:.2}, max {:.2}); with two in flight, a frame every {:.2} ms (median)",
            r.median, r.min, r.max, i.median
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
            "launches_ms": launches.map(|l| l.median),
            "raw_frame_ms": raw_frames.as_ref().map(|r| r.0.median),
            "raw_frame_interval_ms": raw_frames.as_ref().map(|r| r.1.median),
            "gpu_bytes": up.cuda_net().map(|g| g.device_bytes()).transpose()?,
            "cuda_graph": up.cuda_net().map(|g| g.replays_a_graph()).transpose()?,
            "candle_ms": candle.map(|c| c.1),
            "ours_interleaved_ms": candle.map(|c| c.0),
            "winograd_interleaved_ms": im2col.map(|c| c.0),
            "im2col_interleaved_ms": im2col.map(|c| c.1),
            "streamed_interleaved_ms": layerwise.map(|c| c.0),
            "layerwise_interleaved_ms": layerwise.map(|c| c.1),
            "int8_interleaved_ms": f32_ratio.map(|c| c.0),
            "f32_interleaved_ms": f32_ratio.map(|c| c.1),
            "edge_replicate_interleaved_ms": edge.map(|e| e.0),
            "edge_zero_interleaved_ms": edge.map(|e| e.1),
            "gflop_per_frame": gflop,
            "gflops_per_s": gflops,
            "gemm_gflops_per_s": gemm,
            "efficiency": gflops / gemm,
        });
        println!("{out}");
    }
    Ok(())
}
