//! Flags shared by the commands that load a trained model.

use std::path::PathBuf;

use anyhow::Result;

use crate::device::select_device;
use crate::infer::load::{load_model, LoadedModel, ModelSource};

#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Checkpoint: ours (.safetensors; the EMA networks are used) or an official .ckpt.
    #[arg(long)]
    pub checkpoint: PathBuf,
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
    pub fn load(&self) -> Result<LoadedModel> {
        let device = select_device(&self.device)?;
        load_model(
            &ModelSource {
                checkpoint: self.checkpoint.clone(),
                preset: self.preset.clone(),
                wing: self.wing.clone(),
                domains: self.domains.clone(),
            },
            device,
        )
    }
}

/// Folder of small derived files (mean styles): `$STARGAN_CACHE` or ~/.cache/stargan.
pub fn cache_dir() -> PathBuf {
    crate::data::emoji::default_cache().join("mean-styles")
}
