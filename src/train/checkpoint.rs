//! Training checkpoints: online and EMA networks, the FAN, the four optimizer states,
//! λ_ds, the iteration and both configurations, in one atomically written file (names
//! in [`crate::checkpoint::schema`]). The random state needs no storage: every batch and
//! latent code is a function of (seed, iteration).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Tensor;

use super::optim::Optimizers;
use super::{Models, TrainConfig};
use crate::checkpoint::native::{metadata, write_atomic};
use crate::checkpoint::schema::{
    ema_name, KIND_TRAINING, META_ITERATION, META_KIND, META_LAMBDA_DS, META_SOURCE_ITERATION, META_TRAIN_CONFIG,
    OPTIM_PREFIX,
};
use crate::checkpoint::{load_module, Checkpoint};
use crate::config::ModelConfig;
use crate::model::{Module, DISCRIMINATOR, FAN};

/// Training progress stored with a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub iteration: i64,
    pub lambda_ds: f64,
}

/// File name of the checkpoint after `iteration` iterations.
pub fn file_name(iteration: i64) -> String {
    format!("{iteration:06}.safetensors")
}

/// All checkpoints in `dir`, by iteration.
pub fn list(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let stem = p.file_name()?.to_str()?.strip_suffix(".safetensors")?.to_string();
            Some((stem.parse::<i64>().ok()?, p))
        })
        .collect();
    out.sort();
    out
}

#[allow(clippy::too_many_arguments)]
pub fn save(
    path: &Path,
    models: &Models,
    opt: &Optimizers,
    model_cfg: &ModelConfig,
    train_cfg: &TrainConfig,
    domains: &[String],
    progress: &Progress,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let mut add = |prefix: &str, m: &dyn Module| {
        for t in m.named_tensors() {
            tensors.push((format!("{prefix}.{}", t.name), t.tensor));
        }
    };
    for (net, m) in models.nets.modules() {
        add(net, m);
    }
    add(DISCRIMINATOR, &models.discriminator);
    for (net, m) in models.ema.modules() {
        add(&ema_name(net), m);
    }
    if let Some(fan) = &models.fan {
        add(FAN, fan);
    }
    for (net, o) in opt.all() {
        for (name, t) in o.state_tensors() {
            tensors.push((format!("{OPTIM_PREFIX}.{net}.{name}"), t));
        }
    }
    let meta = metadata(
        model_cfg,
        domains,
        &[
            (META_KIND, KIND_TRAINING.to_string()),
            (META_TRAIN_CONFIG, serde_json::to_string(train_cfg)?),
            (META_ITERATION, progress.iteration.to_string()),
            (META_LAMBDA_DS, serde_json::to_string(&progress.lambda_ds)?),
        ],
    );
    write_atomic(path, &tensors, meta)?;
    Ok(())
}

/// How the domains of a file (its label order) relate to the training data's.
#[derive(Debug, PartialEq)]
pub enum DomainMatch {
    /// Same names in the same order, or a file that does not name its domains (an
    /// official `.ckpt`).
    Same,
    /// Other names: fine-tuning onto new domains, each head taking the data's domain of
    /// its label (for the log: "file name → data name" per label).
    Renamed(Vec<String>),
}

/// Compares a file's domain names with the training data's (folder names, sorted). A
/// reordering of the same names is refused: it would hand every style head to another
/// domain without a word.
fn match_domains(ckpt: &Checkpoint, data: &[String], what: &str) -> Result<DomainMatch> {
    let Some(file) = ckpt.domains.as_deref() else { return Ok(DomainMatch::Same) };
    if file == data {
        return Ok(DomainMatch::Same);
    }
    let (mut a, mut b) = (file.to_vec(), data.to_vec());
    a.sort();
    b.sort();
    if a == b {
        bail!(
            "{what} {}: its domains are, in label order, {} but the data's folders give {}; rename the data's folders so that they sort in the file's order",
            ckpt.path,
            file.join(", "),
            data.join(", ")
        );
    }
    Ok(DomainMatch::Renamed(file.iter().zip(data).map(|(f, d)| format!("{f} → {d}")).collect()))
}

