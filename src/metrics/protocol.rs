//! The StarGAN v2 evaluation protocol (reference.md §3): for every ordered pair of
//! domains src → trg, every validation image of src is translated `num_outs` times
//! (fresh latent codes, or references cycled from trg's validation images); LPIPS is the
//! mean over the output pairs of each source batch, FID compares the outputs with trg's
//! training images.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::fid::{features_of_files, features_of_tensors, fit, frechet_distance, Gaussian, Inception};
use super::lpips::Lpips;
use crate::data::ImageFolder;
use crate::imaging;
use crate::infer::load::LoadedModel;
use crate::train::trainer::latent_codes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Latent,
    Reference,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Latent => "latent",
            Mode::Reference => "reference",
        }
    }
}

pub struct EvalOptions {
    pub train: ImageFolder,
    pub val: ImageFolder,
    pub modes: Vec<Mode>,
    /// Outputs per source image (official: 10).
    pub num_outs: usize,
    pub batch: usize,
    pub seed: u64,
    /// Save every generated image under this folder (`<mode>/<task>/…png`).
    pub keep_images: Option<PathBuf>,
    /// Compute the paired metric (needs the same file names in every domain).
    pub paired: bool,
}

/// Metric name → value, with the official key names.
pub type Results = BTreeMap<String, f64>;

fn load_batch(files: &[PathBuf], size: u32) -> Result<Tensor> {
    let xs: Vec<Tensor> = files.iter().map(|p| imaging::load_tensor(p, size)).collect::<Result<_>>()?;
    Ok(Tensor::cat(&xs, 0))
}

/// Mean LPIPS over all pairs of a group of outputs (each pair averaged over the batch).
fn group_lpips(lpips: &Lpips, group: &[Tensor]) -> f64 {
    let mut vals = Vec::new();
    for i in 0..group.len() {
        for j in i + 1..group.len() {
            vals.push(lpips.distance(&group[i], &group[j]).mean(Kind::Double).double_value(&[]));
        }
    }
    if vals.is_empty() {
        0.0
    } else {
        vals.iter().sum::<f64>() / vals.len() as f64
    }
}

pub fn evaluate(
    m: &LoadedModel,
    inception: &Inception,
    lpips: &Lpips,
    o: &EvalOptions,
    progress: &dyn Fn(usize),
) -> Result<Results> {
    let k = m.cfg.num_domains;
    o.val.expect_domains(k)?;
    o.train.expect_names(&o.val.domains)?;
    let size = m.cfg.img_size as u32;
    let d = m.device;
    let t = m.translator();
    let mut results = Results::new();
    let mut real: HashMap<usize, Gaussian> = HashMap::new();

    for &mode in &o.modes {
        let (mut fids, mut lps) = (Vec::new(), Vec::new());
        for src in 0..k as usize {
            for trg in 0..k as usize {
                if src == trg {
                    continue;
                }
                let task = format!("{}2{}", o.val.domains[src], o.val.domains[trg]);
                if let std::collections::hash_map::Entry::Vacant(e) = real.entry(trg) {
                    e.insert(fit(&features_of_files(inception, &o.train.files[trg], o.batch, &|_| {})?));
                }
                let y_trg_all = Tensor::full([o.batch as i64], trg as i64, (Kind::Int64, d));
                let refs = &o.val.files[trg];
                let mut ref_cursor = 0usize;
                let (mut feats, mut task_lpips) = (Vec::new(), Vec::new());
                for (bi, chunk) in o.val.files[src].chunks(o.batch.max(1)).enumerate() {
                    let x = load_batch(chunk, size)?.to_device(d);
                    let n = x.size()[0];
                    let y = y_trg_all.narrow(0, 0, n);
                    let masks = t.masks(&x);
                    let mut group = Vec::with_capacity(o.num_outs);
                    for j in 0..o.num_outs {
                        let s = match mode {
                            Mode::Latent => {
                                let stream = ((src * 64 + trg) as u64) << 32 | (bi as u64) << 8 | j as u64;
                                let z = latent_codes(o.seed, stream, 6, n, m.cfg.latent_dim).to_device(d);
                                t.latent_style(&z, &y)
                            }
                            Mode::Reference => {
                                // Offset by j so that consecutive outputs pair each source with a different
                                // reference even when the domain has few images.
                                let picked: Vec<PathBuf> =
                                    (0..n as usize).map(|i| refs[(ref_cursor + i + j) % refs.len()].clone()).collect();
                                ref_cursor = (ref_cursor + n as usize) % refs.len();
                                t.reference_style(&load_batch(&picked, size)?.to_device(d), &y)
                            }
                        };
                        let fake = t.generate_masked(&x, &s, masks.as_ref());
                        feats.push(features_of_tensors(inception, &fake)?);
                        if let Some(dir) = &o.keep_images {
                            for (i, img) in imaging::to_images(&fake).iter().enumerate() {
                                let idx = bi * o.batch + i + 1;
                                imaging::save(
                                    img,
                                    &dir.join(mode.name()).join(&task).join(format!("{idx:04}_{:02}.png", j + 1)),
                                )?;
                            }
                        }
                        group.push(fake);
                        progress(n as usize);
                    }
                    task_lpips.push(group_lpips(lpips, &group));
                }
                let fid = frechet_distance(&fit(&Tensor::cat(&feats, 0)), &real[&trg]);
                let lp = task_lpips.iter().sum::<f64>() / task_lpips.len().max(1) as f64;
                results.insert(format!("FID_{}/{task}", mode.name()), fid);
                results.insert(format!("LPIPS_{}/{task}", mode.name()), lp);
                fids.push(fid);
                lps.push(lp);
            }
        }
        results.insert(format!("FID_{}/mean", mode.name()), fids.iter().sum::<f64>() / fids.len().max(1) as f64);
        results.insert(format!("LPIPS_{}/mean", mode.name()), lps.iter().sum::<f64>() / lps.len().max(1) as f64);
    }
    if o.paired {
        results.extend(paired(m, lpips, o)?);
    }
    Ok(results)
}

