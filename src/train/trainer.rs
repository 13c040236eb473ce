//! The training loop: data, the step, logging, samples, checkpoints and resume. The
//! step itself ([`super::step`]) does no I/O; everything around it lives here.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Device, Kind, Tensor};

use super::checkpoint::{self as ckpt, Progress};
use super::step::{train_step, Batch, Optimizers};
use super::{report, Models, TrainConfig};
use crate::checkpoint::{load_module, Checkpoint};
use crate::config::ModelConfig;
use crate::data::folder::ImageFolder;
use crate::data::loader::{Loader, LoaderConfig};
use crate::imaging;
use crate::infer::{grids, Translator};
use crate::model::{Init, FAN};

#[derive(Clone, Debug)]
pub enum Resume {
    /// Start from scratch (fails if the output folder already has checkpoints).
    No,
    /// Continue from the newest checkpoint in `<out>/checkpoints`.
    Latest,
    /// Continue from this checkpoint file.
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub val: Option<PathBuf>,
    pub out: PathBuf,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub device: Device,
    pub workers: usize,
    pub prefetch: usize,
    pub print_every: i64,
    pub sample_every: i64,
    pub save_every: i64,
    pub keep_last: usize,
    pub resume: Resume,
    /// FAN weights (wing.ckpt or a checkpoint with a `fan` entry), needed when w_hpf > 0.
    pub wing: Option<PathBuf>,
    /// Number of source (and reference) images in the sample grids.
    pub sample_size: i64,
    /// Latent codes averaged for the mean style of the ψ grids (official: 10,000).
    pub mean_style_samples: i64,
    pub progress_bar: bool,
}

pub struct TrainSummary {
    pub iterations: i64,
    pub last_checkpoint: Option<PathBuf>,
    pub last_losses: Vec<(String, f64)>,
    pub skipped_images: usize,
}

/// Latent codes for iteration `it`, stream `which` (0: z_trg, 1: z_trg2, 2+: samples):
/// a pure function of the seed so that a resumed run draws the same codes.
pub fn latent_codes(seed: u64, it: u64, which: u64, n: i64, dim: i64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x2A2A_0000 ^ it.wrapping_mul(0x100_0000_01B3) ^ (which << 56));
    let v: Vec<f32> = (0..n * dim).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_slice(&v).view([n, dim])
}

/// Loads the FAN weights for a model with the high-pass path.
fn load_fan(models: &Models, opts: &TrainOptions) -> Result<()> {
    let Some(fan) = &models.fan else { return Ok(()) };
    let Some(path) = &opts.wing else {
        bail!("w_hpf > 0 needs the face-alignment network: pass --wing expr/checkpoints/wing.ckpt (official), or train with --w-hpf 0");
    };
    let c = Checkpoint::open(path)?;
    load_module(fan, FAN, c.net(FAN)?, &c.path, &opts.model)?;
    Ok(())
}

/// Fixed images for the sample grids: `n` sources and `n` references, spread over the
/// domains, with their labels.
fn sample_images(folder: &ImageFolder, n: i64, img_size: u32, seed: u64) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    use rand::seq::SliceRandom;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5A3B_1E00_u64);
    let mut per_domain: Vec<Vec<PathBuf>> = folder.files.clone();
    for f in per_domain.iter_mut() {
        f.shuffle(&mut rng);
    }
    // Round-robin over domains.
    let mut picks = Vec::new();
    let mut round = 0;
    while (picks.len() as i64) < 2 * n && round < per_domain.iter().map(Vec::len).max().unwrap_or(0) {
        for (d, f) in per_domain.iter().enumerate() {
            if let Some(p) = f.get(round) {
                picks.push((p.clone(), d as i64));
            }
        }
        round += 1;
    }
    let n = (picks.len() / 2).max(1).min(n as usize);
    let load = |items: &[(PathBuf, i64)]| -> Result<(Tensor, Tensor)> {
        let xs: Vec<Tensor> = items.iter().map(|(p, _)| imaging::load_tensor(p, img_size)).collect::<Result<_>>()?;
        let ys: Vec<i64> = items.iter().map(|(_, y)| *y).collect();
        Ok((Tensor::cat(&xs, 0), Tensor::from_slice(&ys)))
    };
    let (xs, ys) = load(&picks[..n])?;
    let (xr, yr) = load(&picks[n..(2 * n).min(picks.len())])?;
    Ok((xs, ys, xr, yr))
}

struct Sampler {
    x_src: Tensor,
    y_src: Tensor,
    x_ref: Tensor,
    y_ref: Tensor,
    z_rows: Tensor,
}

