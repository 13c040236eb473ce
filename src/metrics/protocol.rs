//! The StarGAN v2 evaluation protocol (reference.md §3): for every ordered pair of
//! domains src → trg, every validation image of src is translated `num_outs` times
//! (fresh latent codes, or references cycled from trg's validation images); LPIPS is the
//! mean over the output pairs of each source batch, FID compares the outputs with trg's
//! training images.
//!
//! Two additions of ours, computed from the same images: the style accuracy (the
//! fraction of outputs that a linear classifier over the Inception features, fitted on
//! the real training images, assigns to the target domain) and, where every domain holds
//! the same file names, a paired distance to the real target rendering. Two baselines
//! go through the very same code: *identity* (each output is its untranslated source)
//! and *real* (real validation images of the target in place of the outputs).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::fid::{cached_features_of_files, features_of_tensors, fit, frechet_distance, Gaussian, Inception};
use super::lpips::Lpips;
use super::style::StyleClassifier;
use crate::data::ImageFolder;
use crate::imaging;
use crate::infer::Translator;
use crate::rng::{latent_codes, Stream};

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

/// What produces the images being scored.
pub enum Subject<'a> {
    /// A model's translations.
    Model(Translator<'a>),
    /// Each output is its source, untranslated: what doing nothing scores.
    Identity,
    /// Real validation images of the target domain in place of the outputs: the best a
    /// model can score (the floor of FID, the ceiling of style accuracy).
    Real,
}

impl Subject<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Subject::Model(_) => "model",
            Subject::Identity => "identity",
            Subject::Real => "real",
        }
    }
}

pub struct EvalOptions {
    pub val: ImageFolder,
    pub modes: Vec<Mode>,
    /// Outputs per source image (official: 10). LPIPS diversity needs at least two.
    pub num_outs: usize,
    pub batch: usize,
    pub seed: u64,
    /// Side of the images fed to the model (and of the baselines' outputs).
    pub img_size: u32,
    /// Use at most this many validation images per domain, spread evenly over the sorted
    /// list (a fixed subset, for evaluations during training).
    pub max_per_domain: Option<usize>,
    /// Save every output under this folder (`<mode>/<task>/…png`).
    pub keep_images: Option<PathBuf>,
    /// Compute the paired metric (needs the same file names in every domain).
    pub paired: bool,
}

/// Metric name → value, with the official key names.
pub type Results = BTreeMap<String, f64>;

/// What stays fixed across evaluations on one data set: the metric networks, the
/// Gaussians of the real training images of every domain, and the style classifier
/// fitted on them.
pub struct Scorer {
    pub inception: Inception,
    pub lpips: Lpips,
    real: Vec<Gaussian>,
    pub classifier: StyleClassifier,
    pub domains: Vec<String>,
}

impl Scorer {
    /// Computes (or reads from `cache`) the features of every training image.
    pub fn prepare(
        inception: Inception,
        lpips: Lpips,
        train: &ImageFolder,
        batch: usize,
        cache: Option<&Path>,
        progress: &dyn Fn(usize),
    ) -> Result<Self> {
        let mut feats = Vec::new();
        for files in &train.files {
            if files.len() < 5 {
                bail!(
                    "{}: every domain needs at least 5 training images for FID and the style classifier ({} has {})",
                    train.root.display(),
                    files[0].parent().unwrap_or(Path::new("?")).display(),
                    files.len()
                );
            }
            feats.push(cached_features_of_files(&inception, files, batch, cache, progress)?);
        }
        let real = feats.iter().map(fit).collect();
        let classifier = StyleClassifier::fit(&feats);
        Ok(Scorer { inception, lpips, real, classifier, domains: train.domains.clone() })
    }

    /// Number of training images `prepare` reads (for progress bars).
    pub fn images_to_prepare(train: &ImageFolder) -> usize {
        train.len()
    }
}

/// At most `max` items, spread evenly over the list.
pub fn spread<T: Clone>(items: &[T], max: Option<usize>) -> Vec<T> {
    match max {
        Some(m) if m < items.len() => (0..m).map(|i| items[i * items.len() / m].clone()).collect(),
        _ => items.to_vec(),
    }
}

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
    vals.iter().sum::<f64>() / vals.len().max(1) as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Prefix of the keys that say which domain a task's outputs were classified as.
pub const CLASSIFIED: &str = "CLS";

/// The scores of one task src → trg in one mode.
struct TaskScores {
    fid: f64,
    /// Absent with a single output per source.
    lpips: Option<f64>,
    acc: f64,
    /// The fraction of outputs classified as each domain (`acc` is the target's).
    classified: Vec<f64>,
}

