//! `imdn`: upscale images, convert checkpoints, evaluate on a benchmark set, describe weights,
//! time the network.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use clap::{Args, Parser, Subcommand};

use imdn::acs::Acs;
use imdn::engine::{DeviceChoice, Precision, Upscaler};
use imdn::eval::{LrSource, evaluate, read_rgb};
use imdn::model::{Config, Variant};
use imdn::weights;
use imdn::weights::parameter_count;
use imdn::weights::shipped;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc 3's
/// `mimalloc.h`; the test below checks it against the option's documented default).
const MI_OPTION_PURGE_DELAY: i32 = 15;

// From the mimalloc library that the `mimalloc` crate links (libmimalloc-sys declares them only
// behind a feature that would pull in another crate).
unsafe extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: i32) -> std::ffi::c_long;
}

#[derive(Parser)]
#[command(
    name = "imdn",
    version,
    about = "IMDN super-resolution (Hui et al., ACM MM 2019)"
)]
struct Cli {
    /// CPU threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upscale an image (PNG, JPEG, BMP).
    Upscale(UpscaleArgs),
    /// Convert a PyTorch checkpoint (legacy or zip .pth) or safetensors file to safetensors. An
    /// `imdn train` checkpoint gives its weights (the weight average if the run keeps one)
    /// with the run's model card, as the run's own export would at that step.
    Convert { input: PathBuf, output: PathBuf },
    /// Evaluate on a folder of HR images: PSNR/SSIM on Y, as the authors' protocol.
    Eval(EvalArgs),
    /// Describe a weights file or shipped model: variant, scale, parameter count. Without an
    /// argument: list the shipped models.
    Info { weights: Option<String> },
    /// Time the network on a random frame.
    Bench(BenchArgs),
    /// Train a model: L1 loss (or L2), Adam, resumable checkpoints (see weights/README.md).
    Train(TrainArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Weights: a file (safetensors or the authors' PyTorch .pth) or a shipped model's name
    /// (`imdn info` lists them). Default: the shipped IMDN_RTC for the scale.
    #[arg(long)]
    weights: Option<String>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// ACS tile side in input pixels; 0 = whole frame. Default: whole frame up to 512×512
    /// network input pixels, 256-pixel tiles above.
    #[arg(long)]
    tile: Option<usize>,
    /// Overlap between ACS tiles, in input pixels.
    #[arg(long, default_value_t = 16)]
    overlap: usize,
    /// f32, tf32, f16 or bf16 (the last three need CUDA).
    #[arg(long, default_value = "f32")]
    precision: Precision,
}

#[derive(Args)]
struct UpscaleArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Scale factor. IMDN/RTC: the model's scale (default). IMDN_AS: any factor ≥ 1.
    #[arg(long, conflicts_with_all = ["width", "height"])]
    scale: Option<f64>,
    /// Output width (with --height): exact target size.
    #[arg(long, requires = "height")]
    width: Option<usize>,
    /// Output height (with --width).
    #[arg(long, requires = "width")]
    height: Option<usize>,
    input: PathBuf,
    output: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Folder of HR images.
    #[arg(long)]
    hr: PathBuf,
    /// Folder of LR images (NAME.ext or NAMEx{scale}.ext for each HR NAME.ext).
    #[arg(
        long,
        conflicts_with = "downscale",
        required_unless_present = "downscale"
    )]
    lr: Option<PathBuf>,
    /// Make the LR images from HR with our MATLAB-style bicubic.
    #[arg(long)]
    downscale: bool,
    #[arg(long)]
    scale: usize,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
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
    train_batch: Option<usize>,
    /// With --train-batch: time the training step's phases (forward, backward, Adam update,
    /// the device synchronised between them) on --device instead: where a GPU step's time goes.
    #[arg(long, requires = "train_batch")]
    phases: bool,
    /// With --phases on CUDA: keep cudarc's event tracking on (training turns it off) to
    /// time what it costs.
    #[arg(long, requires = "phases")]
    cuda_events: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // SAFETY: no other thread exists yet; candle reads RAYON_NUM_THREADS when it sizes its pools.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    // `bench --train-batch` times training steps: the same settings as `train`
    let training = match &cli.command {
        Command::Train(_) => true,
        Command::Bench(b) => b.train_batch.is_some(),
        _ => false,
    };
    if training && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // A training step's heavy work (our conv op) runs on our own pool; candle's pool
        // workers spin between its small elementwise ops and only take the cores from it
        // (steps ≈ 12 % slower with them).
        // SAFETY: as above, still single-threaded
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    if training && std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // candle allocates every activation and gradient afresh each step; with mimalloc's
        // default purge the freed megabytes go back to the kernel between steps and come back
        // as pages it must zero again (≈ 15 % of an IMDN step). Training's working set is the
        // same every step, so keep it.
        // SAFETY: a plain option store in the allocator, valid at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    match cli.command {
        Command::Upscale(a) => upscale(a),
        Command::Convert { input, output } => convert(&input, &output),
        Command::Eval(a) => eval(a),
        Command::Info { weights } => match weights {
            Some(w) => info(&w),
            None => list_shipped(),
        },
        Command::Bench(a) => bench(a, threads),
        Command::Train(a) => train(a),
    }
}

