//! The training loop: data, the step, logging, samples, evaluations, checkpoints and
//! resume. The step itself ([`super::step`]) does no I/O; everything around it lives
//! here, as a set-up ([`Setup`]), the state that a checkpoint restores ([`Trainer`]) and
//! what happens after each step ([`Hooks`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tch::{Device, Tensor};

use super::checkpoint::{self as ckpt, Progress};
use super::cpu_share::CpuShare;
use super::evaluation::{EvalSchedule, PeriodicEval};
use super::optim::Optimizers;
use super::step::{train_step_with, Batch, Losses, R1Mode, StepOptions};
use super::stop::StopRequests;
use super::{report, Models, Precision, RunSchedule, TrainConfig};
use crate::checkpoint::{load_module, Checkpoint};
use crate::config::ModelConfig;
use crate::data::folder::ImageFolder;
use crate::data::loader::{Loader, LoaderConfig};
use crate::dist::ProcessGroup;
use crate::imaging;
use crate::infer::{grids, Translator};
use crate::model::{Init, FAN};
use crate::rng::{self, latent_codes, Stream};

#[derive(Clone, Debug)]
pub enum Resume {
    /// Start from scratch (fails if the output folder already has checkpoints).
    No,
    /// Continue from the newest checkpoint in `<out>/checkpoints`; a run folder without
    /// one (killed before its first save) starts from iteration 0.
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
    /// A new run (nothing to resume) starts from this file's weights instead of He
    /// initialisation (`--init`: fine-tuning; see [`ckpt::init_from`]).
    pub init: Option<PathBuf>,
    /// FAN weights (wing.ckpt or a checkpoint with a `fan` entry), needed when w_hpf > 0.
    pub wing: Option<PathBuf>,
    /// Number of source (and reference) images in the sample grids.
    pub sample_size: i64,
    /// Latent codes averaged for the mean style of the ψ grids (official: 10,000).
    pub mean_style_samples: i64,
    /// Evaluate the EMA networks every so many iterations (None: never).
    pub eval: Option<EvalSchedule>,
    pub precision: Precision,
    /// Channels-last weights and images (faster convolutions on GPUs; the same values).
    pub channels_last: bool,
    pub r1: R1Mode,
    /// In a multi-process run, every rank also writes `<out>/rank<R>.safetensors` at the
    /// end (to check that the ranks agree).
    pub save_all_ranks: bool,
    pub progress_bar: bool,
    /// Adapt the CPU thread count to the other work on the machine (`--share-cpu`).
    pub share_cpu: bool,
}

impl TrainOptions {
    /// The run's schedule, as its config.json keeps it for `--resume`.
    pub fn schedule(&self) -> RunSchedule {
        let default = RunSchedule::default();
        RunSchedule {
            print_every: self.print_every,
            sample_every: self.sample_every,
            save_every: self.save_every,
            keep_last: self.keep_last,
            sample_size: self.sample_size,
            mean_style_samples: self.mean_style_samples,
            eval_every: self.eval.as_ref().map_or(0, |e| e.every),
            eval_images: self.eval.as_ref().map_or(default.eval_images, |e| e.max_per_domain),
            eval_outs: self.eval.as_ref().map_or(default.eval_outs, |e| e.num_outs),
        }
    }
}

