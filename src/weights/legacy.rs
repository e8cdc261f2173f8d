//! PyTorch's legacy `torch.save` format (before 1.6, or `_use_new_zipfile_serialization=False`).
//!
//! Layout: five pickles back to back — the magic number, the protocol version (1001), the
//! system info (byte order, type sizes), the saved object (a state dict whose tensors point at
//! storages through persistent ids) and the list of storage keys — then, for each key in that
//! list, an i64 element count and the storage's raw little-endian elements.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::cursor::Cursor;
use super::pickle::{self, Node, Obj};
use super::{Problem, WeightsError};
use crate::names::STATE_DICT_WRAPPERS;

/// The magic number 0x1950a86a20f9469cfc6c as pickle's LONG1 opcode, then STOP. It is checked
/// as raw bytes: candle's pickle reader mis-decodes (and in debug builds panics on) 10-byte
/// LONG1, and ours refuses integers wider than 64 bits.
const MAGIC_BODY: [u8; 13] = [
    0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
];
const PROTOCOL_VERSION: i64 = 1001;
/// A strided view may repeat storage elements (stride 0), but not absurdly: this bounds the
/// memory a small file can make us allocate.
const MAX_EXPANSION: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Magic {
    Absent,
    /// The bytes match as far as they go, but end inside the magic pickle.
    Partial,
    /// The magic pickle is complete and this many bytes long.
    Complete(usize),
}

/// Whether `bytes` start with the magic-number pickle (`pickle_protocol` 2 to 5).
pub(crate) fn magic(bytes: &[u8]) -> Magic {
    let Some(&proto) = bytes.get(1) else {
        return Magic::Absent;
    };
    if !(2..=5).contains(&proto) {
        return Magic::Absent;
    }
    let pattern = magic_pattern(proto);
    let matches = pattern
        .iter()
        .zip(bytes)
        .all(|(expected, byte)| expected.is_none_or(|e| e == *byte));
    // Claim a cut-off file only once part of the number itself has matched.
    let partial_min = pattern.len() - MAGIC_BODY.len() + 2;
    if matches && bytes.len() >= pattern.len() {
        Magic::Complete(pattern.len())
    } else if matches && bytes.len() >= partial_min {
        Magic::Partial
    } else {
        Magic::Absent
    }
}

/// PROTO, then (protocol 4 and up) a FRAME opcode with any length, then the number and STOP.
fn magic_pattern(proto: u8) -> Vec<Option<u8>> {
    let mut pattern = vec![Some(0x80), Some(proto)];
    if proto >= 4 {
        pattern.push(Some(0x95));
        pattern.extend([None; 8]);
    }
    pattern.extend(MAGIC_BODY.iter().copied().map(Some));
    pattern
}

pub(crate) fn load(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|e| WeightsError::io(path, e))?;
    parse(&bytes).map_err(|p| p.at(path))
}

/// Parses a whole legacy checkpoint held in memory.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, Problem> {
    let mut cur = Cursor::new(bytes);
    skip_magic(&mut cur, bytes)?;
    let version = read_pickle(&mut cur, "protocol version pickle")?;
    check_protocol_version(&version)?;
    let sys_info = read_pickle(&mut cur, "system info pickle")?;
    check_sys_info(&sys_info)?;
    let root = read_pickle(&mut cur, "state dict pickle")?;
    let keys = read_pickle(&mut cur, "storage key pickle")?;
    let kinds = storage_kinds(&root)?;
    let storages = read_storages(&mut cur, &keys, &kinds)?;
    collect_tensors(select_state_dict(&root)?, &storages)
}

fn read_pickle(cur: &mut Cursor<'_>, what: &str) -> Result<Obj, Problem> {
    pickle::read(cur).map_err(|p| p.context(what))
}

fn skip_magic(cur: &mut Cursor<'_>, bytes: &[u8]) -> Result<(), Problem> {
    match magic(bytes) {
        Magic::Complete(len) => {
            cur.take(len)?;
            Ok(())
        }
        Magic::Partial => Err(Problem::Truncated(
            "the file ends inside the magic number".into(),
        )),
        Magic::Absent => Err(Problem::Invalid(
            "not a legacy PyTorch checkpoint (bad magic number)".into(),
        )),
    }
}