fn parse_device(s: &str) -> Result<DeviceChoice> {
    Ok(match s {
        "auto" => DeviceChoice::Auto,
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse) {
            Some(Ok(id)) => DeviceChoice::Cuda(id),
            _ => bail!("unknown device {other:?}: use cpu, cuda, cuda:N or auto"),
        },
    })
}

/// The tensors of `--weights`, or of the shipped IMDN_RTC at `scale` without it.
fn load_tensors(run: &RunArgs, scale: usize) -> Result<weights::Tensors> {
    match &run.weights {
        Some(spec) => Ok(shipped::load_file_or_shipped(spec)?),
        None => {
            let m = shipped::find(Variant::Rtc, scale).with_context(|| {
                format!(
                    "no shipped model for ×{scale} (shipped: {}); pass --weights",
                    shipped::names()
                )
            })?;
            Ok(m.tensors()?)
        }
    }
}

/// What `--weights` names, for reports.
fn weights_label(run: &RunArgs, scale: usize) -> String {
    run.weights
        .clone()
        .unwrap_or_else(|| format!("imdn_rtc_x{scale} (shipped)"))
}

/// Loads the weights (see [`load_tensors`]) on the chosen device with the chosen tiling.
fn load(run: &RunArgs, scale: usize) -> Result<Upscaler> {
    let device = parse_device(&run.device)?.open()?;
    let options = imdn::engine::Options {
        precision: run.precision,
        ..Default::default()
    };
    let mut up = Upscaler::with_options(load_tensors(run, scale)?, &device, options)
        .with_context(|| format!("weights {}", weights_label(run, scale)))?;
    up.acs = Acs {
        tile: run.tile.unwrap_or(0),
        overlap: run.overlap,
        ..Acs::default()
    };
    Ok(up)
}

/// With no --tile: whole frames up to 512×512 network-input pixels, 256-pixel tiles above.
fn auto_tile(up: &mut Upscaler, run: &RunArgs, net_input: (usize, usize)) {
    if run.tile.is_none() {
        up.acs.tile = if net_input.0 * net_input.1 > 512 * 512 {
            256
        } else {
            0
        };
    }
}