pub struct TrainSummary {
    pub iterations: i64,
    /// Whether the run was asked to stop (SIGINT/SIGTERM) before `total_iters`.
    pub stopped: bool,
    pub last_checkpoint: Option<PathBuf>,
    pub last_losses: Vec<(String, f64)>,
    pub skipped_images: usize,
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
    let mut rng = rng::grid_images_rng(seed);
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

/// The official sample grids, made with the EMA networks from fixed images and codes.
struct Sampler {
    x_src: Tensor,
    y_src: Tensor,
    x_ref: Tensor,
    y_ref: Tensor,
    z_rows: Tensor,
}

impl Sampler {
    fn new(val: &ImageFolder, opts: &TrainOptions) -> Result<Self> {
        let (x_src, y_src, x_ref, y_ref) =
            sample_images(val, opts.sample_size, opts.model.img_size as u32, opts.train.seed)?;
        let z_rows = latent_codes(opts.train.seed, Stream::TrainGridRows, u64::MAX, 10, opts.model.latent_dim);
        Ok(Sampler { x_src, y_src, x_ref, y_ref, z_rows })
    }

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
                    latent_codes(seed, Stream::TrainGridMeanStyle, u64::MAX - k, m, opts.model.latent_dim)
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

/// The inputs of iteration `it` on the device. In a run of `world` processes, this
/// process's rows of the global batch: every rank draws the same batch and codes and
/// keeps its own slice, so that results do not depend on the number of processes.
fn to_device_batch(
    b: crate::data::loader::TrainBatch,
    it: u64,
    opts: &TrainOptions,
    rank: usize,
    world: usize,
) -> Batch {
    let n = b.x_src.size()[0];
    let (cfg, d, kind) = (&opts.train, opts.device, opts.precision.param_kind());
    let per = n / world as i64;
    let rows = |t: Tensor| t.narrow(0, rank as i64 * per, per);
    let float = |t: Tensor| rows(t).to_kind(kind).to_device(d);
    let image = |t: Tensor| {
        let t = float(t);
        if opts.channels_last {
            crate::model::layers::to_channels_last(&t)
        } else {
            t
        }
    };
    let label = |t: Tensor| rows(t).to_device(d);
    let z = |s| latent_codes(cfg.seed, s, it, n, opts.model.latent_dim);
    Batch {
        x_real: image(b.x_src),
        y_org: label(b.y_src),
        x_ref: image(b.x_ref),
        x_ref2: image(b.x_ref2),
        y_trg: label(b.y_ref),
        z_trg: float(z(Stream::TrainZ)),
        z_trg2: float(z(Stream::TrainZ2)),
    }
}

/// The data and folders of a run, checked before anything is trained.
struct Setup {
    train: ImageFolder,
    val: ImageFolder,
    ckpt_dir: PathBuf,
    sample_dir: PathBuf,
}

impl Setup {
    fn new(opts: &TrainOptions) -> Result<Self> {
        opts.model.validate()?;
        opts.train.validate().map_err(|e| anyhow::anyhow!(e))?;
        let train = ImageFolder::open(&opts.data)?;
        train.expect_domains(opts.model.num_domains)?;
        train.expect_pairs()?;
        let val = match &opts.val {
            Some(v) => {
                let f = ImageFolder::open(v)?;
                f.expect_names(&train.domains)?;
                f
            }
            None => train.clone(),
        };
        let ckpt_dir = opts.out.join("checkpoints");
        let sample_dir = opts.out.join("samples");
        for dir in [&ckpt_dir, &sample_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(Setup { train, val, ckpt_dir, sample_dir })
    }

    /// The checkpoint to continue from, if any.
    fn resume_from(&self, opts: &TrainOptions) -> Result<Option<PathBuf>> {
        let newest = ckpt::list(&self.ckpt_dir).last().map(|(_, p)| p.clone());
        Ok(match &opts.resume {
            Resume::No => {
                if let Some(p) = newest {
                    bail!(
                        "{} already holds checkpoints (newest: {}); pass --resume to continue, or choose another --out",
                        opts.out.display(),
                        p.display()
                    );
                }
                None
            }
            Resume::Latest => {
                if newest.is_none() {
                    eprintln!(
                        "--resume: {} holds no checkpoint yet (the run stopped before its first save); starting from iteration 0",
                        self.ckpt_dir.display()
                    );
                }
                newest
            }
            Resume::File(p) => Some(p.clone()),
        })
    }

    /// Writes `<out>/config.json`, from which `--resume` alone restores the run (its data,
    /// model, hyper-parameters and schedule).
    fn write_config(&self, opts: &TrainOptions) -> Result<()> {
        let path = opts.out.join("config.json");
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "model": opts.model,
            "train": opts.train,
            "run": opts.schedule(),
            "domains": self.train.domains,
            // Absolute, so that `--resume` works from any folder without --data.
            "data": std::fs::canonicalize(&opts.data).unwrap_or_else(|_| opts.data.clone()),
            "val": opts.val.as_ref().map(|v| std::fs::canonicalize(v).unwrap_or_else(|_| v.clone())),
            // A run stopped before its first save starts from these weights again.
            "init": opts.init.as_ref().map(|v| std::fs::canonicalize(v).unwrap_or_else(|_| v.clone())),
        }))?;
        let tmp = opts.out.join(".config.json.tmp");
        std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// What a checkpoint restores: networks, optimizers, λ_ds and the iteration.
struct Trainer {
    models: Models,
    opt: Optimizers,
    progress: Progress,
}

impl Trainer {
    fn start(opts: &TrainOptions, domains: &[String], resume_from: Option<&Path>, main: bool) -> Result<Self> {
        tch::manual_seed(opts.train.seed as i64);
        if opts.device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let models = Models::new(&Init::new(opts.device, opts.precision.param_kind()), &opts.model);
        load_fan(&models, opts)?;
        if opts.channels_last {
            models.to_channels_last();
        }
        let mut opt = Optimizers::new(&models, &opts.train);
        let mut progress = Progress { iteration: 0, lambda_ds: opts.train.lambda_ds };
        if let Some(p) = resume_from {
            progress = ckpt::load(p, &models, &mut opt, &opts.model, domains)?;
            if main {
                eprintln!("resumed from {} at iteration {}", p.display(), progress.iteration);
            }
        } else if let Some(p) = &opts.init {
            let r = ckpt::init_from(p, &models, &opts.model, domains)?;
            if main {
                if let ckpt::DomainMatch::Renamed(heads) = &r.domains {
                    eprintln!(
                        "{} names other domains than --data: its style heads go, by label, {}",
                        p.display(),
                        heads.join(", ")
                    );
                }
                eprintln!(
                    "weights from {}{}: generator, mapping network, style encoder{}; the optimizer state, iteration and λ_ds ({}) start afresh",
                    p.display(),
                    r.source_iteration.map(|i| format!(" (its iteration {i})")).unwrap_or_default(),
                    if r.discriminator_from_file {
                        " and discriminator".to_string()
                    } else {
                        " (it has no discriminator: He-initialised)".to_string()
                    },
                    opts.train.lambda_ds
                );
            }
        }
        Ok(Trainer { models, opt, progress })
    }
}

/// A step's losses as the loop sees them: this process's, read only when needed, or the
/// mean over the processes of a multi-process run (read once, by the all-reduce that
/// also carries the stop flag), so that every rank logs and decides on the same values.
struct Observed<'a> {
    losses: &'a Losses,
    averaged: Option<Vec<f64>>,
}

impl Observed<'_> {
    /// One reduction over every term and one read: the only host synchronisation of a
    /// step that logs nothing.
    fn all_finite(&self) -> bool {
        match &self.averaged {
            Some(v) => v.iter().all(|x| x.is_finite()),
            None => self.losses.all_finite(),
        }
    }

