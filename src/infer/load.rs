//! Loading a model for inference from any checkpoint: ours (training or exported) or an
//! official `.ckpt` with a preset.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{Device, Kind};

use crate::checkpoint::schema::ema_name;
use crate::checkpoint::{adopt_module, Checkpoint};
use crate::config::{ModelConfig, Preset};
use crate::model::{Fan, Init, TranslationNets, FAN};

/// Where the model comes from and what the user said about it.
#[derive(Clone, Debug, Default)]
pub struct ModelSource {
    pub checkpoint: PathBuf,
    /// `afhq` or `celeba-hq` for official checkpoints (config and domain names).
    pub preset: Option<String>,
    /// FAN weights (wing.ckpt) when the model uses masks and the checkpoint lacks them.
    pub wing: Option<PathBuf>,
    /// Domain names, overriding those stored with the checkpoint.
    pub domains: Option<Vec<String>>,
}

pub struct LoadedModel {
    /// The checkpoint file it came from (keys the mean-style cache).
    pub path: PathBuf,
    pub cfg: ModelConfig,
    pub domains: Vec<String>,
    pub nets: TranslationNets,
    pub fan: Option<Fan>,
    pub device: Device,
    /// Whether the EMA networks were used.
    pub ema: bool,
}

impl LoadedModel {
    /// The label of a domain name (case-insensitive), or a clear error listing them.
    pub fn domain_index(&self, name: &str) -> Result<i64> {
        if let Some(i) = self.domains.iter().position(|d| d.eq_ignore_ascii_case(name)) {
            return Ok(i as i64);
        }
        bail!("unknown domain '{name}': this model's domains are {}", self.domains.join(", "))
    }

    pub fn translator(&self) -> super::Translator<'_> {
        super::Translator {
            nets: &self.nets,
            fan: self.fan.as_ref(),
            device: self.device,
            latent_dim: self.cfg.latent_dim,
        }
    }
}

pub fn load_model(src: &ModelSource, device: Device) -> Result<LoadedModel> {
    let mut ckpt = Checkpoint::open(&src.checkpoint)?;
    let cfg = match (&src.preset, &ckpt.config) {
        (Some(p), _) => ModelConfig::preset(p)?,
        (None, Some(c)) => c.clone(),
        (None, None) => ckpt.config_or_inferred().with_context(|| {
            format!("{}: pass --preset afhq or --preset celeba-hq for an official checkpoint", src.checkpoint.display())
        })?,
    };
    cfg.validate()?;
    let domains = match (&src.domains, &ckpt.domains, &src.preset) {
        (Some(d), _, _) => d.clone(),
        (None, Some(d), _) if !d.is_empty() => d.clone(),
        (None, _, Some(p)) => Preset::named(p)?.domain_names(),
        _ => (0..cfg.num_domains).map(|i| i.to_string()).collect(),
    };
    if domains.len() as i64 != cfg.num_domains {
        bail!(
            "{} domain names given ({}) but the model has {} domains; pass --domains with {} comma-separated names",
            domains.len(),
            domains.join(", "),
            cfg.num_domains,
            cfg.num_domains
        );
    }
    let init = Init::for_loading(device, Kind::Float);
    let nets = TranslationNets::new(&init, &cfg);
    let ema = nets.modules().iter().all(|(n, _)| ckpt.has_net(&ema_name(n)));
    for (net, m) in nets.modules() {
        let name = if ema { ema_name(net) } else { net.to_string() };
        let sd = ckpt.take_net(&name)?;
        adopt_module(m, net, sd, &ckpt.path, &cfg)?;
    }
    let fan = if cfg.uses_masks() {
        let f = Fan::new(&init);
        if ckpt.has_net(FAN) {
            let sd = ckpt.take_net(FAN)?;
            adopt_module(&f, FAN, sd, &ckpt.path, &cfg)?;
        } else if let Some(w) = &src.wing {
            let mut wc = Checkpoint::open(w)?;
            let sd = wc.take_net(FAN)?;
            adopt_module(&f, FAN, sd, &wc.path, &cfg)?;
        } else {
            bail!(
                "this model uses face masks (w_hpf = {}) and {} has no FAN weights: pass --wing expr/checkpoints/wing.ckpt",
                cfg.w_hpf,
                src.checkpoint.display()
            );
        }
        Some(f)
    } else {
        None
    };
    for (_, m) in nets.modules() {
        for t in m.named_tensors() {
            let _ = t.tensor.set_requires_grad(false);
        }
    }
    Ok(LoadedModel { path: src.checkpoint.clone(), cfg, domains, nets, fan, device, ema })
}

/// Image files of a path: the file itself, or every image below a folder (sorted).
pub fn image_inputs(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let files = crate::data::folder::list_images(path)?;
    if files.is_empty() {
        bail!("{} contains no images (png, jpg, jpeg, webp)", path.display());
    }
    Ok(files)
}