fn check_protocol_version(obj: &Node) -> Result<(), Problem> {
    match obj.as_int() {
        Some(PROTOCOL_VERSION) => Ok(()),
        _ => Err(Problem::Unsupported(format!(
            "legacy protocol version {} (expected {PROTOCOL_VERSION})",
            obj.describe()
        ))),
    }
}

/// The storages are raw bytes in the writer's byte order; we read little-endian only.
fn check_sys_info(obj: &Node) -> Result<(), Problem> {
    match obj.get("little_endian").and_then(Node::as_bool) {
        Some(true) => Ok(()),
        Some(false) => Err(Problem::Unsupported("big-endian checkpoint".into())),
        None => Err(Problem::Invalid(format!(
            "system info pickle: expected a dict with `little_endian`, found {}",
            obj.describe()
        ))),
    }
}

/// What a storage class holds: element size, and the dtype when it is a float type
/// (other storages are read past but their tensors are left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    elem_size: usize,
    dtype: Option<DType>,
}

fn storage_kind(class: &str) -> Option<Kind> {
    let (elem_size, dtype) = match class {
        "FloatStorage" => (4, Some(DType::F32)),
        "DoubleStorage" => (8, Some(DType::F64)),
        "HalfStorage" => (2, Some(DType::F16)),
        "BFloat16Storage" => (2, Some(DType::BF16)),
        "LongStorage" => (8, None),
        "IntStorage" => (4, None),
        "ShortStorage" => (2, None),
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QInt8Storage" | "QUInt8Storage" => {
            (1, None)
        }
        "QInt32Storage" => (4, None),
        "ComplexFloatStorage" => (8, None),
        "ComplexDoubleStorage" => (16, None),
        _ => return None,
    };
    Some(Kind { elem_size, dtype })
}

/// A persistent id `('storage', torch.FloatStorage, key, location, numel, view)`, where
/// `view` is None or `(view_key, offset, numel)` for a slice of the storage.
struct StorageId<'a> {
    key: &'a str,
    kind: Kind,
    numel: usize,
    view: Option<(usize, usize)>,
}

fn parse_storage_id(id: &Node) -> Result<StorageId<'_>, Problem> {
    let bad = || Problem::Invalid(format!("bad storage persistent id ({})", id.describe()));
    let Some([tag, class, key, _location, numel, rest @ ..]) = id.as_seq() else {
        return Err(bad());
    };
    if tag.as_str() != Some("storage") {
        return Err(bad());
    }
    let pickle::Value::Global { name, .. } = class.value() else {
        return Err(bad());
    };
    let kind =
        storage_kind(name).ok_or_else(|| Problem::Unsupported(format!("storage type {name}")))?;
    Ok(StorageId {
        key: key.as_str().ok_or_else(bad)?,
        kind,
        numel: to_usize(numel).ok_or_else(bad)?,
        view: parse_view(rest.first()).ok_or_else(bad)?,
    })
}

/// The optional view metadata; the outer None means malformed.
fn parse_view(view: Option<&Obj>) -> Option<Option<(usize, usize)>> {
    let Some(view) = view else {
        return Some(None);
    };
    if let pickle::Value::None = view.value() {
        return Some(None);
    }
    let [_view_key, offset, numel] = view.as_seq()? else {
        return None;
    };
    Some(Some((to_usize(offset)?, to_usize(numel)?)))
}

fn to_usize(obj: &Node) -> Option<usize> {
    obj.as_int().and_then(|i| usize::try_from(i).ok())
}

