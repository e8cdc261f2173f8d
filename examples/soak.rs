//! Long-run reliability checks of `imdnupscale` with the deterministic test backends (no
//! weights needed); `tests/reliability.rs` runs short versions of the same cases in CI.
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example soak -- [--frames 10000] [--cycles 100] \
//!     [--seeks 100] [--fuzz 1000] [--large 4] [--seed N]
//! ```
//!
//! - frames: `--frames` frames at each depth (0, 1, 2, 8): every frame out once, in order, with
//!   its input PTS; RSS sampled every 500 frames, growth after a 500-frame warm-up < 5 MB.
//! - cycles: NULL → PLAYING → NULL with frames flowing (half to EOS, half stopped with frames
//!   in flight): thread and fd counts before (after a warm-up) and after, no worker thread left.
//! - seeks: flushing accurate seeks to random positions of an H.264 MP4: each completes
//!   within 5 s, no frame before the target after the flush, the last plays to EOS;
//!   completion max and median.
//! - fuzz: random formats, sizes (`--large` of them up to 4096×2304), padded strides, valid
//!   and invalid property values, settings refused at start, state changes: exact frame
//!   counts, output sizes and content; thread and fd counts before and after.
//!
//! One line per case; the exit code is 1 if any check failed (2 for bad arguments). A count of
//! 0 skips that case. The plugin is registered statically. The runs themselves are those of
//! the tests, from `tests/common` (one copy for both).

// the bus errors of the runs are read by tests/common: only `main_with` is used here
#[allow(dead_code)]
mod common;
#[path = "../plugin/tests/common/mod.rs"]
mod test_common;

use std::process::ExitCode;
use std::time::Duration;

use test_common::fuzz::fuzz_run;
use test_common::runs::{run_frames, state_cycles};
use test_common::seek::seek_storm;
use test_common::{Growth, WAIT};

const USAGE: &str = "usage: soak [--frames N] [--cycles N] [--seeks N] [--fuzz N] [--large N] \
[--seed N] [--model-path P]   (defaults 10000, 100, 100, 1000, 4, 1, test:nearest; 0 skips a \
case; --model-path shipped runs the frames case on the shipped IMDN_RTC ×2)";

struct Args {
    frames: u64,
    cycles: u64,
    seeks: u64,
    fuzz: u64,
    large: u64,
    seed: u64,
    /// The frames case's `model-path`; `None`: the shipped model (no property set).
    model_path: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        frames: 10_000,
        cycles: 100,
        seeks: 100,
        fuzz: 1000,
        large: 4,
        seed: 1,
        model_path: Some("test:nearest".into()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.into());
        }
        let v = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        if arg == "--model-path" {
            a.model_path = (v != "shipped").then_some(v);
            continue;
        }
        let n: u64 = v
            .parse()
            .map_err(|_| format!("{arg} {v}: expected a number"))?;
        match arg.as_str() {
            "--frames" => a.frames = n,
            "--cycles" => a.cycles = n,
            "--seeks" => a.seeks = n,
            "--fuzz" => a.fuzz = n,
            "--large" => a.large = n,
            "--seed" => a.seed = n,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `frames` frames at `depth`: every frame out once, in order, with its input PTS; RSS growth
/// after a 500-frame warm-up under 5 MB. Returns the summary line.
fn frames_at(
    depth: i32,
    format: &str,
    frames: u64,
    model_path: Option<&str>,
) -> Result<String, String> {
    let eos_within = WAIT + Duration::from_millis(20 * frames);
    let run = run_frames(format, (64, 36), depth, frames, model_path, eos_within)?;
    run.check(frames)?;
    let (first, last) = run.rss_span_kb();
    let growth_mb = run.rss_growth_kb() as f64 / 1024.0;
    let line = format!(
        "frames depth={depth} {format}: in {} out {}, in order with their input PTS; \
         RSS {first} → {last} KiB, growth {growth_mb:.2} MB after a 500-frame warm-up",
        run.ins.seen, run.outs.seen
    );
    if growth_mb >= 5.0 {
        return Err(format!("{line}: ≥ 5 MB"));
    }
    Ok(line)
}

/// NULL → PLAYING → NULL with frames flowing (half to EOS, half stopped with frames in flight).
fn cycles(n: u64) -> Result<String, String> {
    let run = state_cycles(n)?;
    let line = format!(
        "cycles: {n} NULL→PLAYING→NULL in {:.1} s, {}, no worker thread at NULL",
        run.took.as_secs_f64(),
        Growth(run.before, run.after)
    );
    run.before
        .no_growth_to(run.after)
        .map_err(|e| format!("{line}: {e}"))?;
    Ok(line)
}

/// Flushing accurate seeks to random positions of an H.264 MP4.
fn seeks(n: u64, seed: u64) -> Result<String, String> {
    let times = seek_storm(n, seed)?;
    Ok(format!(
        "seeks: {n} flushing accurate seeks, completion median {:.1} ms, max {:.1} ms, \
         no stale frame",
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap_or(&Duration::ZERO))
    ))
}

/// Random formats, sizes, layouts, property values and state changes.
fn fuzz(n: u64, large: u64, seed: u64) -> Result<String, String> {
    let run = fuzz_run(n, seed, large)?;
    let st = &run.stats;
    let line = format!(
        "fuzz: {} cases run in {:.1} s, frames in {} out {} ({} restarts discarding frames in \
         flight, {} large), {} invalid property values refused by their ParamSpecs, {}",
        st.cases,
        run.took.as_secs_f64(),
        st.frames_in,
        st.frames_out,
        st.restarts,
        st.large,
        st.invalid_values,
        Growth(run.before, run.after)
    );
    run.before
        .no_growth_to(run.after)
        .map_err(|e| format!("{line}: {e}"))?;
    Ok(line)
}

// ---------------------------------------------------------------------------------------------

fn run(a: Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstimdn::plugin_register_static().map_err(|e| e.to_string())?;
    // one line per case, as it finishes
    let mut failed = Vec::new();
    let mut report = |name: &str, r: Result<String, String>| match r {
        Ok(line) => println!("ok   {line}"),
        Err(e) => {
            println!("FAIL {name}: {e}");
            failed.push(name.to_string());
        }
    };
    if a.frames > 0 {
        for (depth, format) in [(0, "RGB"), (1, "I420"), (2, "NV12"), (8, "BGRA")] {
            report(
                &format!("frames depth={depth}"),
                frames_at(depth, format, a.frames, a.model_path.as_deref()),
            );
        }
    }
    if a.cycles > 0 {
        report("cycles", cycles(a.cycles));
    }
    if a.seeks > 0 {
        report("seeks", seeks(a.seeks, a.seed));
    }
    if a.fuzz > 0 {
        report("fuzz", fuzz(a.fuzz, a.large, a.seed));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

fn main() -> ExitCode {
    common::main_with("soak", parse_args, run)
}