/// One ordered pair of domains.
struct Task<'a> {
    mode: Mode,
    src: usize,
    trg: usize,
    name: String,
    sources: &'a [PathBuf],
    refs: &'a [PathBuf],
}

fn run_task(
    subject: &Subject,
    scorer: &Scorer,
    o: &EvalOptions,
    task: &Task,
    progress: &dyn Fn(usize),
) -> Result<TaskScores> {
    let (size, batch) = (o.img_size, o.batch.max(1));
    let (mut feats, mut diversity) = (Vec::new(), Vec::new());
    for (bi, chunk) in task.sources.chunks(batch).enumerate() {
        let x = load_batch(chunk, size)?;
        let n = x.size()[0];
        let (x, masks) = match subject {
            Subject::Model(t) => {
                let x = x.to_device(t.device);
                let m = t.masks(&x);
                (x, m)
            }
            _ => (x, None),
        };
        let mut group = Vec::with_capacity(o.num_outs);
        for j in 0..o.num_outs {
            // Output j of source i uses reference (i · num_outs + j) of the target: every
            // output pairs its source with a different reference, and with one output per
            // source each real target image is used once.
            let refs = || -> Vec<PathBuf> {
                (0..n as usize)
                    .map(|i| task.refs[((bi * batch + i) * o.num_outs + j) % task.refs.len()].clone())
                    .collect()
            };
            let fake = match subject {
                Subject::Model(t) => {
                    let y = Tensor::full([n], task.trg as i64, (Kind::Int64, t.device));
                    let s = match task.mode {
                        Mode::Latent => {
                            let index = ((task.src * 64 + task.trg) as u64) << 32 | (bi as u64) << 8 | j as u64;
                            t.latent_style(
                                &latent_codes(o.seed, Stream::Eval, index, n, t.latent_dim).to_device(t.device),
                                &y,
                            )
                        }
                        Mode::Reference => t.reference_style(&load_batch(&refs(), size)?.to_device(t.device), &y),
                    };
                    t.generate_masked(&x, &s, masks.as_ref())
                }
                Subject::Identity => x.shallow_clone(),
                Subject::Real => load_batch(&refs(), size)?,
            };
            feats.push(features_of_tensors(&scorer.inception, &fake)?);
            if let Some(dir) = &o.keep_images {
                for (i, img) in imaging::to_images(&fake).iter().enumerate() {
                    let idx = bi * batch + i + 1;
                    imaging::save(
                        img,
                        &dir.join(task.mode.name()).join(&task.name).join(format!("{idx:04}_{:02}.png", j + 1)),
                    )?;
                }
            }
            group.push(fake);
            progress(n as usize);
        }
        if o.num_outs >= 2 {
            diversity.push(group_lpips(&scorer.lpips, &group));
        }
    }
    let feats = Tensor::cat(&feats, 0);
    Ok(TaskScores {
        fid: frechet_distance(&fit(&feats), &scorer.real[task.trg]),
        lpips: (o.num_outs >= 2).then(|| mean(&diversity)),
        acc: scorer.classifier.accuracy(&feats, task.trg as i64),
        classified: scorer.classifier.class_fractions(&feats, scorer.domains.len()),
    })
}

/// Runs the protocol for `subject`; results carry the official keys (`FID_latent/cat2dog`,
/// `LPIPS_reference/mean`, …) plus `ACC_<mode>/<task>`, `CLS_<mode>/<task>/<domain>` (the
/// fraction of the task's outputs classified as that domain) and the paired metric.
pub fn evaluate(subject: &Subject, scorer: &Scorer, o: &EvalOptions, progress: &dyn Fn(usize)) -> Result<Results> {
    o.val.expect_names(&scorer.domains)?;
    let k = o.val.domains.len();
    let val: Vec<Vec<PathBuf>> = o.val.files.iter().map(|f| spread(f, o.max_per_domain)).collect();
    let mut results = Results::new();
    for &mode in &o.modes {
        let m = mode.name();
        let (mut fids, mut lps, mut accs) = (Vec::new(), Vec::new(), Vec::new());
        for src in 0..k {
            for trg in (0..k).filter(|&t| t != src) {
                let task = Task {
                    mode,
                    src,
                    trg,
                    name: format!("{}2{}", o.val.domains[src], o.val.domains[trg]),
                    sources: &val[src],
                    refs: &val[trg],
                };
                let s = run_task(subject, scorer, o, &task, progress)?;
                results.insert(format!("FID_{m}/{}", task.name), s.fid);
                results.insert(format!("ACC_{m}/{}", task.name), s.acc);
                for (domain, fraction) in scorer.domains.iter().zip(&s.classified) {
                    results.insert(format!("{CLASSIFIED}_{m}/{}/{domain}", task.name), *fraction);
                }
                fids.push(s.fid);
                accs.push(s.acc);
                if let Some(l) = s.lpips {
                    results.insert(format!("LPIPS_{m}/{}", task.name), l);
                    lps.push(l);
                }
            }
        }
        results.insert(format!("FID_{m}/mean"), mean(&fids));
        results.insert(format!("ACC_{m}/mean"), mean(&accs));
        if !lps.is_empty() {
            results.insert(format!("LPIPS_{m}/mean"), mean(&lps));
        }
    }
    if o.paired {
        results.extend(paired(subject, &scorer.lpips, o)?);
    }
    Ok(results)
}