    fn values(&self) -> Vec<(&'static str, f64)> {
        match &self.averaged {
            Some(v) => self.losses.terms.iter().map(|(n, _)| *n).zip(v.iter().copied()).collect(),
            None => self.losses.values(),
        }
    }
}

/// Fails, naming the term, when a loss is not finite.
fn check_finite(losses: &Observed, step: i64, last_ckpt: Option<&Path>) -> Result<()> {
    if losses.all_finite() {
        return Ok(());
    }
    let (term, v) = losses.values().into_iter().find(|(_, v)| !v.is_finite()).unwrap_or(("(unknown)", f64::NAN));
    bail!(
        "loss {term} became {v} at iteration {step}; stopping. The last good checkpoint is {} (resume with --resume, \
         perhaps with a lower --lr or after removing corrupt images)",
        last_ckpt.map(|p| p.display().to_string()).unwrap_or_else(|| "none (nothing was saved yet)".into())
    )
}

/// Everything that happens between steps: the log, the progress bar, sample grids,
/// evaluations, checkpoints and the report. Only the main process (rank 0) writes.
struct Hooks<'a> {
    opts: &'a TrainOptions,
    setup: &'a Setup,
    main: bool,
    /// One of several processes (`--nproc`, torchrun).
    multi_process: bool,
    log: Option<std::fs::File>,
    bar: Option<ProgressBar>,
    sampler: Option<Sampler>,
    evaluator: Option<PeriodicEval>,
    start: Instant,
    first: i64,
    last_ckpt: Option<PathBuf>,
    last_losses: Vec<(String, f64)>,
}

