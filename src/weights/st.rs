//! safetensors files: reading through the `safetensors` crate and candle's conversions,
//! writing f32 with sorted names and optional `__metadata__`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::Value as Json;

use super::{Tensors, WeightsError};

/// The safetensors crate refuses larger headers; so do we, before allocating one.
const MAX_HEADER: u64 = 100_000_000;

pub(crate) fn load(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|e| WeightsError::io(path, e))?;
    load_bytes(path, &bytes)
}

/// Parses safetensors held in memory; `path` names them in errors.
pub(crate) fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Tensor)>, WeightsError> {
    check_complete(path, bytes)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| st_error(path, e))?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if !is_float(view.dtype()) {
            continue;
        }
        let tensor = view
            .load(&Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| WeightsError::candle(path, format!("tensor {name:?}"), e))?;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

fn st_error(path: &Path, source: safetensors::SafeTensorError) -> WeightsError {
    WeightsError::Safetensors {
        path: path.to_owned(),
        source,
    }
}

fn truncated(path: &Path, what: String) -> WeightsError {
    WeightsError::Truncated {
        path: path.to_owned(),
        what,
    }
}

/// Tells a cut-off file apart from a malformed one, which the crate reports alike.
fn check_complete(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let header_len = header_len(path, bytes.get(..8))?;
    let available = bytes.len() as u64 - 8;
    if header_len > available {
        return Err(truncated(
            path,
            format!("the header needs {header_len} bytes, {available} follow"),
        ));
    }
    let Some(header) = bytes.get(8..8 + header_len as usize) else {
        return Ok(());
    };
    // A malformed header is left for the crate to report.
    let Ok(Json::Object(header)) = serde_json::from_slice::<Json>(header) else {
        return Ok(());
    };
    let data_len = available - header_len;
    let needed = data_end(&header);
    if needed > data_len {
        return Err(truncated(
            path,
            format!("the header describes {needed} bytes of tensor data, {data_len} follow"),
        ));
    }
    Ok(())
}

/// The little-endian u64 at the start of the file, within the crate's limit.
fn header_len(path: &Path, first8: Option<&[u8]>) -> Result<u64, WeightsError> {
    let Some(first8) = first8.and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return Err(truncated(
            path,
            "shorter than the 8-byte header length".into(),
        ));
    };
    let len = u64::from_le_bytes(first8);
    if len > MAX_HEADER {
        return Err(WeightsError::Invalid {
            path: path.to_owned(),
            msg: format!("safetensors header length {len} is implausible"),
        });
    }
    Ok(len)
}

/// The largest end offset any tensor in the header claims.
fn data_end(header: &serde_json::Map<String, Json>) -> u64 {
    header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, info)| info.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0)
}

/// The `__metadata__` map, reading only the header.
pub(crate) fn load_metadata(path: &Path) -> Result<HashMap<String, String>, WeightsError> {
    let header = read_header(path)?;
    let invalid = |msg: String| WeightsError::Invalid {
        path: path.to_owned(),
        msg,
    };
    let Json::Object(header) = serde_json::from_slice::<Json>(&header)
        .map_err(|e| invalid(format!("safetensors header is not JSON: {e}")))?
    else {
        return Err(invalid("safetensors header is not a JSON object".into()));
    };
    let Some(metadata) = header.get("__metadata__") else {
        return Ok(HashMap::new());
    };
    let Json::Object(metadata) = metadata else {
        return Err(invalid("`__metadata__` is not an object".into()));
    };
    metadata
        .iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(invalid(format!("metadata value for {k:?} is not a string"))),
        })
        .collect()
}

fn read_header(path: &Path) -> Result<Vec<u8>, WeightsError> {
    let io = |e| WeightsError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut first8 = Vec::with_capacity(8);
    (&mut file).take(8).read_to_end(&mut first8).map_err(io)?;
    let len = header_len(path, Some(&first8))?;
    if len > file_len.saturating_sub(8) {
        return Err(truncated(path, format!("the header needs {len} bytes")));
    }
    let mut header = Vec::new();
    file.take(len).read_to_end(&mut header).map_err(io)?;
    Ok(header)
}

pub(crate) fn save(
    tensors: &Tensors,
    metadata: Option<&HashMap<String, String>>,
    path: &Path,
) -> Result<(), WeightsError> {
    let mut entries: Vec<(&String, &Tensor)> = tensors.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let flat = entries
        .into_iter()
        .map(|(name, t)| Ok((name.as_str(), f32_le_bytes(path, name, t)?)))
        .collect::<Result<Vec<_>, WeightsError>>()?;
    let views = flat
        .iter()
        .map(|(name, (shape, bytes))| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|view| (*name, view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| st_error(path, e))?;
    let buffer = safetensors::serialize(views, metadata.cloned()).map_err(|e| st_error(path, e))?;
    write_atomically(path, &buffer)
}

/// Shape and little-endian f32 bytes of a tensor, whatever its dtype and device.
fn f32_le_bytes(
    path: &Path,
    name: &str,
    tensor: &Tensor,
) -> Result<(Vec<usize>, Vec<u8>), WeightsError> {
    let values = tensor
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| WeightsError::candle(path, format!("tensor {name:?}"), e))?;
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((tensor.dims().to_vec(), bytes))
}

/// Writes a sibling temporary file and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let temp = temp_sibling(path)?;
    let result = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(WeightsError::io(path, e));
    }
    Ok(())
}

fn temp_sibling(path: &Path) -> Result<PathBuf, WeightsError> {
    let Some(name) = path.file_name() else {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path");
        return Err(WeightsError::io(path, e));
    };
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    // Unique per process and per call, so concurrent saves never share a temporary.
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    temp.push(format!(".tmp{}-{n}", std::process::id()));
    Ok(path.with_file_name(temp))
}
