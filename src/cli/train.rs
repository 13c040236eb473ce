use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::{default_dim_in, ModelConfig, Preset};
use crate::data::ImageFolder;
use crate::device::select_device;
use crate::dist::{placement_from_env, rendezvous_from_env, Backend, ProcessGroup};
use crate::train::evaluation::EvalSchedule;
use crate::train::step::R1Mode;
use crate::train::stop::StopRequests;
use crate::train::trainer::{run_with as train_run, Resume, TrainOptions};
use crate::train::Precision;
use crate::train::{RunSchedule, TrainConfig};

/// Train StarGAN v2 on a folder of images (one sub-folder per domain).
///
/// Settings are taken, each overriding the previous: official defaults, --preset,
/// --config (a JSON file like the `config.json` every run writes), then the flags.
///
/// Examples:
///   stargan train --data data/afhq/train --val data/afhq/val --preset afhq --out runs/afhq
///   stargan train --data data/emoji64/train --img-size 64 --batch-size 4 --total-iters 2000 --out runs/emoji
///   stargan train --out runs/afhq --resume          (continue the newest checkpoint)
///   stargan train --data my-emoji/train --init models/emoji64.safetensors --total-iters 5000 --out runs/ft
///                                                   (fine-tune the shipped model on your own images)
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment, allow_negative_numbers = true)]
pub struct Args {
    /// Training images: one sub-folder per domain (sorted names = labels).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation images (same sub-folders), used for the sample grids.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Output folder: checkpoints/, samples/, log.jsonl, report.html, config.json.
    #[arg(long, default_value = "runs/stargan")]
    pub out: PathBuf,
    /// Start from a preset: afhq (256 px, 3 domains, w_hpf 0) or celeba-hq (w_hpf 1, needs --wing).
    #[arg(long)]
    pub preset: Option<String>,
    /// JSON file with "model", "train" and/or "run" objects (e.g. a previous run's config.json).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue from the newest checkpoint in <out>/checkpoints, or from the given file.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// Start a new run from this model's weights instead of random ones (fine-tuning): a
    /// checkpoint of a run, an exported model (the shipped models/emoji64.safetensors) or
    /// an official .ckpt. Its model config becomes the default; the discriminator starts
    /// from the file's when it has one; optimizer state, iteration and λ_ds start afresh
    /// (to continue a λ_ds decay, pass --lambda-ds and --ds-iter for what is left of it).
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// FAN weights for w_hpf > 0: the official wing.ckpt, or a checkpoint with a `fan` entry.
    #[arg(long)]
    pub wing: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N (in a multi-process run, auto and cuda mean each
    /// process's cuda:LOCAL_RANK).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// fp32 (TF32 on recent GPUs), bf16 (autocast; parameters, optimizer state, EMA, R1
    /// and losses in float32) or fp64 (for exactness checks).
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Channels-last weights and images: auto (on CUDA, where cuDNN is faster with it),
    /// on or off. The results are the same either way.
    #[arg(long, default_value = "auto")]
    pub channels_last: String,
    /// How R1's input gradient is computed: explicit (D's gradient as an explicit graph,
    /// the default) or double-backward (autograd through the convolutions twice, as the
    /// official code; the fallback). Equal in float64 (tested: penalty to 1e-12, gradients to 1e-10).
    #[arg(long, default_value = "explicit")]
    pub r1: String,

    // Model.
    #[arg(long, help_heading = "Model")]
    pub img_size: Option<i64>,
    /// Default: the number of sub-folders of --data.
    #[arg(long, help_heading = "Model")]
    pub num_domains: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub latent_dim: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub style_dim: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub hidden_dim: Option<i64>,
    /// Width of the first convolution (official: 16384 / img_size).
    #[arg(long, help_heading = "Model")]
    pub dim_in: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub max_conv_dim: Option<i64>,
    /// High-pass skip weight; > 0 uses FAN face masks (faces only). Default 0 without a preset.
    #[arg(long, help_heading = "Model")]
    pub w_hpf: Option<f64>,

    // Objective and optimisation.
    #[arg(long, help_heading = "Training")]
    pub lambda_reg: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_cyc: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_sty: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_ds: Option<f64>,
    /// Iterations over which λ_ds decays linearly to 0.
    #[arg(long, help_heading = "Training")]
    pub ds_iter: Option<i64>,
    #[arg(long, help_heading = "Training")]
    pub total_iters: Option<i64>,
    #[arg(long, help_heading = "Training")]
    pub batch_size: Option<i64>,
    #[arg(long, help_heading = "Training")]
    pub randcrop_prob: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lr: Option<f64>,
    /// Learning rate of the mapping network.
    #[arg(long, help_heading = "Training")]
    pub f_lr: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub beta1: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub beta2: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub weight_decay: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub ema_beta: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub seed: Option<u64>,

    // Run.
    /// Data-loading threads.
    #[arg(long, default_value_t = 2, help_heading = "Run")]
    pub workers: usize,
    /// Batches each worker prepares ahead.
    #[arg(long, default_value_t = 2, help_heading = "Run")]
    pub prefetch: usize,
    // The schedule (print, sample, save, evaluate): kept in the run's config.json, so that a
    // resumed run keeps its own unless a flag is given again. Defaults: `RunSchedule`.
    /// Log the losses every N iterations [default: 10].
    #[arg(long, help_heading = "Run")]
    pub print_every: Option<i64>,
    /// Write sample grids every N iterations and at the end (0 = never) [default: 5000].
    #[arg(long, help_heading = "Run")]
    pub sample_every: Option<i64>,
    /// Write a checkpoint every N iterations (and at the end or a stop) [default: 10000].
    #[arg(long, help_heading = "Run")]
    pub save_every: Option<i64>,
    /// Checkpoints kept (older ones are deleted) [default: 3].
    #[arg(long, help_heading = "Run")]
    pub keep_last: Option<usize>,
    /// Source/reference images per sample grid [default: 8].
    #[arg(long, help_heading = "Run")]
    pub sample_size: Option<i64>,
    /// Latent codes averaged for the mean style of the ψ grids [default: 10000].
    #[arg(long, help_heading = "Run")]
    pub mean_style_samples: Option<i64>,
    /// Plain log lines instead of a progress bar.
    #[arg(long, help_heading = "Run")]
    pub no_progress: bool,
    /// Share the CPU with other work (CPU runs): use every core while the rest of the
    /// machine is idle and only the cores it leaves (at least one) while other processes
    /// keep it busy, re-measured every 5 s. For runs in the background beside builds and
    /// tests; measured in docs/performance.md.
    #[arg(long, help_heading = "Run")]
    pub share_cpu: bool,

    // Data parallelism.
    /// Train with N processes on this machine (data parallel: --batch-size is the global
    /// batch, split between them). Under torchrun, leave this out: its environment
    /// (RANK, WORLD_SIZE, …) is read instead.
    #[arg(long, default_value_t = 1, help_heading = "Data parallel")]
    pub nproc: usize,
    /// auto (NCCL for CUDA when built with it, else Gloo), gloo or nccl.
    #[arg(long, default_value = "auto", help_heading = "Data parallel")]
    pub dist_backend: String,
    /// Seconds a collective may wait for the other processes before the run fails (they
    /// wait while rank 0 writes samples and evaluates).
    #[arg(long, default_value_t = 1800, help_heading = "Data parallel")]
    pub dist_timeout: u64,
    /// Every process also writes <out>/rank<R>.safetensors at the end (to check that the
    /// ranks agree).
    #[arg(long, hide = true)]
    pub save_all_ranks: bool,

    // Evaluation while training.
    /// Evaluate the EMA networks every N iterations and at the end (FID, style accuracy,
    /// paired metric on a fixed validation subset; figures in eval.jsonl and report.html).
    /// Needs --val. 0 = never [default: 0].
    #[arg(long, help_heading = "Evaluation")]
    pub eval_every: Option<i64>,
    /// Validation images per domain used by those evaluations [default: 64].
    #[arg(long, help_heading = "Evaluation")]
    pub eval_images: Option<usize>,
    /// Outputs per source image in those evaluations (LPIPS diversity is reported from 2)
    /// [default: 1].
    #[arg(long, help_heading = "Evaluation")]
    pub eval_outs: Option<usize>,
    #[command(flatten)]
    pub weights: super::eval::WeightArgs,
}

#[derive(serde::Deserialize, Default)]
struct ConfigFile {
    model: Option<serde_json::Value>,
    train: Option<serde_json::Value>,
    /// The schedule (`RunSchedule`); absent in files written before it was kept.
    run: Option<serde_json::Value>,
    /// Data folders of the run that wrote the file (used when resuming without --data).
    data: Option<PathBuf>,
    val: Option<PathBuf>,
    /// The --init of the run that wrote the file.
    init: Option<PathBuf>,
}

fn merge<T: serde::Serialize + serde::de::DeserializeOwned>(base: &T, patch: &serde_json::Value) -> Result<T> {
    let mut v = serde_json::to_value(base)?;
    if let (Some(obj), Some(p)) = (v.as_object_mut(), patch.as_object()) {
        for (k, val) in p {
            if !obj.contains_key(k) {
                anyhow::bail!("unknown setting '{k}' (known: {})", obj.keys().cloned().collect::<Vec<_>>().join(", "));
            }
            obj.insert(k.clone(), val.clone());
        }
    }
    Ok(serde_json::from_value(v)?)
}

/// The data folders and configurations of a run, from the flags, --config, or (when
/// resuming) the run's own config.json.
pub struct Resolved {
    pub data: PathBuf,
    pub val: Option<PathBuf>,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub schedule: RunSchedule,
    pub init: Option<PathBuf>,
}

pub fn resolve(a: &Args, out_dir: &std::path::Path) -> Result<Resolved> {
    // A resumed run may omit --data and the settings: they come from its config.json.
    let saved = out_dir.join("config.json");
    let config_path = a.config.clone().or_else(|| (a.resume.is_some() && saved.exists()).then_some(saved));
    let file: ConfigFile = match &config_path {
        Some(p) => {
            serde_json::from_str(&std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?)
                .with_context(|| {
                format!("{} is not a valid config file (JSON with \"model\", \"train\" and \"run\")", p.display())
            })?
        }
        None => ConfigFile::default(),
    };
    let data = a
        .data
        .clone()
        .or(file.data.clone())
        .context("--data is required: the training folder with one sub-folder per domain")?;
    let val = a.val.clone().or(file.val.clone());
    let preset = a.preset.as_deref().map(Preset::named).transpose()?;
    let mut train = TrainConfig::default();
    let mut model = match &preset {
        Some(p) => {
            train.lambda_ds = p.lambda_ds;
            p.model.clone()
        }
        // Without a preset: one domain per sub-folder of the data.
        None => ModelConfig::official(256, ImageFolder::open(&data)?.domains.len() as i64, 0.0),
    };
    // --init: the weights' own configuration (stored, or read from the tensor shapes).
    let init = a.init.clone().or(if a.resume.is_some() { file.init.clone() } else { None });
    if let Some(p) = &a.init {
        let c = crate::checkpoint::Checkpoint::open(p).context("--init")?;
        model = c.config_or_inferred().with_context(|| format!("--init {}", p.display()))?;
    }
    let base_size = model.img_size;
    if let Some(m) = &file.model {
        model = merge(&model, m).context("in the \"model\" settings")?;
    }
    if let Some(t) = &file.train {
        train = merge(&train, t).context("in the \"train\" settings")?;
    }
    if let Some(v) = a.img_size {
        model.img_size = v;
    }
    // A new image size without a width: the official width for that size.
    let dim_in_given = a.dim_in.is_some() || file.model.as_ref().and_then(|m| m.get("dim_in")).is_some();
    if model.img_size != base_size && !dim_in_given && model.img_size > 0 {
        model.dim_in = default_dim_in(model.img_size).min(model.max_conv_dim);
    }
    macro_rules! set {
        ($dst:expr, $($f:ident),*) => { $( if let Some(v) = a.$f { $dst.$f = v; } )* };
    }
    set!(model, num_domains, latent_dim, style_dim, hidden_dim, dim_in, max_conv_dim, w_hpf);
    set!(
        train,
        lambda_reg,
        lambda_cyc,
        lambda_sty,
        lambda_ds,
        ds_iter,
        total_iters,
        batch_size,
        randcrop_prob,
        lr,
        f_lr,
        beta1,
        beta2,
        weight_decay,
        ema_beta,
        seed
    );
    let mut schedule = RunSchedule::default();
    if let Some(r) = &file.run {
        schedule = merge(&schedule, r).context("in the \"run\" settings")?;
    }
    set!(
        schedule,
        print_every,
        sample_every,
        save_every,
        keep_last,
        sample_size,
        mean_style_samples,
        eval_every,
        eval_images,
        eval_outs
    );
    model.validate()?;
    train.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(Resolved { data, val, model, train, schedule, init })
}

/// The data-parallel group of this process, when it is one of several.
fn join_group(a: &Args, device: tch::Device) -> Result<Option<ProcessGroup>> {
    let Some(placement) = placement_from_env()? else { return Ok(None) };
    let backend = match a.dist_backend.as_str() {
        "gloo" => Backend::Gloo,
        "nccl" => Backend::Nccl,
        "auto" if device.is_cuda() && crate::dist::nccl_built() => Backend::Nccl,
        "auto" => Backend::Gloo,
        other => anyhow::bail!("--dist-backend {other}: use auto, gloo or nccl"),
    };
    let rendezvous = rendezvous_from_env(&placement)?;
    let group =
        ProcessGroup::new(placement, &rendezvous, backend, std::time::Duration::from_secs(a.dist_timeout.max(1)))?;
    Ok(Some(group))
}

pub fn run(a: Args) -> Result<()> {
    if a.nproc > 1 && std::env::var_os(crate::dist::launch::LAUNCHED_ENV).is_none() {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        return crate::dist::launch::launch(a.nproc, &crate::dist::launch::strip_nproc(&args));
    }
    // Before anything slow (meeting the other ranks, fetching metric weights, reading the
    // data), so that a stop request from now on is a clean stop.
    let stop = StopRequests::install()?;
    let precision = Precision::parse(&a.precision).map_err(|e| anyhow::anyhow!(e))?;
    let Resolved { data, val, model, train, schedule, init } = resolve(&a, &a.out)?;
    let placement = placement_from_env()?;
    let mut device = select_device(&a.device)?;
    if let (Some(p), true) = (&placement, device.is_cuda()) {
        // One GPU per process of this machine.
        if a.device == "auto" || a.device == "cuda" {
            device = select_device(&format!("cuda:{}", p.local_rank))?;
        }
    }
    if let (Some(p), tch::Device::Cpu) = (&placement, device) {
        // The cores are shared by the processes of this machine.
        if std::env::var_os("OMP_NUM_THREADS").is_none() {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            tch::set_num_threads((cores / p.local_world).max(1) as i32);
        }
    }
    let group = join_group(&a, device)?;
    let main = group.as_ref().is_none_or(|g| g.rank() == 0);
    let resume = match a.resume.as_deref() {
        None => Resume::No,
        Some("") => Resume::Latest,
        Some(p) => Resume::File(PathBuf::from(p)),
    };
    if main {
        eprintln!(
            "training on {} ({}{}) for {} iterations, batch {}, {} px, {} domains, {:?} → {}",
            data.display(),
            crate::device::describe(device),
            group.as_ref().map(|g| format!(", {} processes", g.world())).unwrap_or_default(),
            train.total_iters,
            train.batch_size,
            model.img_size,
            model.num_domains,
            precision,
            a.out.display()
        );
    }
    let eval = if schedule.eval_every > 0 {
        if val.is_none() {
            anyhow::bail!("--eval-every needs --val: the validation images to translate");
        }
        if schedule.eval_images < 2 || schedule.eval_outs == 0 {
            anyhow::bail!("--eval-images must be at least 2 and --eval-outs at least 1");
        }
        let cache = crate::files::cache_dir();
        Some(EvalSchedule {
            every: schedule.eval_every,
            max_per_domain: schedule.eval_images,
            num_outs: schedule.eval_outs,
            batch: 32,
            inception: a.weights.inception_path()?,
            lpips: a.weights.lpips_path()?,
            feature_cache: Some(cache.join("features")),
        })
    } else {
        None
    };
    let opts = TrainOptions {
        data,
        val,
        out: a.out.clone(),
        model,
        train,
        device,
        workers: a.workers,
        prefetch: a.prefetch,
        print_every: schedule.print_every,
        sample_every: schedule.sample_every,
        save_every: schedule.save_every,
        keep_last: schedule.keep_last,
        resume,
        init,
        wing: a.wing,
        sample_size: schedule.sample_size,
        mean_style_samples: schedule.mean_style_samples,
        eval,
        precision,
        channels_last: crate::cli::bench::channels_last_choice(&a.channels_last, device)?,
        r1: match a.r1.as_str() {
            "explicit" => R1Mode::Explicit,
            "double-backward" => R1Mode::DoubleBackward,
            other => anyhow::bail!("--r1 {other}: use explicit or double-backward"),
        },
        save_all_ranks: a.save_all_ranks,
        progress_bar: !a.no_progress,
        share_cpu: a.share_cpu,
    };
    let s = train_run(&opts, group.as_ref(), &stop)?;
    if !main {
        return Ok(());
    }
    if s.stopped && s.last_checkpoint.is_none() {
        let next = if s.iterations > 0 {
            format!("continue with: stargan train --out {} --resume", a.out.display())
        } else {
            "start it again to train".to_string()
        };
        eprintln!("stopped as asked while setting up, at iteration {}: nothing new to save; {next}", s.iterations);
        return Ok(());
    }
    if s.stopped {
        eprintln!(
            "stopped at iteration {} as asked; checkpoint {}. Continue with: stargan train --out {} --resume",
            s.iterations,
            s.last_checkpoint.map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
            a.out.display()
        );
        return Ok(());
    }
    eprintln!(
        "done: {} iterations; checkpoint {}; report {}",
        s.iterations,
        s.last_checkpoint.map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
        a.out.join("report.html").display()
    );
    if s.skipped_images > 0 {
        eprintln!("warning: {} unreadable images were skipped", s.skipped_images);
    }
    Ok(())
}