impl<'a> Hooks<'a> {
    fn new(opts: &'a TrainOptions, setup: &'a Setup, first: i64, main: bool, multi_process: bool) -> Result<Self> {
        let sampler = if main && opts.sample_every > 0 { Some(Sampler::new(&setup.val, opts)?) } else { None };
        let evaluator = match &opts.eval {
            Some(s) if main => Some(PeriodicEval::new(s, &setup.train, &setup.val, opts)?),
            _ => None,
        };
        let log = if main {
            let log_path = opts.out.join("log.jsonl");
            Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log_path)
                    .with_context(|| format!("cannot open {}", log_path.display()))?,
            )
        } else {
            None
        };
        let total = opts.train.total_iters;
        let bar = (main && opts.progress_bar && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed}<{eta}, {per_sec}] {msg}").unwrap(),
            );
            b.set_position(first as u64);
            b
        });
        Ok(Hooks {
            opts,
            setup,
            main,
            multi_process,
            log,
            bar,
            sampler,
            evaluator,
            start: Instant::now(),
            first,
            last_ckpt: ckpt::list(&setup.ckpt_dir).last().map(|(_, p)| p.clone()),
            last_losses: Vec::new(),
        })
    }

    fn due(every: i64, step: i64, total: i64) -> bool {
        (every > 0 && step % every == 0) || step == total
    }

    fn after_step(&mut self, t: &Trainer, losses: &Observed, step: i64) -> Result<()> {
        let total = self.opts.train.total_iters;
        check_finite(losses, step, self.last_ckpt.as_deref())?;
        if !self.main {
            return Ok(());
        }
        if Self::due(self.opts.print_every.max(1), step, total) {
            self.log_losses(losses, step)?;
        }
        if let Some(b) = &self.bar {
            b.set_position(step as u64);
        }
        // The checkpoint first: whatever fails after it, nothing trained is lost.
        if Self::due(self.opts.save_every, step, total) {
            let path = self.setup.ckpt_dir.join(ckpt::file_name(step));
            ckpt::save(
                &path,
                &t.models,
                &t.opt,
                &self.opts.model,
                &self.opts.train,
                &self.setup.train.domains,
                &t.progress,
            )?;
            ckpt::prune(&self.setup.ckpt_dir, self.opts.keep_last.max(1));
            self.last_ckpt = Some(path);
        }
        let sampling = self.sampler.is_some() && Self::due(self.opts.sample_every, step, total);
        let evaluating = self.evaluator.as_ref().is_some_and(|e| Self::due(e.every(), step, total));
        let _cores = (sampling || evaluating).then(|| AllCores::take(self.multi_process, self.opts.device));
        if let Some(s) = &self.sampler {
            if Self::due(self.opts.sample_every, step, total) {
                s.write(&t.models, self.opts, step, &self.setup.sample_dir)?;
                crate::checkpoint::native::remove_stale_temp_files(&self.setup.sample_dir);
                report::write(&self.opts.out)?;
            }
        }
        if let Some(e) = &self.evaluator {
            if Self::due(e.every(), step, total) {
                // An evaluation that fails (a damaged validation image, say) is reported and
                // the training goes on: it measures the run, it is not part of it.
                match e.run(&t.models, step, self.start.elapsed().as_secs_f64()) {
                    Ok(line) => self.say(&format!("[{step}/{total}] eval: {line}")),
                    Err(err) => self.say(&format!("[{step}/{total}] warning: the evaluation failed: {err:#}")),
                }
                report::write(&self.opts.out)?;
            }
        }
        Ok(())
    }

    /// Ends the run early after a step: a checkpoint at this iteration (unless one was
    /// just written), so that `--resume` continues exactly here.
    fn stop(&mut self, t: &Trainer) -> Result<()> {
        if !self.main {
            return Ok(());
        }
        let step = t.progress.iteration;
        let path = self.setup.ckpt_dir.join(ckpt::file_name(step));
        if self.last_ckpt.as_deref() != Some(path.as_path()) {
            ckpt::save(
                &path,
                &t.models,
                &t.opt,
                &self.opts.model,
                &self.opts.train,
                &self.setup.train.domains,
                &t.progress,
            )?;
            ckpt::prune(&self.setup.ckpt_dir, self.opts.keep_last.max(1));
            self.last_ckpt = Some(path);
        }
        Ok(())
    }

    /// A message above the progress bar, or a plain line without one.
    fn say(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// Reads the loss values (a host synchronisation) and logs them.
    fn log_losses(&mut self, losses: &Observed, step: i64) -> Result<()> {
        let values = losses.values();
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = (step - self.first) as f64 / elapsed.max(1e-9);
        let mut rec = serde_json::Map::new();
        rec.insert("iteration".into(), step.into());
        rec.insert("elapsed_s".into(), elapsed.into());
        rec.insert("it_per_s".into(), rate.into());
        for (n, v) in &values {
            rec.insert((*n).into(), (*v).into());
        }
        rec.insert("G/lambda_ds".into(), losses.losses.lambda_ds_used.into());
        if let Some(log) = &mut self.log {
            writeln!(log, "{}", serde_json::Value::Object(rec))
                .with_context(|| format!("cannot write {}", self.opts.out.join("log.jsonl").display()))?;
        }
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
        match &self.bar {
            Some(b) => b.set_message(msg),
            None => eprintln!("[{step}/{}] {rate:.2} it/s {msg}", self.opts.train.total_iters),
        }
        self.last_losses = values.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        Ok(())
    }
}

