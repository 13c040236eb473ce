//! Exporting a model for inference: the EMA generator, mapping network and style
//! encoder with the model configuration and domain names, optionally stored as float16,
//! without the discriminator or the optimizer state (a training checkpoint is ~4× larger).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::load::{load_model, LoadedModel, ModelSource};
use crate::checkpoint::native::{metadata, write_atomic};
use crate::checkpoint::schema::{KIND_INFERENCE, META_ITERATION, META_KIND, META_SOURCE, META_SOURCE_ITERATION};
use crate::checkpoint::Checkpoint;
use crate::imaging;

pub struct ExportReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// Largest difference, in 8-bit levels, between the translations of the written file
    /// and of the source networks in float32 (0 when stored as float32).
    pub max_level_diff: i64,
}

/// Translations of a fixed batch as 8-bit images, what a user sees of a model: the
/// bundled example images when the model's domains are theirs, else random sources;
/// each into every domain with latent and reference styles.
fn probe(m: &LoadedModel) -> Result<Vec<u8>> {
    tch::manual_seed(1234);
    let s = m.cfg.img_size;
    let k = m.cfg.num_domains;
    let examples =
        crate::data::ImageFolder::open(&crate::files::example_emoji()).ok().filter(|e| e.domains == m.domains);
    let x = match examples {
        Some(e) => {
            let xs: Vec<Tensor> =
                e.files.iter().flatten().map(|p| imaging::load_tensor(p, s as u32)).collect::<Result<_>>()?;
            Tensor::cat(&xs, 0)
        }
        None => Tensor::rand([2 * k, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0,
    };
    let n = x.size()[0];
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(k);
    let z = Tensor::randn([n, m.cfg.latent_dim], (Kind::Float, Device::Cpu));
    let t = m.translator();
    let latent = t.generate(&x, &t.latent_style(&z, &y));
    let reference = t.generate(&x, &t.reference_style(&x.flip([0]), &y));
    Ok(imaging::to_images(&Tensor::cat(&[latent, reference], 0)).into_iter().flat_map(|i| i.into_raw()).collect())
}

/// Writes the inference networks of `checkpoint` to `out` (with the face-alignment
/// network when the model uses masks: from the checkpoint, or from `wing`); with `half`,
/// G, F and E as float16, which is refused if any probe pixel moves by more than one
/// 8-bit level.
pub fn export(checkpoint: &Path, out: &Path, half: bool, wing: Option<&Path>) -> Result<ExportReport> {
    let source = Checkpoint::open(checkpoint)?;
    let iteration = source.metadata.get(META_ITERATION).cloned();
    drop(source);
    let src =
        ModelSource { checkpoint: checkpoint.to_path_buf(), wing: wing.map(Path::to_path_buf), ..Default::default() };
    let m = load_model(&src, Device::Cpu)?;
    let mut tensors = Vec::new();
    for (net, module) in m.nets.modules() {
        for t in module.named_tensors() {
            let v = if half && t.tensor.is_floating_point() { t.tensor.to_kind(Kind::Half) } else { t.tensor };
            tensors.push((format!("{net}.{}", t.name), v));
        }
    }
    // The FAN stays float32: its heatmaps feed a thresholded mask.
    if let Some(fan) = &m.fan {
        for t in crate::model::Module::named_tensors(fan) {
            tensors.push((format!("{}.{}", crate::model::FAN, t.name), t.tensor));
        }
    }
    let mut extra = vec![
        (META_KIND, KIND_INFERENCE.to_string()),
        (META_SOURCE, checkpoint.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default()),
    ];
    if let Some(i) = iteration {
        extra.push((META_SOURCE_ITERATION, i));
    }
    // Written beside the target first, checked, then moved into place: a failed check
    // leaves an existing file at `out` untouched.
    let staging = out.with_extension("staging.safetensors");
    write_atomic(&staging, &tensors, metadata(&m.cfg, &m.domains, &extra))?;
    let checked = check_written(&m, &staging);
    if checked.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    let max_level_diff = checked?;
    if let Err(e) = std::fs::rename(&staging, out) {
        let _ = std::fs::remove_file(&staging);
        return Err(anyhow::Error::new(e).context(format!("cannot move the export into place at {}", out.display())));
    }
    // Make the rename itself durable.
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(ExportReport { path: out.to_path_buf(), bytes: std::fs::metadata(out)?.len(), max_level_diff })
}

/// Loads the file written at `staging` and compares its translations with the source
/// model's; returns the largest difference in 8-bit levels, or an error above one.
fn check_written(m: &LoadedModel, staging: &Path) -> Result<i64> {
    let written = load_model(&ModelSource { checkpoint: staging.to_path_buf(), ..Default::default() }, Device::Cpu)?;
    let (a, b) = (probe(m)?, probe(&written)?);
    let diffs: Vec<i64> = a.iter().zip(&b).map(|(p, q)| (*p as i64 - *q as i64).abs()).collect();
    let max_level_diff = diffs.iter().copied().max().unwrap_or(0);
    eprintln!(
        "float32 vs stored: {} of {} probe pixel values differ, by at most {max_level_diff} of 255",
        diffs.iter().filter(|d| **d > 0).count(),
        diffs.len()
    );
    if max_level_diff > 1 {
        bail!(
            "stored as float16 the model's translations move by up to {max_level_diff} levels of 255; export it without --half"
        );
    }
    Ok(max_level_diff)
}