fn upscale(a: UpscaleArgs) -> Result<()> {
    // without --weights: the shipped model whose scale covers --scale (then bicubic to size)
    let model_scale = match a.scale {
        Some(s) if s.is_finite() => (s.ceil() as usize).clamp(2, 4),
        _ => 2,
    };
    let mut up = load(&a.run, model_scale)?;
    let img = read_rgb(&a.input)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let config = *up.config();
    let out = match (a.width, a.height, a.scale) {
        (Some(ow), Some(oh), _) => (ow, oh),
        (_, _, Some(s)) => {
            if !(s >= 1.0 && s.is_finite()) {
                bail!("--scale must be a number ≥ 1, got {s}");
            }
            (
                (w as f64 * s).round() as usize,
                (h as f64 * s).round() as usize,
            )
        }
        _ if config.variant == Variant::As => {
            bail!("IMDN_AS weights need --scale or --width/--height")
        }
        _ => (w * config.net_scale(), h * config.net_scale()),
    };
    if config.variant != Variant::As && out != (w * config.net_scale(), h * config.net_scale()) {
        eprintln!(
            "note: {config} makes {}×{}; resizing that to {}×{} with bicubic",
            w * config.net_scale(),
            h * config.net_scale(),
            out.0,
            out.1
        );
    }
    let net_input = if config.variant == Variant::As {
        out
    } else {
        (w, h)
    };
    auto_tile(&mut up, &a.run, net_input);
    let t0 = Instant::now();
    let pixels = up.upscale_u8(img.as_raw(), (w, h), 3, out)?;
    let secs = t0.elapsed().as_secs_f64();
    let result = image::RgbImage::from_raw(out.0 as u32, out.1 as u32, pixels)
        .context("output buffer has the wrong size")?;
    result
        .save(&a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    eprintln!(
        "{} {}×{} → {}×{} with {config} in {secs:.2} s: {}",
        a.input.display(),
        w,
        h,
        out.0,
        out.1,
        a.output.display()
    );
    Ok(())
}

fn convert(input: &Path, output: &Path) -> Result<()> {
    let is_checkpoint = weights::load_metadata(input)
        .is_ok_and(|m| m.contains_key(imdn::train::checkpoint::STATE_KEY));
    let tensors = if is_checkpoint {
        imdn::train::export_checkpoint(input, output)?
    } else {
        let tensors = weights::load(input)?;
        weights::save_safetensors(&tensors, output)?;
        tensors
    };
    let described = match Config::detect(&tensors) {
        Ok(c) => c.to_string(),
        Err(e) => format!("not a known IMDN variant ({e})"),
    };
    eprintln!(
        "{} → {}: {} tensors, {} parameters, {described}",
        input.display(),
        output.display(),
        tensors.len(),
        parameter_count(&tensors)
    );
    Ok(())
}

fn list_shipped() -> Result<()> {
    for m in shipped::SHIPPED {
        let tensors = m.tensors()?;
        let config = Config::detect(&tensors).map_err(anyhow::Error::msg)?;
        println!(
            "{}: {config}, {} parameters",
            m.name,
            parameter_count(&tensors)
        );
    }
    Ok(())
}

fn info(spec: &str) -> Result<()> {
    let tensors = shipped::load_file_or_shipped(spec)?;
    let config = Config::detect(&tensors).map_err(|e| anyhow::anyhow!("{spec}: {e}"))?;
    println!("file: {spec}");
    println!("variant: {}", config.variant.name());
    match config.variant {
        Variant::As => println!("scale: any (output size = bicubic-upscaled input size)"),
        _ => println!("scale: {}", config.net_scale()),
    }
    if config.input_skip {
        println!("input skip: yes (the output adds the input frame: ours, not in the paper)");
    }
    if config.scale_input {
        println!("scale input: yes (the network is told the scale: ours, not in the paper)");
    }
    println!("channels: {}", config.channels);
    println!("blocks: {}", config.blocks);
    println!("parameters: {}", parameter_count(&tensors));
    println!(
        "GFLOP per megapixel of network input: {:.1}",
        config.flops_per_pixel() * 1e6 / 1e9
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let s = a.scale;
    let mut up = load(&a.run, s)?;
    if a.run.tile.is_none() {
        // benchmark images are small: whole frames, as the authors evaluate
        up.acs.tile = 0;
    }
    let lr = match &a.lr {
        Some(dir) => LrSource::Folder(dir),
        None => LrSource::Downscale,
    };
    let report = evaluate(&mut up, &a.hr, lr, s, |r| {
        eprintln!(
            "{:>12}  PSNR {:.4} dB  SSIM {:.5}  (bicubic {:.4} / {:.5})",
            r.name, r.psnr_y, r.ssim_y, r.bicubic_psnr_y, r.bicubic_ssim_y
        )
    })?;
    let (mp, ms) = report.mean_sr();
    let (bp, bs) = report.mean_bicubic();
    if a.json {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "psnr_y": r.psnr_y,
                    "ssim_y": r.ssim_y,
                    "bicubic": {"psnr_y": r.bicubic_psnr_y, "ssim_y": r.bicubic_ssim_y},
                })
            })
            .collect();
        let out = serde_json::json!({
            "weights": weights_label(&a.run, s),
            "model": up.config().to_string(),
            "scale": s,
            "images": images,
            "mean": {"psnr_y": mp, "ssim_y": ms},
            "bicubic": {"psnr_y": bp, "ssim_y": bs},
        });
        println!("{out}");
    } else {
        println!("{:>12}  {:>10}  {:>8}", "", "PSNR (Y)", "SSIM (Y)");
        for r in &report.images {
            println!("{:>12}  {:>10.4}  {:>8.5}", r.name, r.psnr_y, r.ssim_y);
        }
        println!("{:>12}  {:>10.4}  {:>8.5}", "mean", mp, ms);
        println!("{:>12}  {:>10.4}  {:>8.5}", "bicubic", bp, bs);
    }
    Ok(())
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
fn stats(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0], ms[ms.len() - 1])
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