/// One training step at the run's precision: bf16 runs the forward passes under
/// autocast (see [`train_step`]).
fn step_at(opts: &TrainOptions, t: &mut Trainer, batch: &Batch, group: Option<&ProcessGroup>) -> Result<Losses> {
    let o = StepOptions {
        sync: group,
        mixed: matches!(opts.precision, Precision::Bf16).then_some(opts.device),
        r1: opts.r1,
    };
    train_step_with(&t.models, &mut t.opt, &opts.train, &mut t.progress.lambda_ds, batch, &o)
}

/// While rank 0 samples or evaluates alone, the other processes wait for it, asleep in
/// their next all-reduce; on the CPU it takes their cores meanwhile (the evaluation's
/// Inception network at one thread per process took 7 minutes where two threads take about
/// half). The thread count is restored when this is dropped; an explicit `OMP_NUM_THREADS`
/// is left alone.
struct AllCores(Option<i32>);

impl AllCores {
    fn take(multi_process: bool, device: Device) -> Self {
        if !multi_process || device != Device::Cpu || std::env::var_os("OMP_NUM_THREADS").is_some() {
            return AllCores(None);
        }
        let cores = std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1);
        let mine = tch::get_num_threads();
        if cores <= mine {
            return AllCores(None);
        }
        tch::set_num_threads(cores);
        AllCores(Some(mine))
    }
}

impl Drop for AllCores {
    fn drop(&mut self) {
        if let Some(n) = self.0 {
            tch::set_num_threads(n);
        }
    }
}

/// Whether a stop was asked for while the run was set up; with several processes, whether
/// any of them was asked (they all stop, or none does).
fn asked_during_set_up(stop: &StopRequests, group: Option<&ProcessGroup>, device: Device) -> Result<bool> {
    let asked = stop.requested();
    match group {
        None => Ok(asked),
        // On the run's device, where NCCL needs it (Gloo takes it back to the CPU).
        Some(g) => Ok(g.mean_of(&Tensor::from_slice(&[if asked { 1.0 } else { 0.0 }]).to_device(device))?[0] > 0.0),
    }
}

/// Trains as configured; returns when `total_iters` is reached, when SIGINT or SIGTERM
/// asks it to stop (after saving a checkpoint), or on error.
/// The `--share-cpu` governor, when asked for and possible.
fn cpu_share(opts: &TrainOptions, multi_process: bool) -> Result<Option<CpuShare>> {
    if !opts.share_cpu {
        return Ok(None);
    }
    if opts.device != Device::Cpu {
        bail!("--share-cpu adapts CPU threads: it applies to --device cpu, not {:?}", opts.device);
    }
    if multi_process {
        bail!("--share-cpu is for a single process: with --nproc the processes already split the cores");
    }
    Ok(Some(CpuShare::new(tch::get_num_threads())?))
}

pub fn run(opts: &TrainOptions) -> Result<TrainSummary> {
    run_with(opts, None, &StopRequests::install()?)
}

