//! Shared by the integration tests: where the verification data lives, and the policy when it
//! is missing (fail under CI, skip with a message elsewhere).
#![allow(dead_code)]

use std::path::PathBuf;

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
