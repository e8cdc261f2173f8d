//! `imdn`: upscale images, compare them with bicubic, convert checkpoints, evaluate on a benchmark set, describe weights,
//! time the network, train. One module per subcommand; `common` holds what they share.

mod bench;
mod calibrate;
mod common;
mod compare;
mod convert;
mod eval;
mod info;
mod train;
mod upscale;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use bench::BenchArgs;
use calibrate::CalibrateArgs;
use compare::CompareArgs;
use eval::EvalArgs;
use train::TrainArgs;
use upscale::UpscaleArgs;

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
    /// A before/after picture: bicubic and the network side by side, the most detailed
    /// region enlarged below.
    Compare(CompareArgs),
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
    /// Record the input ranges of IMDN_RTC's 8-bit convs over images and write them with
    /// the weights (for `--precision int8`).
    Calibrate(CalibrateArgs),
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
        Command::Upscale(a) => upscale::upscale(a),
        Command::Compare(a) => compare::compare(a),
        Command::Convert { input, output } => convert::convert(&input, &output),
        Command::Eval(a) => eval::eval(a),
        Command::Info { weights } => match weights {
            Some(w) => info::info(&w),
            None => info::list_shipped(),
        },
        Command::Bench(a) => bench::bench(a, threads),
        Command::Train(a) => train::train(a),
        Command::Calibrate(a) => calibrate::calibrate(a),
    }
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
