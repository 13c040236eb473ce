//! Flags shared by the commands that load a trained model.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::device::select_device;
use crate::files;
use crate::infer::load::{load_model, LoadedModel, ModelSource};

#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Checkpoint: ours (.safetensors; the EMA networks are used) or an official .ckpt.
    /// Default: the emoji model shipped in models/ (or $STARGAN_MODEL).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// For official checkpoints: afhq or celeba-hq (sets the configuration and domain names).
    #[arg(long)]
    pub preset: Option<String>,
    /// FAN weights (official wing.ckpt) for models with w_hpf > 0 whose checkpoint lacks them.
    #[arg(long)]
    pub wing: Option<PathBuf>,
    /// Domain names in label order, comma-separated (overrides the checkpoint's).
    #[arg(long, value_delimiter = ',')]
    pub domains: Option<Vec<String>>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl ModelArgs {
    /// The checkpoint to load: --checkpoint, else the shipped model (said on stderr).
    pub fn checkpoint(&self) -> Result<PathBuf> {
        if let Some(p) = &self.checkpoint {
            return Ok(p.clone());
        }
        let shipped = files::shipped_model();
        if self.preset.is_some() {
            bail!("--preset is for official checkpoints: pass the file with --checkpoint");
        }
        if !shipped.is_file() {
            bail!(
                "no --checkpoint given and the shipped model {} is missing: pass --checkpoint FILE (or set STARGAN_MODEL)",
                shipped.display()
            );
        }
        eprintln!("no --checkpoint given: using the shipped emoji model {}", shipped.display());
        Ok(shipped)
    }

    pub fn load(&self) -> Result<LoadedModel> {
        let checkpoint = self.checkpoint()?;
        let device = select_device(&self.device)?;
        load_model(
            &ModelSource {
                checkpoint,
                preset: self.preset.clone(),
                wing: self.wing.clone(),
                domains: self.domains.clone(),
            },
            device,
        )
    }
}

/// Folder of small derived files (mean styles) in the cache.
pub fn cache_dir() -> PathBuf {
    files::cache_dir().join("mean-styles")
}
