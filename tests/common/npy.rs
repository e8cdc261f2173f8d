//! Minimal `.npy` support for the parity tests: little-endian f32 (`<f4`), C order, format
//! versions 1 to 3. Test-only (the library has no use for it): `mod common` brings it to the
//! integration tests as `common::npy`.

use std::path::{Path, PathBuf};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy pads the preamble (magic, version, header length, header) to a multiple of this.
const ALIGN: usize = 64;

/// Why a `.npy` file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a .npy file (bad magic)", path.display())]
    NotNpy { path: PathBuf },
    #[error("{}: truncated: {what}", path.display())]
    Truncated { path: PathBuf, what: String },
    #[error("{}: bad .npy header: {msg}", path.display())]
    Header { path: PathBuf, msg: String },
    #[error("{}: unsupported .npy: {what} (only little-endian f32 in C order)", path.display())]
    Unsupported { path: PathBuf, what: String },
    #[error("{}: {len} values do not fill shape {shape:?}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        shape: Vec<usize>,
        len: usize,
    },
}

impl From<NpyError> for imdn::Error {
    fn from(e: NpyError) -> Self {
        match e {
            NpyError::Io { source, .. } => Self::Io(source),
            other => Self::InvalidInput(other.to_string()),
        }
    }
}

/// Problems found in memory, before the path is attached.
enum Problem {
    NotNpy,
    Truncated(String),
    Header(String),
    Unsupported(String),
    ShapeMismatch(Vec<usize>, usize),
}

impl Problem {
    fn at(self, path: &Path) -> NpyError {
        let path = path.to_owned();
        match self {
            Self::NotNpy => NpyError::NotNpy { path },
            Self::Truncated(what) => NpyError::Truncated { path, what },
            Self::Header(msg) => NpyError::Header { path, msg },
            Self::Unsupported(what) => NpyError::Unsupported { path, what },
            Self::ShapeMismatch(shape, len) => NpyError::ShapeMismatch { path, shape, len },
        }
    }
}

/// Reads a `<f4` C-order array: its shape (empty for a scalar) and its values in row-major order.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&bytes).map_err(|p| p.at(path))
}

/// Writes `data` with `shape` as a version 1 `.npy` file (version 2 if the header needs it).
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if numel != Some(data.len()) {
        return Err(Problem::ShapeMismatch(shape.to_vec(), data.len()).at(path));
    }
    let mut bytes = preamble(shape);
    bytes.reserve(data.len() * 4);
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).map_err(|source| NpyError::Io {
        path: path.to_owned(),
        source,
    })
}

fn parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), Problem> {
    let (header, data) = split_header(bytes)?;
    let shape = parse_header(header)?;
    let values = decode_f32(&shape, data)?;
    Ok((shape, values))
}

/// Checks the magic and version, and splits the header text from the data.
fn split_header(bytes: &[u8]) -> Result<(&str, &[u8]), Problem> {
    let cut = |what: &str| Problem::Truncated(format!("the file ends inside the {what}"));
    if !bytes.starts_with(MAGIC) {
        return match MAGIC.starts_with(bytes) {
            true => Err(cut("magic string")),
            false => Err(Problem::NotNpy),
        };
    }
    let rest = bytes.get(MAGIC.len()..).unwrap_or_default();
    let (major, rest) = rest.split_first().ok_or_else(|| cut("version"))?;
    let (_minor, rest) = rest.split_first().ok_or_else(|| cut("version"))?;
    let (header_len, rest) = match major {
        1 => split_len::<2>(rest),
        2 | 3 => split_len::<4>(rest),
        _ => return Err(Problem::Unsupported(format!("format version {major}"))),
    }
    .ok_or_else(|| cut("header length"))?;
    let header = rest.get(..header_len).ok_or_else(|| cut("header"))?;
    let data = rest.get(header_len..).unwrap_or_default();
    // Version 3 only allows UTF-8 where version 1 and 2 use latin-1: ours must be ASCII anyway.
    let header = std::str::from_utf8(header)
        .map_err(|_| Problem::Header("the header is not text".into()))?;
    Ok((header, data))
}

/// A little-endian length of N bytes, and what follows it.
fn split_len<const N: usize>(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<N>()?;
    let mut wide = [0u8; 8];
    for (dst, src) in wide.iter_mut().zip(len) {
        *dst = *src;
    }
    Some((usize::try_from(u64::from_le_bytes(wide)).ok()?, rest))
}

/// The header is a Python dict literal: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(header: &str) -> Result<Vec<usize>, Problem> {
    let entries = header_entries(header)?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Problem::Header(format!("no {key:?} entry")))
    };
    let descr = get("descr")?;
    if descr != "'<f4'" {
        return Err(Problem::Unsupported(format!("dtype {descr}")));
    }
    match get("fortran_order")? {
        "False" => {}
        "True" => return Err(Problem::Unsupported("Fortran order".into())),
        other => return Err(Problem::Header(format!("fortran_order is {other}"))),
    }
    parse_shape(get("shape")?)
}

/// Splits `{k: v, k: v, }` at top-level commas (the shape tuple has commas of its own).
fn header_entries(header: &str) -> Result<Vec<(String, String)>, Problem> {
    let inner = header
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| Problem::Header(format!("not a dict: {header:?}")))?;
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                entries.push(inner.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(inner.get(start..).unwrap_or_default());
    entries
        .into_iter()
        .filter(|e| !e.trim().is_empty())
        .map(parse_entry)
        .collect()
}

fn parse_entry(entry: &str) -> Result<(String, String), Problem> {
    let (key, value) = entry
        .split_once(':')
        .ok_or_else(|| Problem::Header(format!("entry without a colon: {entry:?}")))?;
    let key = key.trim().trim_matches(|c| c == '\'' || c == '"');
    Ok((key.to_owned(), value.trim().to_owned()))
}

/// `()`, `(5,)`, `(1, 3, 128, 128)`.
fn parse_shape(shape: &str) -> Result<Vec<usize>, Problem> {
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| Problem::Header(format!("shape is not a tuple: {shape}")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| Problem::Header(format!("bad dimension {d:?}")))
        })
        .collect()
}

fn decode_f32(shape: &[usize], data: &[u8]) -> Result<Vec<f32>, Problem> {
    let needed = shape
        .iter()
        .try_fold(4usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Problem::Header(format!("shape {shape:?} overflows")))?;
    if data.len() < needed {
        return Err(Problem::Truncated(format!(
            "shape {shape:?} needs {needed} data bytes, {} follow the header",
            data.len()
        )));
    }
    if data.len() > needed {
        return Err(Problem::Header(format!(
            "{} bytes follow the data of shape {shape:?}",
            data.len() - needed
        )));
    }
    Ok(data
        .chunks_exact(4)
        .filter_map(|c| c.try_into().ok().map(f32::from_le_bytes))
        .collect())
}

/// Magic, version, header length and the space-padded header, as numpy writes them.
fn preamble(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims.join("")),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Version 1 stores the (padded) header length in 2 bytes, version 2 in 4.
    let (version, len_bytes) = if header.len() + ALIGN + 10 <= usize::from(u16::MAX) {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    let fixed = MAGIC.len() + 2 + len_bytes;
    let padded = (fixed + header.len() + 1).div_ceil(ALIGN) * ALIGN;
    header.extend(std::iter::repeat_n(' ', padded - fixed - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(padded);
    out.extend_from_slice(MAGIC);
    out.extend([version, 0]);
    let len = header.len() as u64;
    out.extend_from_slice(&len.to_le_bytes()[..len_bytes]);
    out.extend_from_slice(header.as_bytes());
    out
}
