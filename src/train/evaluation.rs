//! Evaluation while training: the evaluation protocol on a fixed subset of the
//! validation split, with the EMA networks, every so many iterations. The figures go to
//! `<run>/eval.jsonl` and the report plots them, which is how a run shows that it is
//! getting better.
//!
//! It draws nothing from the training's random streams and changes no training state,
//! so a run with evaluations trains exactly as one without.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::trainer::TrainOptions;
use super::Models;
use crate::data::ImageFolder;
use crate::infer::Translator;
use crate::metrics::fid::Inception;
use crate::metrics::lpips::Lpips;
use crate::metrics::protocol::{evaluate, is_paired, EvalOptions, Mode, Results, Scorer, Subject};

/// When and how much to evaluate.
#[derive(Clone, Debug)]
pub struct EvalSchedule {
    /// Every so many iterations (and at the end).
    pub every: i64,
    /// Validation images per domain (a fixed, evenly spread subset).
    pub max_per_domain: usize,
    /// Outputs per source; LPIPS diversity is reported from 2.
    pub num_outs: usize,
    pub batch: usize,
    /// The metric weights (see `metrics::weights`).
    pub inception: PathBuf,
    pub lpips: PathBuf,
    /// Folder of the cached Inception features of the training images.
    pub feature_cache: Option<PathBuf>,
}

pub struct PeriodicEval {
    every: i64,
    scorer: Scorer,
    opts: EvalOptions,
    log: PathBuf,
    device: tch::Device,
    latent_dim: i64,
}

/// The figures printed after each evaluation.
const SUMMARY: [(&str, &str); 5] = [
    ("FID_latent/mean", "FID lat"),
    ("FID_reference/mean", "FID ref"),
    ("ACC_latent/mean", "ACC lat"),
    ("ACC_reference/mean", "ACC ref"),
    ("paired_LPIPS/mean", "paired LPIPS"),
];

impl PeriodicEval {
    pub fn new(s: &EvalSchedule, train: &ImageFolder, val: &ImageFolder, topts: &TrainOptions) -> Result<Self> {
        let device = topts.device;
        let inception = Inception::load(&s.inception, device)?;
        let lpips = Lpips::load(&s.lpips, device)?;
        eprintln!(
            "evaluation every {} iterations on {} validation images per domain; reading the Inception features of {} \
             training images (cached after the first time)",
            s.every,
            s.max_per_domain,
            train.len()
        );
        let scorer = Scorer::prepare(inception, lpips, train, s.batch, s.feature_cache.as_deref(), &|_| {})?;
        let opts = EvalOptions {
            val: val.clone(),
            modes: vec![Mode::Latent, Mode::Reference],
            num_outs: s.num_outs,
            batch: s.batch,
            seed: topts.train.seed,
            img_size: topts.model.img_size as u32,
            max_per_domain: Some(s.max_per_domain),
            keep_images: None,
            paired: is_paired(val),
        };
        Ok(PeriodicEval {
            every: s.every,
            scorer,
            opts,
            log: topts.out.join("eval.jsonl"),
            device,
            latent_dim: topts.model.latent_dim,
        })
    }

    pub fn every(&self) -> i64 {
        self.every
    }

    /// Evaluates the EMA networks, appends the figures to `eval.jsonl` and returns a
    /// one-line summary.
    pub fn run(&self, models: &Models, iteration: i64, elapsed_s: f64) -> Result<String> {
        let t = Translator {
            nets: &models.ema,
            fan: models.fan.as_ref(),
            device: self.device,
            latent_dim: self.latent_dim,
        };
        let started = std::time::Instant::now();
        let results: Results = evaluate(&Subject::Model(t), &self.scorer, &self.opts, &|_| {})?;
        let mut rec = serde_json::Map::new();
        rec.insert("iteration".into(), iteration.into());
        rec.insert("elapsed_s".into(), elapsed_s.into());
        rec.insert("eval_s".into(), started.elapsed().as_secs_f64().into());
        rec.insert("images_per_domain".into(), (self.opts.max_per_domain.unwrap_or(0) as u64).into());
        for (k, v) in &results {
            rec.insert(k.clone(), (*v).into());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        writeln!(f, "{}", serde_json::Value::Object(rec))
            .with_context(|| format!("cannot write {}", self.log.display()))?;
        Ok(SUMMARY
            .iter()
            .filter_map(|(k, label)| results.get(*k).map(|v| format!("{label} {v:.3}")))
            .collect::<Vec<_>>()
            .join(", "))
    }
}