/// Number of generated images `evaluate` will produce (for progress bars).
pub fn total_outputs(o: &EvalOptions) -> usize {
    let k = o.val.domains.len();
    let per_mode: usize = (0..k).map(|s| o.val.files[s].len() * (k - 1) * o.num_outs).sum();
    per_mode * o.modes.len()
}

fn stem(p: &std::path::Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()
}

/// Whether the validation domains hold the same file names (paired ground truth, as in
/// the emoji data set).
pub fn is_paired(val: &ImageFolder) -> bool {
    let sets: Vec<std::collections::HashSet<String>> =
        val.files.iter().map(|f| f.iter().map(|p| stem(p)).collect()).collect();
    let common = sets[0].iter().filter(|s| sets.iter().all(|o| o.contains(*s))).count();
    sets.len() > 1 && common >= 2 && common * 2 >= sets[0].len()
}

/// The paired metric: for each src → trg and each emoji present in both, translate the
/// src rendering with the style of another trg emoji (a reference) and compare with the
/// real trg rendering of the same emoji: LPIPS and L1 (images clamped to [-1, 1]).
pub fn paired(m: &LoadedModel, lpips: &Lpips, o: &EvalOptions) -> Result<Results> {
    let size = m.cfg.img_size as u32;
    let (d, t) = (m.device, m.translator());
    let by_stem: Vec<HashMap<String, PathBuf>> =
        o.val.files.iter().map(|f| f.iter().map(|p| (stem(p), p.clone())).collect()).collect();
    let mut out = Results::new();
    let (mut all_lp, mut all_l1) = (Vec::new(), Vec::new());
    let k = o.val.domains.len();
    for src in 0..k {
        for trg in 0..k {
            if src == trg {
                continue;
            }
            let mut keys: Vec<&String> = by_stem[src].keys().filter(|s| by_stem[trg].contains_key(*s)).collect();
            keys.sort();
            if keys.len() < 2 {
                bail!(
                    "paired metric: {} and {} share fewer than two file names",
                    o.val.domains[src],
                    o.val.domains[trg]
                );
            }
            let (mut lp, mut l1, mut count) = (0.0, 0.0, 0usize);
            for (ci, chunk) in keys.chunks(o.batch.max(1)).enumerate() {
                let srcs: Vec<PathBuf> = chunk.iter().map(|s| by_stem[src][*s].clone()).collect();
                let gts: Vec<PathBuf> = chunk.iter().map(|s| by_stem[trg][*s].clone()).collect();
                // The reference is the next emoji in order: same domain, different content.
                let refs: Vec<PathBuf> =
                    (0..chunk.len()).map(|i| by_stem[trg][keys[(ci * o.batch + i + 1) % keys.len()]].clone()).collect();
                let x = load_batch(&srcs, size)?.to_device(d);
                let gt = load_batch(&gts, size)?.to_device(d);
                let y = Tensor::full([x.size()[0]], trg as i64, (Kind::Int64, d));
                let fake =
                    t.generate(&x, &t.reference_style(&load_batch(&refs, size)?.to_device(d), &y)).clamp(-1.0, 1.0);
                lp += lpips.distance(&fake, &gt).sum(Kind::Double).double_value(&[]);
                l1 += (&fake - &gt)
                    .abs()
                    .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Double)
                    .sum(Kind::Double)
                    .double_value(&[]);
                count += chunk.len();
            }
            let task = format!("{}2{}", o.val.domains[src], o.val.domains[trg]);
            out.insert(format!("paired_LPIPS/{task}"), lp / count as f64);
            out.insert(format!("paired_L1/{task}"), l1 / count as f64);
            all_lp.push(lp / count as f64);
            all_l1.push(l1 / count as f64);
        }
    }
    out.insert("paired_LPIPS/mean".into(), all_lp.iter().sum::<f64>() / all_lp.len() as f64);
    out.insert("paired_L1/mean".into(), all_l1.iter().sum::<f64>() / all_l1.len() as f64);
    Ok(out)
}