/// Storage key → kind and element count, for every storage the pickle references anywhere
/// (the storage section holds them all, including those of entries we skip, and needs their
/// element sizes to be walked). Shared nodes are visited once.
fn storage_kinds(root: &Obj) -> Result<HashMap<&str, (Kind, usize)>, Problem> {
    let mut kinds = HashMap::new();
    let mut seen = HashSet::new();
    let mut todo: Vec<&Obj> = vec![root];
    while let Some(node) = todo.pop() {
        if !seen.insert(std::rc::Rc::as_ptr(node)) {
            continue;
        }
        if let Some(id) = node.as_persistent_id() {
            let id = parse_storage_id(id)?;
            let previous = kinds.insert(id.key, (id.kind, id.numel));
            if previous.is_some_and(|p| p != (id.kind, id.numel)) {
                return Err(Problem::Invalid(format!(
                    "storage {:?} is described twice, differently",
                    id.key
                )));
            }
        }
        todo.extend(node.children());
    }
    Ok(kinds)
}

struct Storage<'a> {
    kind: Kind,
    bytes: &'a [u8],
}

/// The storage section: for each listed key, an i64 element count and the elements.
fn read_storages<'a>(
    cur: &mut Cursor<'a>,
    keys: &Node,
    kinds: &HashMap<&str, (Kind, usize)>,
) -> Result<HashMap<String, Storage<'a>>, Problem> {
    let keys = keys.as_seq().ok_or_else(|| {
        Problem::Invalid(format!(
            "storage key pickle: expected a list, found {}",
            keys.describe()
        ))
    })?;
    let mut storages = HashMap::with_capacity(keys.len());
    for key in keys {
        let key = key.as_str().ok_or_else(|| {
            Problem::Invalid(format!("storage key {} is not a string", key.describe()))
        })?;
        let storage =
            read_storage(cur, key, kinds).map_err(|p| p.context(&format!("storage {key:?}")))?;
        if storages.insert(key.to_owned(), storage).is_some() {
            return Err(Problem::Invalid(format!("storage {key:?} is listed twice")));
        }
    }
    Ok(storages)
}

fn read_storage<'a>(
    cur: &mut Cursor<'a>,
    key: &str,
    kinds: &HashMap<&str, (Kind, usize)>,
) -> Result<Storage<'a>, Problem> {
    let Some(&(kind, numel)) = kinds.get(key) else {
        return Err(Problem::Invalid("listed, but no tensor uses it".into()));
    };
    let count = cur.i64_le()?;
    if usize::try_from(count).ok() != Some(numel) {
        return Err(Problem::Invalid(format!(
            "{count} elements in the data, {numel} in the pickle"
        )));
    }
    let len = numel
        .checked_mul(kind.elem_size)
        .ok_or_else(|| Problem::Invalid(format!("{numel} elements is too many")))?;
    Ok(Storage {
        kind,
        bytes: cur.take(len)?,
    })
}

/// The dict holding the tensors: the saved object itself, or a dict under a wrapper key
/// (`{'state_dict': ..., 'epoch': ...}`).
fn select_state_dict(root: &Node) -> Result<&[(Obj, Obj)], Problem> {
    let Some(items) = root.as_dict() else {
        return Err(Problem::Unsupported(format!(
            "the checkpoint holds a {}, not a state dict (save `model.state_dict()` instead)",
            root.describe()
        )));
    };
    let has_tensors = |items: &[(Obj, Obj)]| items.iter().any(|(_, v)| is_tensor(v));
    if has_tensors(items) {
        return Ok(items);
    }
    let inner = STATE_DICT_WRAPPERS
        .iter()
        .filter_map(|key| root.get(key).and_then(Node::as_dict))
        .find(|inner| has_tensors(inner));
    Ok(inner.unwrap_or(items))
}

fn is_tensor(node: &Node) -> bool {
    node.as_call().is_some_and(|(func, _)| {
        [
            "_rebuild_tensor_v2",
            "_rebuild_tensor",
            "_rebuild_parameter",
        ]
        .iter()
        .any(|name| func.is_global("torch._utils", name))
    })
}

fn collect_tensors(
    items: &[(Obj, Obj)],
    storages: &HashMap<String, Storage<'_>>,
) -> Result<Vec<(String, Tensor)>, Problem> {
    let mut tensors = Vec::with_capacity(items.len());
    for (key, value) in items {
        // Non-string keys cannot be parameter names.
        let Some(name) = key.as_str() else { continue };
        let tensor =
            read_entry(value, storages).map_err(|p| p.context(&format!("entry {name:?}")))?;
        if let Some(tensor) = tensor {
            tensors.push((name.to_owned(), tensor));
        }
    }
    Ok(tensors)
}

