//! Checkpoints: our own safetensors format (config and training state in its metadata,
//! written atomically) and the import of official PyTorch `.ckpt` files.

pub mod file_bytes;
pub mod native;
pub mod pickle;
pub mod schema;
pub mod state;
pub mod torch_file;

use std::collections::HashMap;
use std::path::Path;

use tch::Tensor;
use thiserror::Error;

use crate::config::ModelConfig;

pub use file_bytes::FileBytes;
pub use state::{adopt_module, infer_config, load_module, StateDict};

#[derive(Debug, Error)]
pub enum CheckpointError {
    // `reason` is not a `source`: the message already shows it, and a source would make
    // error chains print it twice.
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: std::io::Error },
    #[error(
        "{path} is not a checkpoint: expected a stargan .safetensors file or an official PyTorch .ckpt (legacy or zip)"
    )]
    NotACheckpoint { path: String },
    #[error("{path} is a folder, not a checkpoint file: pass the .safetensors or .ckpt file itself")]
    IsFolder { path: String },
    #[error("{path} is truncated: the file ends before all its tensors; download or copy it again")]
    Truncated { path: String },
    #[error("{path} is malformed: {what}")]
    Malformed { path: String, what: String },
    #[error("{path} has no '{net}' network (it holds: {available})")]
    MissingNetwork { path: String, net: String, available: String },
    #[error(
        "{path}: tensor {net}.{name} has shape {found:?} in the checkpoint but {expected:?} in the model; \
         the checkpoint was made for another configuration: check {hint}"
    )]
    ShapeMismatch { path: String, net: String, name: String, expected: Vec<i64>, found: Vec<i64>, hint: String },
    #[error("{path}: tensor {net}.{name} is missing from the checkpoint; check {hint}")]
    MissingTensor { path: String, net: String, name: String, hint: String },
    #[error("{path}: {net} has tensors the model does not ({examples}); the checkpoint was made for another configuration: check {hint}")]
    UnexpectedTensors { path: String, net: String, examples: String, hint: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path}: {what}")]
    Invalid { path: String, what: String },
}

/// Where a checkpoint came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Our safetensors format (or a plain safetensors file of `<net>.<key>` tensors).
    Native,
    /// PyTorch's legacy serialisation (the released official files).
    OfficialLegacy,
    /// PyTorch's zip serialisation.
    OfficialZip,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Native => "stargan safetensors",
            Format::OfficialLegacy => "official PyTorch checkpoint (legacy serialisation)",
            Format::OfficialZip => "official PyTorch checkpoint (zip serialisation)",
        })
    }
}

/// A loaded checkpoint: per network, its state dict in file order.
pub struct Checkpoint {
    pub path: String,
    pub format: Format,
    pub nets: Vec<(String, StateDict)>,
    /// The model configuration stored with it (our format only).
    pub config: Option<ModelConfig>,
    /// Domain names in label order (our format only).
    pub domains: Option<Vec<String>>,
    /// All metadata strings (our format only).
    pub metadata: HashMap<String, String>,
    /// Top-level entries that are not networks (official files), for `inspect`.
    pub other_entries: Vec<String>,
}

impl Checkpoint {
    /// Opens any supported checkpoint, telling the format by its first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        if path.is_dir() {
            return Err(CheckpointError::IsFolder { path: name });
        }
        let src = FileBytes::open(path).map_err(|reason| CheckpointError::Io { path: name.clone(), reason })?;
        let data = src.bytes();
        if torch_file::is_legacy(data) || torch_file::is_zip(data) {
            let (fmt, root) = torch_file::read(&name, &src)?;
            let format = match fmt {
                torch_file::TorchFormat::Legacy => Format::OfficialLegacy,
                torch_file::TorchFormat::Zip => Format::OfficialZip,
            };
            return Self::from_torch_root(name, format, root);
        }
        if native::looks_like_safetensors(data) {
            return native::read(&name, &src);
        }
        Err(CheckpointError::NotACheckpoint { path: name })
    }

    fn from_torch_root(path: String, format: Format, root: torch_file::Obj) -> Result<Self, CheckpointError> {
        use torch_file::Obj;
        let entries = match root {
            Obj::Dict(e) => e,
            _ => {
                return Err(CheckpointError::Malformed { path, what: "the top level is not a dict of networks".into() })
            }
        };
        let mut nets = Vec::new();
        let mut other = Vec::new();
        for (name, value) in entries {
            // wing.ckpt nests the FAN weights under `state_dict`.
            let (name, value) = match (name.as_str(), value) {
                ("state_dict", v) => (crate::model::FAN.to_string(), v),
                (_, v) => (name, v),
            };
            match value {
                Obj::Dict(items) if items.iter().all(|(_, v)| matches!(v, Obj::Tensor(_))) && !items.is_empty() => {
                    let sd = items
                        .into_iter()
                        .map(|(k, v)| match v {
                            Obj::Tensor(t) => (k, t),
                            _ => unreachable!(),
                        })
                        .collect();
                    nets.push((name, sd));
                }
                _ => other.push(name),
            }
        }
        if nets.is_empty() {
            return Err(CheckpointError::Malformed { path, what: "no network state dicts found".into() });
        }
        Ok(Checkpoint {
            path,
            format,
            nets,
            config: None,
            domains: None,
            metadata: HashMap::new(),
            other_entries: other,
        })
    }

    pub fn net(&self, name: &str) -> Result<&StateDict, CheckpointError> {
        self.nets.iter().find(|(n, _)| n == name).map(|(_, sd)| sd).ok_or_else(|| CheckpointError::MissingNetwork {
            path: self.path.clone(),
            net: name.to_string(),
            available: self.nets.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Removes a network's state dict from the checkpoint and returns it (for
    /// [`adopt_module`], which keeps its tensors).
    pub fn take_net(&mut self, name: &str) -> Result<StateDict, CheckpointError> {
        self.net(name)?;
        let i = self.nets.iter().position(|(n, _)| n == name).expect("checked above");
        Ok(self.nets.remove(i).1)
    }

    pub fn has_net(&self, name: &str) -> bool {
        self.nets.iter().any(|(n, _)| n == name)
    }

    /// The stored configuration, or one inferred from the tensor shapes.
    pub fn config_or_inferred(&self) -> Result<ModelConfig, CheckpointError> {
        match &self.config {
            Some(c) => Ok(c.clone()),
            None => infer_config(self),
        }
    }
}

/// Copies a tensor to a contiguous CPU tensor (for writing).
pub(crate) fn to_cpu(t: &Tensor) -> Tensor {
    t.detach().to_device(tch::Device::Cpu).contiguous()
}
