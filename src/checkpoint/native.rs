//! Our checkpoint format: one safetensors file whose tensors are named
//! `<network>.<official key>` and whose metadata carries the format version, the model
//! configuration, the domain names and (for training checkpoints) the training state.
//! Files are written atomically: a temporary file in the same folder, fsync, rename.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Kind, Tensor};

use super::{to_cpu, Checkpoint, CheckpointError, FileBytes, Format};
use crate::config::ModelConfig;

pub const FORMAT_NAME: &str = "stargan-rs";
pub const FORMAT_VERSION: u32 = 1;

/// Metadata keys.
pub const META_FORMAT: &str = "format";
pub const META_VERSION: &str = "format_version";
pub const META_CONFIG: &str = "model_config";
pub const META_DOMAINS: &str = "domains";

pub fn looks_like_safetensors(data: &[u8]) -> bool {
    data.len() >= 10 && data[8] == b'{' && {
        let n = u64::from_le_bytes(data[..8].try_into().unwrap());
        n as usize <= data.len() - 8
    }
}

fn kind_to_dtype(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn dtype_to_kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// Named tensors and the metadata strings of a safetensors file.
pub type TensorsAndMetadata = (Vec<(String, Tensor)>, HashMap<String, String>);

/// Reads a safetensors file into named tensors and its metadata.
pub fn read_tensors(path: &str, src: &FileBytes) -> Result<TensorsAndMetadata, CheckpointError> {
    let data = src.bytes();
    let bad = |what: String| CheckpointError::Malformed { path: path.into(), what };
    let st = SafeTensors::deserialize(data).map_err(|e| bad(format!("invalid safetensors data ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(data).map_err(|e| bad(format!("invalid safetensors header ({e})")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let view = st.tensor(&name).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        let kind = dtype_to_kind(view.dtype())
            .ok_or_else(|| bad(format!("tensor {name} has unsupported dtype {:?}", view.dtype())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        // Straight from the file: view.data() is only used for its position.
        let start = src.offset_of(view.data());
        let t = src
            .tensor(start..start + view.data().len(), &shape, kind)
            .map_err(|reason| CheckpointError::Io { path: path.into(), reason })?;
        out.push((name, t));
    }
    Ok((out, metadata))
}

/// Reads one of our checkpoints (or any safetensors file of `<net>.<key>` tensors).
pub fn read(path: &str, src: &FileBytes) -> Result<Checkpoint, CheckpointError> {
    let (tensors, metadata) = read_tensors(path, src)?;
    if let Some(v) = metadata.get(META_VERSION) {
        let v: u32 = v.parse().unwrap_or(u32::MAX);
        if v > FORMAT_VERSION {
            return Err(CheckpointError::Invalid {
                path: path.into(),
                what: format!(
                    "format version {v} is newer than this stargan understands ({FORMAT_VERSION}); upgrade stargan"
                ),
            });
        }
    }
    let config = match metadata.get(META_CONFIG) {
        Some(json) => Some(serde_json::from_str::<ModelConfig>(json).map_err(|e| CheckpointError::Malformed {
            path: path.into(),
            what: format!("model_config metadata is not valid: {e}"),
        })?),
        None => None,
    };
    let domains = match metadata.get(META_DOMAINS) {
        Some(json) => Some(serde_json::from_str::<Vec<String>>(json).map_err(|e| CheckpointError::Malformed {
            path: path.into(),
            what: format!("domains metadata is not valid: {e}"),
        })?),
        None => None,
    };
    let mut nets: Vec<(String, super::StateDict)> = Vec::new();
    for (name, t) in tensors {
        let (net, key) = name.split_once('.').ok_or_else(|| CheckpointError::Malformed {
            path: path.into(),
            what: format!("tensor '{name}' is not named <network>.<key>"),
        })?;
        match nets.iter_mut().find(|(n, _)| n == net) {
            Some((_, sd)) => sd.push((key.to_string(), t)),
            None => nets.push((net.to_string(), vec![(key.to_string(), t)])),
        }
    }
    Ok(Checkpoint { path: path.into(), format: Format::Native, nets, config, domains, metadata, other_entries: vec![] })
}

/// Metadata of a checkpoint we write: format, version, config and domain names, plus
/// any extra entries (training state).
pub fn metadata(cfg: &ModelConfig, domains: &[String], extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert(META_FORMAT.into(), FORMAT_NAME.into());
    m.insert(META_VERSION.into(), FORMAT_VERSION.to_string());
    m.insert(META_CONFIG.into(), serde_json::to_string(cfg).expect("config serialises"));
    m.insert(META_DOMAINS.into(), serde_json::to_string(domains).expect("names serialise"));
    for (k, v) in extra {
        m.insert((*k).to_string(), v.clone());
    }
    m
}

/// Writes `tensors` with `metadata` to `path` atomically: the previous file at `path`
/// stays intact until the new one is complete on disk.
pub fn write_atomic(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let name = path.display().to_string();
    let werr = |source: std::io::Error| CheckpointError::Write { path: name.clone(), source };
    let mut buffers = Vec::with_capacity(tensors.len());
    for (n, t) in tensors {
        let t = to_cpu(t);
        let dtype = kind_to_dtype(t.kind()).ok_or_else(|| CheckpointError::Invalid {
            path: name.clone(),
            what: format!("tensor {n} has unsupported kind {:?}", t.kind()),
        })?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)
            .map_err(|e| CheckpointError::Invalid { path: name.clone(), what: e.to_string() })?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((n.clone(), dtype, shape, bytes));
    }
    let views: Vec<(String, TensorView)> = buffers
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).expect("sizes agree")))
        .collect();
    let bytes = safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| CheckpointError::Invalid { path: name.clone(), what: e.to_string() })?;

    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let (tmp_path, mut file) = tempfile_in(dir, path).map_err(werr)?;
    // Whatever fails (a full disk, a file-size limit), the partial file goes and the
    // previous file at `path` stays as it was.
    let written = file.write_all(&bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp_path, path)) {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(werr(e));
    }
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the temporary files that writers of other processes left in `dir` (a run
/// killed in the middle of a save): `.<name>.tmp-<pid>-<n>` whose process is gone. Files
/// of a live process (another run or an export writing into the same folder) are its own.
pub fn remove_stale_temp_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.split_once(".tmp-")).map(|(_, r)| r) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()).filter(|&p| p > 0);
        if pid.is_some_and(|p| !process_is_alive(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists on this machine (ours included).
fn process_is_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A new temporary file next to `target` (same file system, so rename is atomic).
fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    let stem = target.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "checkpoint".into());
    for i in 0..1000u32 {
        let p = dir.join(format!(".{stem}.tmp-{}-{i}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not create a temporary file"))
}

/// Saves modules (network name, module) with the given metadata.
pub fn save_modules(
    path: &Path,
    modules: &[(&str, &dyn crate::model::Module)],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let mut tensors = Vec::new();
    for (net, m) in modules {
        for t in m.named_tensors() {
            tensors.push((format!("{net}.{}", t.name), t.tensor));
        }
    }
    write_atomic(path, &tensors, metadata)
}