/// Restores models and optimizers from a training checkpoint; returns its progress.
/// `domains` are the training data's: a run resumes on the data it was started with.
pub fn load(
    path: &Path,
    models: &Models,
    opt: &mut Optimizers,
    model_cfg: &ModelConfig,
    domains: &[String],
) -> Result<Progress> {
    let ckpt = Checkpoint::open(path)?;
    let p = &ckpt.path;
    if ckpt.metadata.get(META_KIND).map(String::as_str) != Some(KIND_TRAINING) {
        bail!("{p} is not a training checkpoint (it has no optimizer state); start a new run or pass a file from <out>/checkpoints");
    }
    if let DomainMatch::Renamed(_) = match_domains(&ckpt, domains, "--resume")? {
        bail!(
            "--resume {p}: the run was trained on the domains {} but --data now has {}; resume with the run's data, or start a new run with --init {p}",
            ckpt.domains.as_deref().unwrap_or_default().join(", "),
            domains.join(", ")
        );
    }
    if let Some(c) = &ckpt.config {
        if c != model_cfg {
            bail!(
                "{p} was trained with model config {} but this run asks for {}; resume with the same flags",
                serde_json::to_string(c)?,
                serde_json::to_string(model_cfg)?
            );
        }
    }
    for (net, m) in models.nets.modules() {
        load_module(m, net, ckpt.net(net)?, p, model_cfg)?;
    }
    load_module(&models.discriminator, DISCRIMINATOR, ckpt.net(DISCRIMINATOR)?, p, model_cfg)?;
    for (net, m) in models.ema.modules() {
        load_module(m, net, ckpt.net(&ema_name(net))?, p, model_cfg)?;
    }
    if let (Some(fan), true) = (&models.fan, ckpt.has_net(FAN)) {
        load_module(fan, FAN, ckpt.net(FAN)?, p, model_cfg)?;
    }
    let optim = ckpt.net(OPTIM_PREFIX).map(|sd| sd.as_slice()).unwrap_or(&[]);
    for (net, o) in opt.all_mut() {
        let prefix = format!("{net}.");
        let get = |name: &str| {
            optim.iter().find(|(k, _)| k.strip_prefix(&prefix) == Some(name)).map(|(_, t)| t.shallow_clone())
        };
        o.load_state(&get).map_err(|e| anyhow::anyhow!("{p}: optimizer state of {net}: {e}"))?;
    }
    let iteration = ckpt.metadata.get(META_ITERATION).and_then(|v| v.parse().ok()).context("iteration missing")?;
    let lambda_ds =
        ckpt.metadata.get(META_LAMBDA_DS).and_then(|v| serde_json::from_str(v).ok()).context("lambda_ds missing")?;
    Ok(Progress { iteration, lambda_ds })
}

/// What [`init_from`] took from a file, for the run's log.
#[derive(Debug, PartialEq)]
pub struct InitReport {
    /// The file had a discriminator (else it starts He-initialised).
    pub discriminator_from_file: bool,
    /// The iteration the file was saved or exported at, when it says.
    pub source_iteration: Option<i64>,
    /// Whether the file's domains are the data's.
    pub domains: DomainMatch,
}

/// Starts a new run from another model's weights (`--init`): any file that holds the
/// generator, mapping network and style encoder — a training checkpoint of ours, an
/// exported model (`stargan export`, the shipped one), an official `.ckpt` — with the
/// same model configuration. The online networks take the file's online weights (or
/// its EMA weights when that is all it has, as in an export), the EMA networks its EMA
/// weights (or the online ones), the discriminator the file's when it has one. The
/// optimizer state, the iteration and λ_ds start afresh: this is fine-tuning, not resume.
/// `domains` are the training data's; other names than the file's are allowed (new
/// domains, reported), the file's names in another order are not.
pub fn init_from(path: &Path, models: &Models, model_cfg: &ModelConfig, domains: &[String]) -> Result<InitReport> {
    let ckpt = Checkpoint::open(path)?;
    let p = &ckpt.path;
    let domain_match = match_domains(&ckpt, domains, "--init")?;
    if let Some(c) = &ckpt.config {
        if c != model_cfg {
            bail!(
                "--init {p}: its model config is {} but this run's is {}; drop the model flags that differ (the file's config is the default with --init)",
                serde_json::to_string(c)?,
                serde_json::to_string(model_cfg)?
            );
        }
    }
    for ((net, online), (_, ema)) in models.nets.modules().into_iter().zip(models.ema.modules()) {
        let ema_key = ema_name(net);
        // The online weights, else the EMA ones (an export holds only those, under the plain
        // names); the error of a missing network names the file and what it has.
        let online_sd = ckpt.net(net).or_else(|e| ckpt.net(&ema_key).map_err(|_| e))?;
        let ema_sd = ckpt.net(&ema_key).or_else(|_| ckpt.net(net))?;
        load_module(online, net, online_sd, p, model_cfg)?;
        load_module(ema, net, ema_sd, p, model_cfg)?;
    }
    let discriminator_from_file = ckpt.has_net(DISCRIMINATOR);
    if discriminator_from_file {
        load_module(&models.discriminator, DISCRIMINATOR, ckpt.net(DISCRIMINATOR)?, p, model_cfg)?;
    }
    if let (Some(fan), true) = (&models.fan, ckpt.has_net(FAN)) {
        load_module(fan, FAN, ckpt.net(FAN)?, p, model_cfg)?;
    }
    let source_iteration =
        [META_SOURCE_ITERATION, META_ITERATION].iter().find_map(|k| ckpt.metadata.get(*k).and_then(|v| v.parse().ok()));
    Ok(InitReport { discriminator_from_file, source_iteration, domains: domain_match })
}

/// Removes all but the newest `keep` checkpoints in `dir`, and the temporary files of
/// saves that a killed run left behind.
pub fn prune(dir: &Path, keep: usize) {
    crate::checkpoint::native::remove_stale_temp_files(dir);
    let all = list(dir);
    if all.len() > keep {
        for (_, p) in &all[..all.len() - keep] {
            let _ = std::fs::remove_file(p);
        }
    }
}