/// Times `f` `iters` times after one warm-up; returns (median, min, max) in ms.
fn time_ms(
    iters: usize,
    label: &str,
    mut f: impl FnMut() -> Result<()>,
) -> Result<(f64, f64, f64)> {
    f()?;
    let mut times = Vec::new();
    for i in 0..iters.max(1) {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        eprintln!("  {label} {}: {:.2} ms", i + 1, times[i]);
    }
    Ok(stats(times))
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

/// Forward + L1 backward of a freshly initialised network of the weights' variant, ours
/// against candle's conv2d.
fn bench_train(a: &BenchArgs, batch: usize, threads: usize) -> Result<()> {
    use imdn::cpu::autograd;
    let tb = TrainBench::new(a, batch, &Device::Cpu)?;
    let (config, (w, h)) = (tb.config, tb.size);
    let step = || -> Result<f64> {
        let t0 = Instant::now();
        drop(tb.loss()?.backward()?);
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    eprintln!("training step of {config}: batch {batch} of {w}×{h}, {threads} threads");
    step()?;
    // (name, our conv op, Winograd in it, F(4×4, 3×3) from 32 channels, the fused block
    // ops), interleaved step by step
    let mut variants = vec![
        ("ours", true, true, true, true),
        ("candle", false, false, false, false),
    ];
    if a.compare_im2col {
        variants.insert(1, ("ours with im2col", true, false, false, true));
    }
    if a.compare_unfused {
        variants.insert(1, ("ours unfused", true, true, true, false));
    }
    if a.compare_f2 {
        variants.insert(1, ("ours with F(2x2, 3x3)", true, true, false, true));
    }
    let mut times = vec![Vec::new(); variants.len()];
    for i in 0..a.iters.max(1) {
        for (&(_, op, winograd, f4, fused), t) in variants.iter().zip(&mut times) {
            autograd::set_enabled(op);
            imdn::cpu::winograd::set_enabled(winograd);
            imdn::cpu::winograd4::set_enabled(f4);
            imdn::cpu::block_ops::set_enabled(fused);
            t.push(step()?);
        }
        let line: Vec<String> = variants
            .iter()
            .zip(&times)
            .map(|((name, ..), t)| format!("{name} {:.0} ms", t[i]))
            .collect();
        eprintln!("  {}: {}", i + 1, line.join(", "));
    }
    autograd::set_enabled(true);
    imdn::cpu::winograd::set_enabled(true);
    imdn::cpu::winograd4::set_enabled(true);
    imdn::cpu::block_ops::set_enabled(true);
    let medians: Vec<f64> = times.into_iter().map(|t| stats(t).0).collect();
    let ours = medians[0];
    let others: Vec<String> = variants
        .iter()
        .zip(&medians)
        .skip(1)
        .map(|((name, ..), m)| format!("{name} {m:.0} ms ({:.2}× ours)", m / ours))
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
    let dev = parse_device(&a.run.device)?.open()?;
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
    let [f, b, u] = phases.map(|p| stats(p).0);
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
    Ok((stats(ta).0, stats(tb).0))
}

fn bench(a: BenchArgs, threads: usize) -> Result<()> {
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
    let (median, min, max) = time_ms(a.iters, "frame", || {
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
    if let Some((m, lo, hi)) = net {
        println!(
            "  network alone (device-resident input): median {m:.2} ms (min {lo:.2}, max {hi:.2})"
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
            "network_ms": net.map(|n| n.0),
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

#[derive(Args)]
struct TrainArgs {
    /// imdn, rtc or as.
    #[arg(long)]
    variant: String,
    /// Scale of IMDN/RTC (IMDN_AS trains at random scales in [1.1, 4]).
    #[arg(long)]
    scale: Option<usize>,
    /// Channels (default: the paper's, 64 for imdn/as, 12 for rtc).
    #[arg(long)]
    channels: Option<usize>,
    /// Distillation blocks (default: the paper's, 6 for imdn/as, 5 for rtc).
    #[arg(long)]
    blocks: Option<usize>,
    /// IMDN_AS without the scale input (as the first run behind weights/imdn_as was trained).
    #[arg(long)]
    no_scale_input: bool,
    /// Folder of HR training images (scripts/prepare-data.sh makes one).
    #[arg(long)]
    data: PathBuf,
    /// Folder for checkpoints, the log and model.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Total steps (with --resume: the step to continue up to).
    #[arg(long)]
    steps: u64,
    /// LR patch side (HR = patch·scale); IMDN_AS: the body's side (input = 4·patch).
    #[arg(long, default_value_t = 48)]
    patch: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Halve the learning rate every N steps (0: never).
    #[arg(long, default_value_t = 0)]
    halve_every: u64,
    /// Prefer patches with at least this detail (mean |∇luma| in 8-bit levels; flat sky ≈0.5,
    /// texture ≥8): up to 8 positions are tried per patch. 0: uniform patches.
    #[arg(long, default_value_t = 0.0)]
    min_detail: f32,
    /// l1 (the paper's) or l2 (mean squared error: a last fine-tuning stage for PSNR).
    #[arg(long, default_value = "l1")]
    loss: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start from the tensors of this file that match by name and shape (e.g. a ×2 body).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999, about
    /// the last 1000 steps; 0: none). Validation scores it, the export writes it, checkpoints
    /// carry it; the training itself is unchanged.
    #[arg(long, default_value_t = 0.0)]
    ema: f64,
    /// Folder of HR validation images (LR by our bicubic).
    #[arg(long)]
    val: Option<PathBuf>,
    /// Validation PSNR every N steps (and at the end).
    #[arg(long, default_value_t = 0)]
    val_every: u64,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Checkpoints kept (0: all).
    #[arg(long, default_value_t = 3)]
    keep: usize,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Where the final weights go (default: OUT/model.safetensors).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Log line every N steps (to OUT/train-log.jsonl; also stderr without a terminal).
    #[arg(long, default_value_t = 100)]
    log_every: u64,
    /// Stop after the step that ends past this many seconds of training (then checkpoint,
    /// validate and export as at --steps; --resume continues).
    #[arg(long)]
    time_limit: Option<f64>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
}

fn train(a: TrainArgs) -> Result<()> {
    use imdn::train::{Loss, TrainOptions, checkpoint::parse_variant, train};
    let variant = parse_variant(&a.variant)
        .with_context(|| format!("unknown variant {:?}: use imdn, rtc or as", a.variant))?;
    let mut config = match (variant, a.scale) {
        (Variant::As, Some(_)) => {
            bail!("IMDN_AS trains at random scales in [1.1, 4]: drop --scale")
        }
        (Variant::As, None) => Config::imdn_as(),
        (Variant::Imdn, s) => Config::imdn(s.unwrap_or(2)),
        (Variant::Rtc, s) => Config::rtc(s.unwrap_or(2)),
    };
    config.channels = a.channels.unwrap_or(config.channels);
    config.blocks = a.blocks.unwrap_or(config.blocks);
    if a.no_scale_input {
        if variant != Variant::As {
            bail!("--no-scale-input: only IMDN_AS (--variant as) has a scale input");
        }
        config.scale_input = false;
    }
    let mut o = TrainOptions::new(config, a.data, a.out);
    o.steps = a.steps;
    o.patch = a.patch;
    o.batch = a.batch;
    o.lr = a.lr;
    o.halve_every = a.halve_every;
    o.min_detail = a.min_detail;
    o.loss =
        Loss::parse(&a.loss).with_context(|| format!("unknown loss {:?}: use l1 or l2", a.loss))?;
    o.seed = a.seed;
    o.init_from = a.init_from;
    o.val = a.val;
    o.val_every = a.val_every;
    o.checkpoint_every = a.checkpoint_every;
    o.keep = a.keep;
    o.ema = a.ema;
    o.resume = a.resume;
    o.export = a.export;
    o.log_every = a.log_every;
    o.progress = true;
    o.time_limit = match a.time_limit {
        Some(s) if !(s.is_finite() && s >= 0.0) => bail!("--time-limit {s}: give seconds ≥ 0"),
        s => s.map(std::time::Duration::from_secs_f64),
    };
    o.device = parse_device(&a.device)?.open()?;
    let s = train(&o)?;
    println!(
        "{}",
        serde_json::json!({
            "step": s.step,
            "start_step": s.start_step,
            "final_loss": s.losses.last(),
            "checkpoint": s.checkpoint.display().to_string(),
            "weights": s.export.display().to_string(),
            "elapsed_s": s.elapsed_s,
            "validation": s.validations.last().map(|v| v.scores.iter()
                .map(|(sc, p, b)| serde_json::json!({"scale": sc, "psnr_y": p, "bicubic_psnr_y": b}))
                .collect::<Vec<_>>()),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_option_is_the_one_we_set() {
        // mimalloc 3 documents purge_delay's default as 1000 ms; a renumbered enum would make
        // MI_OPTION_PURGE_DELAY name another option with another default.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an allocator option.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
    }
}