impl Sampler {
    fn write(&self, models: &Models, opts: &TrainOptions, iteration: i64, dir: &Path) -> Result<()> {
        let d = opts.device;
        let t =
            Translator { nets: &models.ema, fan: models.fan.as_ref(), device: d, latent_dim: opts.model.latent_dim };
        let (xs, ys, xr, yr) =
            (self.x_src.to_device(d), self.y_src.to_device(d), self.x_ref.to_device(d), self.y_ref.to_device(d));
        imaging::save(
            &grids::cycle_grid(&t, &xs, &ys, &xr, &yr),
            &dir.join(format!("{iteration:06}_cycle_consistency.png")),
        )?;
        let seed = opts.train.seed;
        let mut k = 0u64;
        let domains: Vec<(i64, Tensor)> = (0..opts.model.num_domains.min(5))
            .map(|y| {
                let s = t.mean_style(y, opts.mean_style_samples, &mut |m| {
                    k += 1;
                    latent_codes(seed, u64::MAX - k, 7, m, opts.model.latent_dim)
                });
                (y, s)
            })
            .collect();
        for psi in [0.5, 0.7, 1.0] {
            let g = grids::latent_grid(&t, &xs, &domains, &self.z_rows, psi);
            imaging::save(&g, &dir.join(format!("{iteration:06}_latent_psi_{psi:.1}.png")))?;
        }
        imaging::save(&grids::reference_grid(&t, &xs, &xr, &yr), &dir.join(format!("{iteration:06}_reference.png")))?;
        Ok(())
    }
}

fn to_device_batch(
    b: crate::data::loader::TrainBatch,
    it: u64,
    cfg: &TrainConfig,
    model: &ModelConfig,
    d: Device,
) -> Batch {
    let n = b.x_src.size()[0];
    Batch {
        x_real: b.x_src.to_device(d),
        y_org: b.y_src.to_device(d),
        x_ref: b.x_ref.to_device(d),
        x_ref2: b.x_ref2.to_device(d),
        y_trg: b.y_ref.to_device(d),
        z_trg: latent_codes(cfg.seed, it, 0, n, model.latent_dim).to_device(d),
        z_trg2: latent_codes(cfg.seed, it, 1, n, model.latent_dim).to_device(d),
    }
}

