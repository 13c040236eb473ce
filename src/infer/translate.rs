//! Translating source images into a domain with latent or reference styles.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use image::RgbImage;
use tch::{Kind, Tensor};

use super::load::LoadedModel;
use super::truncate;
use crate::imaging;
use crate::rng::{latent_codes, Stream};

/// How styles are chosen.
pub enum StyleMode {
    /// `count` latent codes from `seed`, truncated toward the mean style by ψ.
    Latent { count: usize, seed: u64, psi: f64, mean_style_samples: i64 },
    /// The style of each reference image.
    Reference(Vec<PathBuf>),
}

pub struct TranslateJob<'a> {
    pub model: &'a LoadedModel,
    pub sources: Vec<PathBuf>,
    pub domain: String,
    pub mode: StyleMode,
    pub out: PathBuf,
    pub batch: usize,
    /// Folder of the mean-style cache (None: no caching).
    pub cache: Option<PathBuf>,
}

pub struct TranslateReport {
    pub files: Vec<PathBuf>,
    pub grid: PathBuf,
}

fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into())
}

/// The seed of the codes averaged into a domain's mean style: fixed, so that the mean
/// style is the model's, the same whatever the seed of the styles it truncates.
const MEAN_STYLE_SEED: u64 = 0;

/// The domain's mean style over `n` codes, cached on disk keyed by the checkpoint's path,
/// size and modification time, the domain and n.
pub fn mean_style(model: &LoadedModel, domain: i64, n: i64, cache: Option<&Path>) -> Result<Tensor> {
    let seed = MEAN_STYLE_SEED;
    let key = {
        use sha2::Digest;
        let checkpoint = &model.path;
        let meta = std::fs::metadata(checkpoint)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let canon = std::fs::canonicalize(checkpoint).unwrap_or_else(|_| checkpoint.to_path_buf());
        let s = format!("{}|{}|{mtime}|{domain}|{n}|{seed}|{}", canon.display(), meta.len(), model.ema);
        hex::encode(sha2::Sha256::digest(s.as_bytes()))[..24].to_string()
    };
    let file = cache.map(|c| c.join(format!("mean-style-{key}.safetensors")));
    if let Some(f) = &file {
        if let Ok(v) = Tensor::read_safetensors(f) {
            if let Some((_, t)) = v.into_iter().next() {
                return Ok(t.to_device(model.device));
            }
        }
    }
    let t = model.translator();
    let mut k = 0u64;
    let s = t.mean_style(domain, n, &mut |m| {
        k += 1;
        latent_codes(seed, Stream::MeanStyle, u64::MAX - k, m, model.cfg.latent_dim)
    });
    if let Some(f) = &file {
        if let Some(dir) = f.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = f.with_extension("tmp");
        if Tensor::write_safetensors(&[("mean_style", &s.to_device(tch::Device::Cpu))], &tmp).is_ok() {
            let _ = std::fs::rename(&tmp, f);
        }
    }
    Ok(s)
}

pub fn run(job: &TranslateJob) -> Result<TranslateReport> {
    let m = job.model;
    let y = m.domain_index(&job.domain)?;
    let size = m.cfg.img_size as u32;
    let t = m.translator();
    let d = m.device;
    std::fs::create_dir_all(&job.out)?;

    // Styles: one row of S codes shared by every source.
    let (styles, labels): (Tensor, Vec<String>) = match &job.mode {
        StyleMode::Latent { count, seed, psi, mean_style_samples } => {
            if *count == 0 {
                bail!("--styles must be at least 1");
            }
            let z = latent_codes(*seed, Stream::TranslateStyles, 0, *count as i64, m.cfg.latent_dim).to_device(d);
            let yy = Tensor::full([*count as i64], y, (Kind::Int64, d));
            let mut s = t.latent_style(&z, &yy);
            if *psi != 1.0 {
                let avg = mean_style(m, y, *mean_style_samples, job.cache.as_deref())?;
                s = truncate(&avg.expand_as(&s), &s, *psi);
            }
            (s, (0..*count).map(|j| format!("style{j:02}")).collect())
        }
        StyleMode::Reference(refs) => {
            if refs.is_empty() {
                bail!("no reference images");
            }
            let mut ss = Vec::new();
            for chunk in refs.chunks(job.batch.max(1)) {
                let xs: Vec<Tensor> = chunk.iter().map(|p| imaging::load_tensor(p, size)).collect::<Result<_>>()?;
                let x = Tensor::cat(&xs, 0).to_device(d);
                ss.push(t.reference_style(&x, &Tensor::full([x.size()[0]], y, (Kind::Int64, d))));
            }
            (Tensor::cat(&ss, 0), refs.iter().map(|p| format!("ref-{}", stem(p))).collect())
        }
    };
    let n_styles = styles.size()[0];

    let mut rows: Vec<RgbImage> = Vec::new();
    let mut files = Vec::new();
    for chunk in job.sources.chunks(job.batch.max(1)) {
        let xs: Vec<Tensor> = chunk.iter().map(|p| imaging::load_tensor(p, size)).collect::<Result<_>>()?;
        let x = Tensor::cat(&xs, 0).to_device(d);
        let masks = t.masks(&x);
        let b = x.size()[0];
        let mut outs: Vec<Vec<RgbImage>> = vec![Vec::new(); b as usize];
        for j in 0..n_styles {
            let s = styles.narrow(0, j, 1).expand([b, -1], true);
            let fake = t.generate_masked(&x, &s, masks.as_ref());
            for (i, img) in imaging::to_images(&fake).into_iter().enumerate() {
                let path =
                    job.out.join(format!("{}_{}_{}.png", stem(&chunk[i]), m.domains[y as usize], labels[j as usize]));
                imaging::save(&img, &path)?;
                files.push(path);
                outs[i].push(img);
            }
        }
        for (i, src) in imaging::to_images(&x).into_iter().enumerate() {
            rows.push(src);
            rows.append(&mut outs[i]);
        }
    }
    // Grid: one row per source (the source, then its translations); with references, a
    // first row shows them above their columns.
    let ncol = n_styles as usize + 1;
    let mut tiles = Vec::new();
    if let StyleMode::Reference(refs) = &job.mode {
        tiles.push(imaging::blank(size, size));
        for r in refs {
            tiles.push(imaging::resize(&imaging::load_rgb(r)?, size, size));
        }
    }
    tiles.extend(rows);
    let grid = job.out.join("grid.png");
    imaging::save(&imaging::grid(&tiles, ncol), &grid)?;
    Ok(TranslateReport { files, grid })
}