/// The tensor an entry rebuilds; None for non-tensor entries and non-float tensors.
fn read_entry(
    value: &Node,
    storages: &HashMap<String, Storage<'_>>,
) -> Result<Option<Tensor>, Problem> {
    if let Some(func) = unknown_torch_call(value) {
        return Err(Problem::Unsupported(format!("a value rebuilt by {func}")));
    }
    match tensor_ref(value)? {
        Some(tensor) => materialize(&tensor, storages),
        None => Ok(None),
    }
}

/// A call to a torch function other than the plain tensor rebuilds (quantized or sparse
/// tensors, say): an error rather than a silently missing parameter.
fn unknown_torch_call(value: &Node) -> Option<String> {
    let (func, _) = value.as_call()?;
    let pickle::Value::Global { module, name } = func.value() else {
        return None;
    };
    let torch = module == "torch" || module.starts_with("torch.");
    (torch && !is_tensor(value)).then(|| format!("{module}.{name}"))
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)` (or the pre-0.4 `_rebuild_tensor`),
/// possibly wrapped in `_rebuild_parameter(tensor, requires_grad, hooks)`.
struct TensorRef<'a> {
    storage: StorageId<'a>,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

fn tensor_ref(value: &Node) -> Result<Option<TensorRef<'_>>, Problem> {
    if !is_tensor(value) {
        return Ok(None);
    }
    let Some((func, args)) = value.as_call() else {
        return Ok(None);
    };
    let args = args.as_seq().unwrap_or_default();
    if func.is_global("torch._utils", "_rebuild_parameter") {
        let [data, ..] = args else {
            return Err(Problem::Invalid(
                "_rebuild_parameter without arguments".into(),
            ));
        };
        return tensor_ref(data);
    }
    let [storage, offset, size, stride, ..] = args else {
        return Err(Problem::Invalid(format!(
            "tensor rebuilt from {} arguments, expected at least 4",
            args.len()
        )));
    };
    let bad = |what: &str, obj: &Node| Problem::Invalid(format!("bad {what}: {}", obj.describe()));
    let id = storage
        .as_persistent_id()
        .ok_or_else(|| bad("storage", storage))?;
    let size = usize_seq(size).ok_or_else(|| bad("size", size))?;
    let stride = usize_seq(stride).ok_or_else(|| bad("stride", stride))?;
    if size.len() != stride.len() {
        return Err(Problem::Invalid(format!(
            "size has {} dimensions, stride {}",
            size.len(),
            stride.len()
        )));
    }
    Ok(Some(TensorRef {
        storage: parse_storage_id(id)?,
        offset: to_usize(offset).ok_or_else(|| bad("offset", offset))?,
        size,
        stride,
    }))
}

fn usize_seq(obj: &Node) -> Option<Vec<usize>> {
    obj.as_seq()?.iter().map(|o| to_usize(o)).collect()
}

fn materialize(
    tensor: &TensorRef<'_>,
    storages: &HashMap<String, Storage<'_>>,
) -> Result<Option<Tensor>, Problem> {
    let id = &tensor.storage;
    let storage = storages
        .get(id.key)
        .ok_or_else(|| Problem::Invalid(format!("storage {:?} has no data", id.key)))?;
    let Some(dtype) = storage.kind.dtype else {
        return Ok(None);
    };
    let elements = view_of(storage, id.view)?;
    let bytes = gather(elements, storage.kind.elem_size, tensor)?;
    let candle = |e: candle_core::Error| Problem::Invalid(format!("candle: {e}"));
    let tensor = Tensor::from_raw_buffer(&bytes, dtype, &tensor.size, &Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(candle)?;
    Ok(Some(tensor))
}

/// The bytes of the storage, or of the slice `(offset, numel)` a storage view selects.
fn view_of<'a>(storage: &Storage<'a>, view: Option<(usize, usize)>) -> Result<&'a [u8], Problem> {
    let Some((offset, numel)) = view else {
        return Ok(storage.bytes);
    };
    let size = storage.kind.elem_size;
    offset
        .checked_add(numel)
        .and_then(|end| end.checked_mul(size))
        .and_then(|end| storage.bytes.get(offset * size..end))
        .ok_or_else(|| Problem::Invalid("storage view reaches past its storage".into()))
}

/// The tensor's elements in row-major order: borrowed when the tensor is a contiguous slice of
/// its storage (always, in practice), copied element by element for other strides.
fn gather<'a>(
    data: &'a [u8],
    elem_size: usize,
    t: &TensorRef<'_>,
) -> Result<Cow<'a, [u8]>, Problem> {
    let numel = t
        .size
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Problem::Invalid(format!("size {:?} overflows", t.size)))?;
    if numel == 0 {
        return Ok(Cow::Borrowed(&[]));
    }
    let available = data.len() / elem_size;
    let last = last_index(t)
        .filter(|&last| last < available)
        .ok_or_else(|| {
            Problem::Invalid(format!(
                "size {:?}, stride {:?} and offset {} reach past a storage of {available} elements",
                t.size, t.stride, t.offset
            ))
        })?;
    if is_row_major(&t.size, &t.stride) {
        let start = t.offset * elem_size;
        let end = (last + 1) * elem_size;
        return data
            .get(start..end)
            .map(Cow::Borrowed)
            .ok_or_else(|| Problem::Invalid("contiguous tensor out of bounds".into()));
    }
    if numel > MAX_EXPANSION.saturating_mul(available).saturating_add(1024) {
        return Err(Problem::Invalid(format!(
            "{numel} elements from a storage of {available}"
        )));
    }
    gather_strided(data, elem_size, t, numel).map(Cow::Owned)
}

/// The storage index of the tensor's last element; None on overflow.
fn last_index(t: &TensorRef<'_>) -> Option<usize> {
    t.size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| {
            d.checked_sub(1)
                .and_then(|d| d.checked_mul(s))
                .and_then(|step| acc.checked_add(step))
        })
}

fn is_row_major(size: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d > 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

/// Walks the index space in row-major order like an odometer. Every position is at most
/// `last_index`, which the caller checked, so the arithmetic cannot overflow.
fn gather_strided(
    data: &[u8],
    elem_size: usize,
    t: &TensorRef<'_>,
    numel: usize,
) -> Result<Vec<u8>, Problem> {
    let mut out = Vec::with_capacity(numel * elem_size);
    let mut index = vec![0usize; t.size.len()];
    for _ in 0..numel {
        let pos = index
            .iter()
            .zip(&t.stride)
            .fold(t.offset, |acc, (&i, &s)| acc + i * s);
        let element = data
            .get(pos * elem_size..(pos + 1) * elem_size)
            .ok_or_else(|| Problem::Invalid("strided tensor out of bounds".into()))?;
        out.extend_from_slice(element);
        for (i, &d) in index.iter_mut().zip(&t.size).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_is_recognised_by_prefix() {
        let full = [&[0x80, 0x02][..], &MAGIC_BODY].concat();
        assert_eq!(magic(&full), Magic::Complete(15));
        assert_eq!(magic(&full[..6]), Magic::Partial);
        assert_eq!(magic(&full[..2]), Magic::Absent);
        assert_eq!(magic(b"\x80\x02K\x01."), Magic::Absent);
        let framed = [
            &[0x80, 0x04, 0x95, 13, 0, 0, 0, 0, 0, 0, 0][..],
            &MAGIC_BODY,
        ]
        .concat();
        assert_eq!(magic(&framed), Magic::Complete(24));
    }

    #[test]
    fn row_major_ignores_unit_dims() {
        assert!(is_row_major(&[2, 3], &[3, 1]));
        assert!(is_row_major(&[1, 3], &[7, 1]));
        assert!(!is_row_major(&[2, 3], &[1, 2]));
    }
}
