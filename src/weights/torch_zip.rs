//! PyTorch's zip format (`torch.save` since 1.6), read with candle's `pickle::PthTensors`.
//!
//! candle's reader can panic on malformed files (it removes tuple items by index and shifts
//! integers by counts read from the file), so [`super::load`] runs this behind
//! `catch_unwind`. It also allocates each tensor from the shape in the pickle before reading
//! the data, so shapes are checked against the file's size first.

use std::path::Path;

use candle_core::pickle::{PthTensors, TensorInfo};
use candle_core::{DType, Tensor};

use super::WeightsError;
use crate::names::STATE_DICT_WRAPPERS;

pub(crate) fn load(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let file_len = std::fs::metadata(path)
        .map_err(|e| WeightsError::io(path, e))?
        .len();
    let pth = open(path)?;
    let mut infos: Vec<&TensorInfo> = pth
        .tensor_infos()
        .values()
        .filter(|info| is_float(info.dtype))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
        .into_iter()
        .map(|info| read_tensor(path, &pth, info, file_len))
        .collect()
}

/// The first place that holds tensors: the top, or under one of [`STATE_DICT_WRAPPERS`]. A missing key is an error in
/// candle, so only the first attempt's error is reported.
fn open(path: &Path) -> Result<PthTensors, WeightsError> {
    let context = "PyTorch zip checkpoint";
    let top = PthTensors::new(path, None).map_err(|e| WeightsError::candle(path, context, e))?;
    if !top.tensor_infos().is_empty() {
        return Ok(top);
    }
    let nested = STATE_DICT_WRAPPERS
        .iter()
        .filter_map(|key| PthTensors::new(path, Some(key)).ok())
        .find(|pth| !pth.tensor_infos().is_empty());
    Ok(nested.unwrap_or(top))
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
}

fn read_tensor(
    path: &Path,
    pth: &PthTensors,
    info: &TensorInfo,
    file_len: u64,
) -> Result<(String, Tensor), WeightsError> {
    check_fits(path, info, file_len)?;
    let context = || format!("tensor {:?}", info.name);
    let tensor = pth
        .get(&info.name)
        .and_then(|t| t.map(|t| t.to_dtype(DType::F32)).transpose())
        .map_err(|e| WeightsError::candle(path, context(), e))?;
    let Some(tensor) = tensor else {
        return Err(WeightsError::Invalid {
            path: path.to_owned(),
            msg: format!("{} vanished while reading", context()),
        });
    };
    Ok((info.name.clone(), tensor))
}

/// torch stores archive entries uncompressed, so no tensor can need more bytes than the file
/// has; a larger shape is corruption, and would make candle allocate that much up front.
fn check_fits(path: &Path, info: &TensorInfo, file_len: u64) -> Result<(), WeightsError> {
    let needed = info
        .layout
        .dims()
        .iter()
        .try_fold(info.dtype.size_in_bytes(), |acc, &d| acc.checked_mul(d))
        .and_then(|bytes| bytes.checked_add(info.layout.start_offset()))
        .and_then(|bytes| u64::try_from(bytes).ok());
    match needed {
        Some(needed) if needed <= file_len => Ok(()),
        _ => Err(WeightsError::Invalid {
            path: path.to_owned(),
            msg: format!(
                "tensor {:?} of shape {:?} cannot fit in a {file_len}-byte file",
                info.name,
                info.layout.dims()
            ),
        }),
    }
}
