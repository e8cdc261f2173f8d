//! The CPU's cache sizes, which size the streamed executor's parts (`stream.rs`).

use std::sync::OnceLock;

/// Bytes of the last-level cache (the largest level of data or unified cache the first CPU
/// lists in sysfs), where the system tells.
pub fn last_level() -> Option<usize> {
    static SIZE: OnceLock<Option<usize>> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
        let read = |index: &std::path::Path, what: &str| {
            std::fs::read_to_string(index.join(what)).map(|s| s.trim().to_owned())
        };
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("index"))
            .filter_map(|e| {
                let index = e.path();
                let kind = read(&index, "type").ok()?;
                if kind == "Instruction" {
                    return None;
                }
                let level: u32 = read(&index, "level").ok()?.parse().ok()?;
                Some((level, parse_size(&read(&index, "size").ok()?)?))
            })
            .max()
            .map(|(_, size)| size)
    })
}

/// A sysfs cache size: "32768K", "1M", or bytes.
fn parse_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits.parse().ok()?;
    match unit {
        "" => Some(n),
        "K" => Some(n << 10),
        "M" => Some(n << 20),
        "G" => Some(n << 30),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size(""), None);
        // where sysfs has it, a last level of at least 64 KB
        if let Some(size) = last_level() {
            assert!(size >= 64 << 10, "{size}");
        }
    }
}
