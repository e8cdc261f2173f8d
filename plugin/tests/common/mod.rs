//! One copy of the helpers that the element's integration tests (`mod common;`) and
//! `examples/soak.rs` (`#[path = "../tests/common/mod.rs"]`) share. Cargo builds only the files
//! directly in `tests/` as test targets: this folder is no test of its own.
//!
//! - here: plugin registration, locks, temp files, weights files, process counts (threads,
//!   fds, RSS) and waiting;
//! - [`rng`]: the seeded generator of every random case;
//! - [`pipeline`]: pipelines taken to NULL when dropped, bounded waits on the bus;
//! - [`frames`]: test frames of every format (padded layouts too) and their expected upscale;
//! - [`runs`]: frames through the element at a depth, NULL ↔ PLAYING cycles;
//! - [`seek`]: the seek storm;
//! - [`fuzz`]: fuzzed formats, sizes, layouts, properties and states.
// Each includer uses a subset of these helpers: the rest would be dead code in its crate.
#![allow(dead_code)]

pub mod frames;
pub mod fuzz;
pub mod pipeline;
pub mod rng;
pub mod runs;
pub mod seek;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// Bound on any single wait for the pipeline (generous: the machine may be loaded).
pub const WAIT: Duration = Duration::from_secs(20);
/// The frame duration of a 30/1 stream.
pub const FRAME_30: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);

/// `gst::init` and the plugin, registered statically, once per process.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst::init");
        gstimdn::plugin_register_static().expect("register the imdn plugin");
    });
}

/// A lock that survives a panicking holder (a failed test must not fail the next one).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A per-process path in the temp directory, named after the test file (tests may run in
/// parallel processes).
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "gstimdn-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ))
}

/// Removes the path (a file or a folder) when dropped.
pub struct TempPath(pub PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Random-init weights of `config` in a safetensors file at `temp_path(name)`.
pub fn weights(name: &str, config: imdn::model::Config) -> PathBuf {
    let path = temp_path(name);
    let tensors = imdn::model::init_tensors(&config, &candle_core::Device::Cpu).unwrap();
    imdn::weights::save_safetensors(&tensors, &path).unwrap();
    path
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Open file descriptors of this process (the directory handle itself included, always 1).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Threads of the element's worker (`imdn-pre`, `imdn-infer`, `imdn-post`) alive now.
pub fn worker_threads() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|name| name.starts_with("imdn-"))
        .count()
}

/// Resident set size in KiB.
pub fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Threads and file descriptors of this process at one moment, to compare before and after
/// a run.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub threads: usize,
    pub fds: usize,
}

impl Counts {
    pub fn now() -> Counts {
        Counts {
            threads: thread_count(),
            fds: fd_count(),
        }
    }

    /// `Err` if the fds grew since `self`, or the threads by more than 2: GStreamer's streaming
    /// threads come from a shared GThreadPool, which keeps up to two unused threads around and
    /// ends idle ones after a while. (The worker's own threads are checked exactly, with
    /// [`worker_threads`].)
    pub fn no_growth_to(self, after: Counts) -> Result<(), String> {
        if after.threads > self.threads + 2 || after.fds > self.fds {
            return Err(format!("grew: {}", Growth(self, after)));
        }
        Ok(())
    }
}

/// "threads a → b, fds c → d".
pub struct Growth(pub Counts, pub Counts);

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Growth(a, b) = self;
        write!(
            f,
            "threads {} → {}, fds {} → {}",
            a.threads, b.threads, a.fds, b.fds
        )
    }
}

/// Polls `cond` every 2 ms until it holds or `timeout` passes.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