/// Number of outputs `evaluate` will produce (for progress bars).
pub fn total_outputs(o: &EvalOptions) -> usize {
    let k = o.val.domains.len();
    let per_mode: usize = (0..k).map(|s| spread(&o.val.files[s], o.max_per_domain).len() * (k - 1) * o.num_outs).sum();
    per_mode * o.modes.len()
}

fn stem(p: &Path) -> String {
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

/// The paired metric: for each src → trg and each image name present in both, translate
/// the src rendering with the style of another trg image (a reference) and compare with
/// the real trg rendering of the same name: LPIPS and L1 (images clamped to [-1, 1]).
/// With `max_per_domain`, the subset is taken from the names the two domains share (not
/// by position in each domain), so that it stays paired however the domains differ.
fn paired(subject: &Subject, lpips: &Lpips, o: &EvalOptions) -> Result<Results> {
    let size = o.img_size;
    let by_stem: Vec<HashMap<String, PathBuf>> =
        o.val.files.iter().map(|f| f.iter().map(|p| (stem(p), p.clone())).collect()).collect();
    let val = &o.val.files;
    let mut out = Results::new();
    let (mut all_lp, mut all_l1) = (Vec::new(), Vec::new());
    let k = val.len();
    let batch = o.batch.max(1);
    for src in 0..k {
        for trg in (0..k).filter(|&t| t != src) {
            let mut keys: Vec<&String> = by_stem[src].keys().filter(|s| by_stem[trg].contains_key(*s)).collect();
            keys.sort();
            if keys.len() < 2 {
                bail!(
                    "paired metric: {} and {} share fewer than two file names",
                    o.val.domains[src],
                    o.val.domains[trg]
                );
            }
            let keys = spread(&keys, o.max_per_domain);
            if keys.len() < 2 {
                bail!("paired metric: --max-per-domain {} leaves fewer than two pairs; use 2 or more", keys.len());
            }
            let (mut lp, mut l1) = (0.0, 0.0);
            for (ci, chunk) in keys.chunks(batch).enumerate() {
                let files =
                    |d: usize, ks: &[&String]| -> Vec<PathBuf> { ks.iter().map(|s| by_stem[d][*s].clone()).collect() };
                let x = load_batch(&files(src, chunk), size)?;
                let gt = load_batch(&files(trg, chunk), size)?;
                let fake = match subject {
                    Subject::Model(t) => {
                        // The reference is the next name in order: same domain, other content.
                        let refs: Vec<&String> =
                            (0..chunk.len()).map(|i| keys[(ci * batch + i + 1) % keys.len()]).collect();
                        let d = t.device;
                        let y = Tensor::full([x.size()[0]], trg as i64, (Kind::Int64, d));
                        let s = t.reference_style(&load_batch(&files(trg, &refs), size)?.to_device(d), &y);
                        t.generate(&x.to_device(d), &s).clamp(-1.0, 1.0).to_device(tch::Device::Cpu)
                    }
                    Subject::Identity => x,
                    Subject::Real => gt.shallow_clone(),
                };
                lp += lpips.distance(&fake, &gt).sum(Kind::Double).double_value(&[]);
                l1 += (&fake - &gt)
                    .abs()
                    .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Double)
                    .sum(Kind::Double)
                    .double_value(&[]);
            }
            let task = format!("{}2{}", o.val.domains[src], o.val.domains[trg]);
            let count = keys.len() as f64;
            out.insert(format!("paired_LPIPS/{task}"), lp / count);
            out.insert(format!("paired_L1/{task}"), l1 / count);
            all_lp.push(lp / count);
            all_l1.push(l1 / count);
        }
    }
    out.insert("paired_LPIPS/mean".into(), mean(&all_lp));
    out.insert("paired_L1/mean".into(), mean(&all_l1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_picks_evenly_and_keeps_short_lists() {
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(spread(&v, Some(4)), [0, 2, 5, 7]);
        assert_eq!(spread(&v, Some(20)), v);
        assert_eq!(spread(&v, None), v);
    }
}
