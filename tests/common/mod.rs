//! Shared by the integration tests: where the verification data lives, and the policy when it
//! is missing (fail under CI, skip with a message elsewhere); temp files; the `.npy` reader and
//! writer ([`npy`]); `kernels.cu` on the host ([`host_kernels`]).
// Each test file uses a subset of these helpers: the rest would be dead code in its crate.
#![allow(dead_code)]

pub mod host_kernels;
pub mod npy;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `../shared/reference/<rel>` next to the project, if present. When absent: panics if the
/// environment has `CI` set, else prints why the test is skipped and returns `None`.
pub fn reference(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference")).join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "reference data {} is missing (required when CI is set)",
            p.display()
        );
    }
    eprintln!("skipped: reference data {} is missing", p.display());
    None
}

/// A unique path in the temp dir for this test process.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("imdn-test-{}-{name}", std::process::id()))
}

/// A file in the temp dir, unique per process and call, removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self(temp_path(&format!("{n}-{tag}")))
    }

    pub fn with_bytes(tag: &str, bytes: &[u8]) -> Self {
        let file = Self::new(tag);
        std::fs::write(&file.0, bytes).unwrap();
        file
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The largest |a − b| over two equally long outputs (0 for empty ones).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "outputs of different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}