/// [`run`] as one process of a data-parallel group (`group`), or alone (None), stopping
/// when `stop` is asked (installed by the caller before its own set-up: joining the group,
/// fetching weights).
pub fn run_with(opts: &TrainOptions, group: Option<&ProcessGroup>, stop: &StopRequests) -> Result<TrainSummary> {
    let (rank, world) = group.map(|g| (g.rank(), g.world())).unwrap_or((0, 1));
    let main = rank == 0;
    if opts.train.batch_size % world as i64 != 0 {
        bail!(
            "--batch-size {} (the global batch) must be a multiple of the number of processes, {world}",
            opts.train.batch_size
        );
    }
    let setup = Setup::new(opts)?;
    let resume_from = setup.resume_from(opts)?;
    let mut t = Trainer::start(opts, &setup.train.domains, resume_from.as_deref(), main)?;
    if let Some(g) = group {
        // Every rank starts from rank 0's tensors (equal anyway: same seed, same file).
        let mut all = t.models.nets.modules();
        all.extend(t.models.ema.modules());
        all.push((crate::model::DISCRIMINATOR, &t.models.discriminator));
        let tensors: Vec<Tensor> = all.iter().flat_map(|(_, m)| m.named_tensors()).map(|n| n.tensor).collect();
        tch::no_grad(|| g.broadcast_from_rank0(&tensors.iter().collect::<Vec<_>>()))?;
        g.check_agreement(
            "the iteration and λ_ds to continue from",
            &[t.progress.iteration as f64, t.progress.lambda_ds],
        )?;
    }
    if main {
        setup.write_config(opts)?;
    }
    let mut loader = Loader::new(
        &setup.train,
        &LoaderConfig {
            batch_size: opts.train.batch_size as usize,
            img_size: opts.model.img_size as u32,
            randcrop_prob: opts.train.randcrop_prob,
            seed: opts.train.seed,
            workers: opts.workers,
            prefetch: opts.prefetch,
            start_batch: t.progress.iteration as u64,
        },
    )?;
    let mut hooks = Hooks::new(opts, &setup, t.progress.iteration, main, group.is_some())?;
    let mut share = cpu_share(opts, group.is_some())?;
    if asked_during_set_up(stop, group, opts.device)? {
        // Nothing was trained since the checkpoint the run started from: nothing to save.
        return Ok(TrainSummary {
            iterations: t.progress.iteration,
            stopped: true,
            last_checkpoint: None,
            last_losses: Vec::new(),
            skipped_images: 0,
        });
    }
    stop.set_up_done();
    let mut stopped = false;
    for i in t.progress.iteration..opts.train.total_iters {
        let batch = to_device_batch(loader.next_batch()?, i as u64, opts, rank, world);
        let losses = step_at(opts, &mut t, &batch, group)?;
        t.progress.iteration = i + 1;
        let asked = stop.requested();
        let (observed, stop_now) = match group {
            None => (Observed { losses: &losses, averaged: None }, asked),
            Some(g) => {
                let mut v = g.mean_of(&losses.stacked_with(if asked { 1.0 } else { 0.0 }))?;
                let any_asked = v.pop().unwrap_or(0.0) > 0.0;
                (Observed { losses: &losses, averaged: Some(v) }, any_asked)
            }
        };
        hooks.after_step(&t, &observed, i + 1)?;
        if let Some(c) = share.as_mut().and_then(CpuShare::tick) {
            hooks.say(&format!(
                "[{}/{}] --share-cpu: {} thread{} (other work used {:.1} cores)",
                i + 1,
                opts.train.total_iters,
                c.threads,
                if c.threads == 1 { "" } else { "s" },
                c.others
            ));
        }
        if stop_now {
            hooks.stop(&t)?;
            stopped = true;
            break;
        }
    }
    if let Some(b) = &hooks.bar {
        b.finish();
    }
    if opts.save_all_ranks && group.is_some() {
        let path = opts.out.join(format!("rank{rank}.safetensors"));
        ckpt::save(&path, &t.models, &t.opt, &opts.model, &opts.train, &setup.train.domains, &t.progress)?;
    }
    if main {
        report::write(&opts.out)?;
    }
    Ok(TrainSummary {
        iterations: t.progress.iteration,
        stopped,
        last_checkpoint: hooks.last_ckpt,
        last_losses: hooks.last_losses,
        skipped_images: loader.skipped.load(std::sync::atomic::Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_zero_takes_every_core_while_the_others_wait_and_gives_them_back() {
        if std::env::var_os("OMP_NUM_THREADS").is_some() {
            return; // an explicit thread count is left alone by design
        }
        let cores = std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1);
        // The other unit tests of this process share the thread count: theirs comes back.
        let before = tch::get_num_threads();
        tch::set_num_threads(1);
        {
            let _all = AllCores::take(true, Device::Cpu);
            assert_eq!(tch::get_num_threads(), cores);
            // A single process and a GPU run keep their threads.
            let _alone = AllCores::take(false, Device::Cpu);
            let _gpu = AllCores::take(true, Device::Cuda(0));
            assert_eq!(tch::get_num_threads(), cores);
        }
        assert_eq!(tch::get_num_threads(), 1, "restored when dropped");
        tch::set_num_threads(1);
        {
            let _gpu = AllCores::take(true, Device::Cuda(0));
            assert_eq!(tch::get_num_threads(), 1);
        }
        tch::set_num_threads(before);
    }
}
