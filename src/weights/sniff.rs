//! Recognising a weights file from its first bytes, whatever its extension.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::WeightsError;
use super::legacy::{self, Magic};

/// The weights formats [`super::load`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Hugging Face safetensors.
    Safetensors,
    /// `torch.save` before PyTorch 1.6 (or with `_use_new_zipfile_serialization=False`).
    TorchLegacy,
    /// `torch.save` since PyTorch 1.6: a zip archive holding `data.pkl` and the storages.
    TorchZip,
}

/// Enough bytes to tell the formats apart.
const HEAD_LEN: u64 = 64;

/// The first bytes of the file (fewer when the file is shorter).
pub(crate) fn read_head(path: &Path) -> Result<Vec<u8>, WeightsError> {
    let file = File::open(path).map_err(|e| WeightsError::io(path, e))?;
    let mut head = Vec::new();
    file.take(HEAD_LEN)
        .read_to_end(&mut head)
        .map_err(|e| WeightsError::io(path, e))?;
    Ok(head)
}

pub(crate) fn detect(path: &Path, head: &[u8]) -> Result<Format, WeightsError> {
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Format::TorchZip);
    }
    if legacy::magic(head) != Magic::Absent {
        return Ok(Format::TorchLegacy);
    }
    if looks_like_safetensors(head) {
        return Ok(Format::Safetensors);
    }
    Err(WeightsError::UnknownFormat {
        path: path.to_owned(),
        what: describe_foreign(head),
    })
}

/// A little-endian u64 header length, then the JSON header's opening brace.
fn looks_like_safetensors(head: &[u8]) -> bool {
    head.get(8) == Some(&b'{')
}

/// Names what the file seems to be instead, for the error message.
fn describe_foreign(head: &[u8]) -> String {
    const KNOWN: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x1f\x8b", "gzip data"),
        (b"\x93NUMPY", "a NumPy .npy array"),
        (b"PK", "a zip archive without a local file header"),
        (b"\x80", "a pickle that is not a torch.save checkpoint"),
    ];
    if head.is_empty() {
        return "empty file".into();
    }
    if let Some((_, name)) = KNOWN.iter().find(|(magic, _)| head.starts_with(magic)) {
        return (*name).into();
    }
    if head.len() < 9 {
        return format!("only {} bytes", head.len());
    }
    if looks_like_text(head) {
        return "text".into();
    }
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised leading bytes {}", shown.join(" "))
}

fn looks_like_text(head: &[u8]) -> bool {
    // A multi-byte UTF-8 character may be cut at the end of the head.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    valid
        && head
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\n' | b'\r' | b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(head: &[u8]) -> Result<Format, String> {
        detect(Path::new("x"), head).map_err(|e| e.to_string())
    }

    #[test]
    fn recognises_formats() {
        assert_eq!(format_of(b"PK\x03\x04rest"), Ok(Format::TorchZip));
        assert_eq!(
            format_of(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e\x80"),
            Ok(Format::TorchLegacy)
        );
        assert_eq!(
            format_of(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}"),
            Ok(Format::Safetensors)
        );
    }

    #[test]
    fn names_foreign_files() {
        let err = |head: &[u8]| format_of(head).err().unwrap_or_default();
        assert!(err(b"").contains("empty file"));
        assert!(err(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").contains("PNG"));
        assert!(err(b"hello, this is not a checkpoint\n").contains("text"));
        assert!(err(b"\x80\x04\x95").contains("pickle"));
    }
}
