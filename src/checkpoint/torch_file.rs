//! Reader of PyTorch `torch.save` files in both serialisations: the legacy one (a
//! sequence of pickles followed by raw storages; the released StarGAN v2 checkpoints and
//! `wing.ckpt`) and the zip one (`<name>/data.pkl` plus `<name>/data/<key>`).
//!
//! The pickle is decoded by [`super::pickle`] without executing anything; this module
//! recognises tensor rebuilds and storages and turns them into tch tensors. Device
//! locations such as `cuda:0` are ignored: everything is read to the CPU.

use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;

use tch::{Kind, Tensor};

use super::pickle::{self, Value};
use super::{CheckpointError, FileBytes};

/// Magic number of the legacy format (first pickle of the file).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A decoded object tree with tensors materialised.
#[derive(Debug)]
pub enum Obj {
    Dict(Vec<(String, Obj)>),
    Tensor(Tensor),
    /// Anything else, described for `inspect` and error messages.
    Other(String),
}

impl Obj {
    pub fn get(&self, key: &str) -> Option<&Obj> {
        match self {
            Obj::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Most elements a tensor may have beyond its storage's (through zero strides): 2^28, 1 GiB
/// of float32.
const MAX_EXPANDED_ELEMENTS: i64 = 1 << 28;

/// Storage element kinds by their legacy class names.
fn storage_kind(global: &Value) -> Option<Kind> {
    let Value::Global(module, name) = global else { return None };
    if &**module != "torch" {
        return None;
    }
    Some(match &**name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

/// One storage of the file: its element kind and its data as a flat tensor (made as soon
/// as the bytes are read, so the file's bytes are copied only once).
struct Storage {
    kind: Kind,
    data: Tensor,
}

impl Storage {
    /// A storage from the file's bytes in `range` (its length rounded down to whole
    /// elements), read straight into the tensor.
    fn read(file: &str, src: &FileBytes, range: Range<usize>, kind: Kind) -> Result<Self, CheckpointError> {
        let n = range.len() / kind.elt_size_in_bytes();
        let range = range.start..range.start + n * kind.elt_size_in_bytes();
        let data = src
            .tensor(range, &[n as i64], kind)
            .map_err(|reason| CheckpointError::Io { path: file.to_string(), reason })?;
        Ok(Storage { kind, data })
    }

    fn from_bytes(kind: Kind, bytes: &[u8]) -> Self {
        let n = (bytes.len() / kind.elt_size_in_bytes()) as i64;
        Storage { kind, data: Tensor::from_data_size(&bytes[..n as usize * kind.elt_size_in_bytes()], &[n], kind) }
    }
}

struct Resolver<'a> {
    file: &'a str,
    storages: HashMap<String, Storage>,
}

impl Resolver<'_> {
    fn bad(&self, what: impl Into<String>) -> CheckpointError {
        CheckpointError::Malformed { path: self.file.to_string(), what: what.into() }
    }

    /// Storage key and kind named by a persistent id ('storage', Type, key, location, numel, …).
    fn storage_ref(&self, pid: &Value) -> Result<(String, Kind), CheckpointError> {
        let items = pid.items().ok_or_else(|| self.bad("persistent id is not a tuple"))?;
        if items.len() < 5 || items[0].as_str() != Some("storage") {
            return Err(self.bad("persistent id is not a storage reference"));
        }
        let kind =
            storage_kind(&items[1]).ok_or_else(|| self.bad(format!("unsupported storage type {:?}", items[1])))?;
        let key = items[2].as_str().ok_or_else(|| self.bad("storage key is not a string"))?.to_string();
        if items.len() > 5 && !matches!(items[5], Value::None) {
            return Err(self.bad("storage views (pre-2018 checkpoints) are not supported"));
        }
        Ok((key, kind))
    }

    fn ints(&self, v: &Value, what: &str) -> Result<Vec<i64>, CheckpointError> {
        v.items()
            .ok_or_else(|| self.bad(format!("{what} is not a tuple")))?
            .iter()
            .map(|x| x.as_int().ok_or_else(|| self.bad(format!("{what} holds a non-integer"))))
            .collect()
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Tensor, CheckpointError> {
        if args.len() < 4 {
            return Err(self.bad("tensor rebuild with too few arguments"));
        }
        let Value::PersistentId(pid) = &args[0] else {
            return Err(self.bad("tensor without a storage"));
        };
        let (key, kind) = self.storage_ref(pid)?;
        let storage =
            self.storages.get(&key).ok_or_else(|| self.bad(format!("storage '{key}' is missing (truncated file?)")))?;
        if storage.kind != kind {
            return Err(self.bad(format!("storage '{key}' is used with two element types")));
        }
        let offset = args[1].as_int().ok_or_else(|| self.bad("storage offset is not an integer"))?;
        let size = self.ints(&args[2], "tensor size")?;
        let stride = self.ints(&args[3], "tensor stride")?;
        if size.len() != stride.len() || size.iter().chain(&stride).any(|&v| v < 0) || offset < 0 {
            return Err(self.bad(format!("invalid tensor geometry: size {size:?}, stride {stride:?}, offset {offset}")));
        }
        let numel = storage.data.numel() as i64;
        let empty = size.contains(&0);
        // Checked: sizes and strides come from the file.
        let last = size
            .iter()
            .zip(&stride)
            .try_fold(offset, |acc, (s, st)| (s - 1).max(0).checked_mul(*st).and_then(|x| acc.checked_add(x)));
        let Some(last) = last else {
            return Err(self.bad(format!("invalid tensor geometry: size {size:?}, stride {stride:?}, offset {offset}")));
        };
        if !empty && last >= numel {
            return Err(self.bad(format!(
                "tensor of size {size:?} at offset {offset} reaches past its storage of {numel} elements (truncated file?)"
            )));
        }
        // The copy made below has this many elements: more than the storage only through
        // zero strides (an expanded tensor), which may not blow a few bytes up into gigabytes.
        let elements = size.iter().try_fold(1i64, |acc, &s| acc.checked_mul(s));
        if elements.is_none_or(|n| n > numel.max(MAX_EXPANDED_ELEMENTS)) {
            return Err(self.bad(format!(
                "tensor of size {size:?} has more elements than its storage of {numel} can justify (corrupt file?)"
            )));
        }
        let made = if empty {
            Tensor::f_zeros(size.as_slice(), (kind, tch::Device::Cpu))
        } else {
            // A view of the storage (no copy when the layout is already contiguous).
            storage.data.f_as_strided(size.as_slice(), stride.as_slice(), Some(offset)).and_then(|t| t.f_contiguous())
        };
        made.map_err(|e| self.bad(format!("tensor of size {size:?}, stride {stride:?}: {e}")))
    }

    fn convert(&self, v: &Value) -> Result<Obj, CheckpointError> {
        Ok(match v {
            Value::Dict(_) | Value::Build(..) if v.dict_entries().is_some() => {
                let mut out = Vec::new();
                for (k, val) in v.dict_entries().unwrap() {
                    let key = match &k {
                        Value::Str(s) => s.to_string(),
                        Value::Int(i) => i.to_string(),
                        other => format!("{other:?}"),
                    };
                    out.push((key, self.convert(&val)?));
                }
                Obj::Dict(out)
            }
            Value::Call(f, args) => {
                if f.is_global("torch._utils", "_rebuild_tensor_v2") || f.is_global("torch._utils", "_rebuild_tensor") {
                    Obj::Tensor(self.rebuild_tensor(args)?)
                } else if f.is_global("torch._utils", "_rebuild_parameter") && !args.is_empty() {
                    self.convert(&args[0])?
                } else {
                    match f.as_ref() {
                        Value::Global(m, n) => Obj::Other(format!("{m}.{n}(…)")),
                        _ => Obj::Other("call".into()),
                    }
                }
            }
            Value::Int(i) => Obj::Other(i.to_string()),
            Value::Float(f) => Obj::Other(f.to_string()),
            Value::Str(s) => Obj::Other(format!("'{s}'")),
            other => Obj::Other(short_type(other).to_string()),
        })
    }
}

fn short_type(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Bytes(_) => "bytes",
        Value::BigInt(_) => "int",
        _ => "object",
    }
}

/// Which serialisation a `torch.save` file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorchFormat {
    Legacy,
    Zip,
}

pub fn is_legacy(head: &[u8]) -> bool {
    head.len() >= 14 && head[0] == 0x80 && head[2] == 0x8a && head[3] == 0x0a && head[4..14] == LEGACY_MAGIC
}

pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
}

/// Reads a `torch.save` file.
pub fn read(file: &str, src: &FileBytes) -> Result<(TorchFormat, Obj), CheckpointError> {
    let data = src.bytes();
    if is_legacy(data) {
        Ok((TorchFormat::Legacy, read_legacy(file, src)?))
    } else if is_zip(data) {
        Ok((TorchFormat::Zip, read_zip(file, src)?))
    } else {
        Err(CheckpointError::NotACheckpoint { path: file.to_string() })
    }
}

fn pickle_err(file: &str, e: pickle::PickleError) -> CheckpointError {
    CheckpointError::Malformed { path: file.to_string(), what: e.to_string() }
}

fn read_legacy(file: &str, src: &FileBytes) -> Result<Obj, CheckpointError> {
    let data = src.bytes();
    let p = |e| pickle_err(file, e);
    let (_magic, pos) = pickle::read(data, 0).map_err(p)?;
    let (version, pos) = pickle::read(data, pos).map_err(p)?;
    if version.as_int() != Some(1001) {
        return Err(CheckpointError::Malformed {
            path: file.into(),
            what: format!("unknown legacy protocol version {version:?}"),
        });
    }
    let (sys_info, pos) = pickle::read(data, pos).map_err(p)?;
    let little = sys_info
        .dict_entries()
        .and_then(|e| e.into_iter().find(|(k, _)| k.as_str() == Some("little_endian")).map(|(_, v)| v));
    if matches!(little, Some(Value::Bool(false))) {
        return Err(CheckpointError::Malformed {
            path: file.into(),
            what: "big-endian checkpoints are not supported".into(),
        });
    }
    let (root, pos) = pickle::read(data, pos).map_err(p)?;
    let (keys, mut pos) = pickle::read(data, pos).map_err(p)?;
    let keys = keys
        .items()
        .ok_or_else(|| CheckpointError::Malformed { path: file.into(), what: "storage key list missing".into() })?;

    // The kind of each storage comes from the persistent ids in the main pickle.
    let mut kinds = HashMap::new();
    collect_storage_kinds(&root, &mut kinds);
    let mut storages = HashMap::new();
    for key in keys {
        let key = key.as_str().unwrap_or_default().to_string();
        let kind = *kinds.get(&key).ok_or_else(|| CheckpointError::Malformed {
            path: file.into(),
            what: format!("storage '{key}' is listed but never used"),
        })?;
        let truncated = || CheckpointError::Truncated { path: file.into() };
        let count = data.get(pos..pos + 8).ok_or_else(truncated)?;
        let count = i64::from_le_bytes(count.try_into().unwrap());
        let nbytes =
            usize::try_from(count).ok().and_then(|c| c.checked_mul(kind.elt_size_in_bytes())).ok_or_else(truncated)?;
        pos += 8;
        let end = pos.checked_add(nbytes).filter(|&end| end <= data.len()).ok_or_else(truncated)?;
        storages.insert(key, Storage::read(file, src, pos..end, kind)?);
        pos = end;
    }
    Resolver { file, storages }.convert(&root)
}

fn collect_storage_kinds(v: &Value, out: &mut HashMap<String, Kind>) {
    match v {
        Value::PersistentId(pid) => {
            if let Some(items) = pid.items() {
                if items.len() >= 3 {
                    if let (Some(kind), Some(key)) = (storage_kind(&items[1]), items[2].as_str()) {
                        out.insert(key.to_string(), kind);
                    }
                }
            }
        }
        Value::Tuple(items) => items.iter().for_each(|i| collect_storage_kinds(i, out)),
        Value::List(items) => items.borrow().iter().for_each(|i| collect_storage_kinds(i, out)),
        Value::Dict(d) => d.borrow().iter().for_each(|(k, v)| {
            collect_storage_kinds(k, out);
            collect_storage_kinds(v, out)
        }),
        Value::Call(f, args) => {
            collect_storage_kinds(f, out);
            args.iter().for_each(|a| collect_storage_kinds(a, out));
        }
        Value::Build(o, s) => {
            collect_storage_kinds(o, out);
            collect_storage_kinds(s, out);
        }
        _ => {}
    }
}

fn read_zip(file: &str, src: &FileBytes) -> Result<Obj, CheckpointError> {
    let data = src.bytes();
    let bad = |what: String| CheckpointError::Malformed { path: file.into(), what };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(|e| bad(format!("broken zip archive: {e}")))?;
    let names: Vec<String> = archive.file_names().map(String::from).collect();
    let pkl = names
        .iter()
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or_else(|| bad("zip archive without data.pkl: not a PyTorch checkpoint".into()))?
        .clone();
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    // An entry is read only up to what its compressed size can honestly expand to
    // (deflate's ratio is at most 1032:1): a zip bomb is refused, not allocated.
    let read_entry = |archive: &mut zip::ZipArchive<_>, name: &str| -> Result<Vec<u8>, CheckpointError> {
        let f = archive.by_name(name).map_err(|e| bad(format!("entry '{name}': {e}")))?;
        let limit = f.compressed_size().saturating_mul(1032).saturating_add(1024).min(data.len() as u64 * 1032 + 1024);
        if f.size() > limit {
            return Err(bad(format!(
                "entry '{name}' claims {} bytes from {} compressed",
                f.size(),
                f.compressed_size()
            )));
        }
        let mut buf = Vec::new();
        f.take(limit + 1).read_to_end(&mut buf).map_err(|e| bad(format!("entry '{name}': {e}")))?;
        if buf.len() as u64 > limit {
            return Err(bad(format!("entry '{name}' expands beyond what its size allows")));
        }
        Ok(buf)
    };
    let pickled = read_entry(&mut archive, &pkl)?;
    let (root, _) = pickle::read(&pickled, 0).map_err(|e| pickle_err(file, e))?;
    let mut kinds = HashMap::new();
    collect_storage_kinds(&root, &mut kinds);
    let mut storages = HashMap::new();
    for (key, kind) in kinds {
        let name = format!("{prefix}data/{key}");
        // torch.save stores entries uncompressed: read those straight from the file.
        let stored = {
            let entry = archive.by_name(&name).map_err(|e| bad(format!("entry '{name}': {e}")))?;
            (entry.compression() == zip::CompressionMethod::Stored).then(|| {
                let start = entry.data_start() as usize;
                start..start.saturating_add(entry.size() as usize)
            })
        };
        let storage = match stored {
            Some(range) if range.end <= data.len() => Storage::read(file, src, range, kind)?,
            Some(_) => return Err(CheckpointError::Truncated { path: file.into() }),
            None => Storage::from_bytes(kind, &read_entry(&mut archive, &name)?),
        };
        storages.insert(key, storage);
    }
    Resolver { file, storages }.convert(&root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// `_rebuild_tensor_v2`'s first four arguments for storage "0" (four floats).
    fn rebuild(size: &[i64], stride: &[i64], offset: i64) -> Result<Tensor, CheckpointError> {
        let ints = |v: &[i64]| Value::Tuple(v.iter().map(|&i| Value::Int(i)).collect());
        let pid = Value::Tuple(Rc::new([
            Value::Str("storage".into()),
            Value::Global("torch".into(), "FloatStorage".into()),
            Value::Str("0".into()),
            Value::Str("cpu".into()),
            Value::Int(4),
        ]));
        let storage = Storage::from_bytes(Kind::Float, &[0u8; 16]);
        let r = Resolver { file: "t.ckpt", storages: HashMap::from([("0".to_string(), storage)]) };
        r.rebuild_tensor(&[Value::PersistentId(Rc::new(pid)), Value::Int(offset), ints(size), ints(stride)])
    }

    #[test]
    fn tensor_geometry_from_the_file_is_checked_before_anything_is_allocated() {
        assert_eq!(rebuild(&[2, 2], &[2, 1], 0).unwrap().size(), [2, 2]);
        // Zero strides expand legitimately (a broadcast tensor saved as such)...
        assert_eq!(rebuild(&[3, 4], &[0, 1], 0).unwrap().size(), [3, 4]);
        // ...but not into gigabytes out of four floats, nor past i64.
        for (size, stride) in [(vec![1i64 << 31, 1 << 31], vec![0i64, 0]), (vec![1 << 40, 1 << 40], vec![0, 0])] {
            let e = rebuild(&size, &stride, 0).unwrap_err().to_string();
            assert!(e.contains("more elements than its storage"), "{e}");
        }
        // Empty tensors with absurd other sizes, and reads past the storage.
        assert!(rebuild(&[0, i64::MAX, i64::MAX], &[1, 1, 1], 0).is_err());
        assert_eq!(rebuild(&[0, 5], &[5, 1], 0).unwrap().size(), [0, 5]);
        assert!(rebuild(&[2, 2], &[2, 1], 1).unwrap_err().to_string().contains("reaches past"));
    }
}