/// Trains as configured; returns when `total_iters` is reached or on error.
pub fn run(opts: &TrainOptions) -> Result<TrainSummary> {
    opts.model.validate()?;
    opts.train.validate().map_err(|e| anyhow::anyhow!(e))?;
    let folder = ImageFolder::open(&opts.data)?;
    folder.expect_domains(opts.model.num_domains)?;
    folder.expect_pairs()?;
    let val = match &opts.val {
        Some(v) => {
            let f = ImageFolder::open(v)?;
            f.expect_names(&folder.domains)?;
            f
        }
        None => folder.clone(),
    };
    let ckpt_dir = opts.out.join("checkpoints");
    let sample_dir = opts.out.join("samples");
    std::fs::create_dir_all(&ckpt_dir).with_context(|| format!("cannot create {}", ckpt_dir.display()))?;
    std::fs::create_dir_all(&sample_dir)?;

    let resume_from = match &opts.resume {
        Resume::No => {
            if let Some((_, p)) = ckpt::list(&ckpt_dir).last() {
                bail!(
                    "{} already holds checkpoints (newest: {}); pass --resume to continue, or choose another --out",
                    opts.out.display(),
                    p.display()
                );
            }
            None
        }
        Resume::Latest => match ckpt::list(&ckpt_dir).last() {
            Some((_, p)) => Some(p.clone()),
            None => bail!("--resume: no checkpoint in {}; start without --resume", ckpt_dir.display()),
        },
        Resume::File(p) => Some(p.clone()),
    };

    tch::manual_seed(opts.train.seed as i64);
    if opts.device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let models = Models::new(&Init::new(opts.device, Kind::Float), &opts.model);
    load_fan(&models, opts)?;
    let mut opt = Optimizers::new(&models, &opts.train);
    let mut progress = Progress { iteration: 0, lambda_ds: opts.train.lambda_ds };
    if let Some(p) = &resume_from {
        progress = ckpt::load(p, &models, &mut opt, &opts.model)?;
        eprintln!("resumed from {} at iteration {}", p.display(), progress.iteration);
    }
    std::fs::write(
        opts.out.join("config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "model": opts.model,
            "train": opts.train,
            "domains": folder.domains,
            // Absolute, so that `--resume` works from any folder without --data.
            "data": std::fs::canonicalize(&opts.data).unwrap_or_else(|_| opts.data.clone()),
            "val": opts.val.as_ref().map(|v| std::fs::canonicalize(v).unwrap_or_else(|_| v.clone())),
        }))?,
    )?;

    let sampler = if opts.sample_every > 0 {
        let (x_src, y_src, x_ref, y_ref) =
            sample_images(&val, opts.sample_size, opts.model.img_size as u32, opts.train.seed)?;
        let z_rows = latent_codes(opts.train.seed, u64::MAX, 3, 10, opts.model.latent_dim);
        Some(Sampler { x_src, y_src, x_ref, y_ref, z_rows })
    } else {
        None
    };

    let total = opts.train.total_iters;
    let mut loader = Loader::new(
        &folder,
        &LoaderConfig {
            batch_size: opts.train.batch_size as usize,
            img_size: opts.model.img_size as u32,
            randcrop_prob: opts.train.randcrop_prob,
            seed: opts.train.seed,
            workers: opts.workers,
            prefetch: opts.prefetch,
            start_batch: progress.iteration as u64,
        },
    )?;
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(opts.out.join("log.jsonl"))?;

    let bar = if opts.progress_bar && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(total as u64);
        b.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed}<{eta}, {per_sec}] {msg}").unwrap());
        b.set_position(progress.iteration as u64);
        Some(b)
    } else {
        None
    };
    let start = Instant::now();
    let first = progress.iteration;
    let mut last_ckpt: Option<PathBuf> = ckpt::list(&ckpt_dir).last().map(|(_, p)| p.clone());
    let mut last_losses = Vec::new();

    for i in progress.iteration..total {
        let batch = to_device_batch(loader.next_batch()?, i as u64, &opts.train, &opts.model, opts.device);
        let losses = train_step(&models, &mut opt, &opts.train, &mut progress.lambda_ds, &batch);
        progress.iteration = i + 1;
        let step = i + 1;
        let values = losses.values();
        if let Some((term, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
            bail!(
                "loss {term} became {v} at iteration {step}; stopping. The last good checkpoint is {} (resume with --resume, \
                 perhaps with a lower --lr or after removing corrupt images)",
                last_ckpt.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none (nothing was saved yet)".into())
            );
        }
        last_losses = values.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        if step % opts.print_every.max(1) == 0 || step == total {
            let elapsed = start.elapsed().as_secs_f64();
            let rate = (step - first) as f64 / elapsed.max(1e-9);
            let mut rec = serde_json::Map::new();
            rec.insert("iteration".into(), step.into());
            rec.insert("elapsed_s".into(), elapsed.into());
            rec.insert("it_per_s".into(), rate.into());
            for (n, v) in &values {
                rec.insert((*n).into(), (*v).into());
            }
            rec.insert("G/lambda_ds".into(), losses.lambda_ds_used.into());
            writeln!(log, "{}", serde_json::Value::Object(rec))?;
            let short = |n: &str| values.iter().find(|(k, _)| *k == n).map(|(_, v)| *v).unwrap_or(f64::NAN);
            let msg = format!(
                "D {:.3}/{:.3} G adv {:.3} sty {:.3} ds {:.3} cyc {:.3}",
                short("D/latent_real"),
                short("D/latent_fake"),
                short("G/latent_adv"),
                short("G/latent_sty"),
                short("G/latent_ds"),
                short("G/latent_cyc")
            );
            match &bar {
                Some(b) => b.set_message(msg),
                None => eprintln!("[{step}/{total}] {rate:.2} it/s {msg}"),
            }
        }
        if let Some(b) = &bar {
            b.set_position(step as u64);
        }
        if let Some(s) = &sampler {
            if step % opts.sample_every == 0 || step == total {
                s.write(&models, opts, step, &sample_dir)?;
                report::write(&opts.out)?;
            }
        }
        if (opts.save_every > 0 && step % opts.save_every == 0) || step == total {
            let path = ckpt_dir.join(ckpt::file_name(step));
            ckpt::save(&path, &models, &opt, &opts.model, &opts.train, &folder.domains, &progress)?;
            ckpt::prune(&ckpt_dir, opts.keep_last.max(1));
            last_ckpt = Some(path);
        }
    }
    if let Some(b) = &bar {
        b.finish();
    }
    report::write(&opts.out)?;
    Ok(TrainSummary {
        iterations: progress.iteration,
        last_checkpoint: last_ckpt,
        last_losses,
        skipped_images: loader.skipped.load(std::sync::atomic::Ordering::Relaxed),
    })
}
