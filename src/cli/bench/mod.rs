//! `stargan bench`: speed and memory figures, from commands anyone can rerun (never
//! part of the test suite).

mod allreduce;
mod devices;
mod infer;
mod measure;
mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::ModelConfig;
use crate::device::select_device;
use crate::train::Precision;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Latency and throughput of latent- and reference-guided translation (random weights).
    ///
    /// Example: stargan bench infer --preset afhq --device cpu --batch 1
    Infer(InferArgs),
    /// Seconds per training iteration (the full official step) with random weights.
    ///
    /// Examples:
    ///   stargan bench train --preset afhq --device cuda --batch 8 --precision bf16
    ///   stargan bench train --config runs/emoji/config.json --device cpu --batch 8
    #[command(verbatim_doc_comment)]
    Train(TrainArgs),
    /// The same networks and inputs on the CPU and on a device: largest output difference
    /// (TF32 on, then off), to check a GPU against the CPU.
    ///
    /// Example: stargan bench devices --preset afhq --device cuda
    Devices(DevicesArgs),
    /// Time of the all-reduces of one training iteration (the gradients of D twice, of
    /// G+F+E and of G) between N processes on this machine.
    ///
    /// Example: stargan bench allreduce --preset afhq --nproc 2 --device cpu
    Allreduce(AllreduceArgs),
}

/// Which network sizes to measure: a preset, or a run's configuration, optionally with
/// smaller dimensions.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelChoice {
    /// afhq or celeba-hq.
    #[arg(long, default_value = "afhq")]
    pub preset: String,
    /// A run's config.json: measure its model instead of the preset's.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub img_size: Option<i64>,
    #[arg(long)]
    pub dim_in: Option<i64>,
    #[arg(long)]
    pub max_conv_dim: Option<i64>,
}

impl ModelChoice {
    /// The configuration and a name for reports.
    pub fn resolve(&self) -> Result<(String, ModelConfig)> {
        let (mut name, mut cfg) = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                let v: serde_json::Value =
                    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?;
                let cfg: ModelConfig = serde_json::from_value(v["model"].clone())
                    .with_context(|| format!("{} has no valid \"model\" object", p.display()))?;
                (p.display().to_string(), cfg)
            }
            None => (self.preset.clone(), ModelConfig::preset(&self.preset)?),
        };
        for (v, field, label) in [
            (self.img_size, &mut cfg.img_size, "img"),
            (self.dim_in, &mut cfg.dim_in, "dim_in"),
            (self.max_conv_dim, &mut cfg.max_conv_dim, "max"),
        ] {
            if let Some(v) = v {
                *field = v;
                name.push_str(&format!(" {label}={v}"));
            }
        }
        cfg.validate()?;
        Ok((name, cfg))
    }
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelChoice,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long, default_value_t = 8)]
    pub batch: i64,
    /// fp32 (TF32 convolutions on GPU) or bf16 (autocast).
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Channels-last activations and weights: auto (on CUDA), on, off.
    #[arg(long, default_value = "auto")]
    pub channels_last: String,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Real training images (one sub-folder per domain) to measure the data pipeline;
    /// default: synthetic batches.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    #[command(flatten)]
    pub model: ModelChoice,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long, default_value_t = 1)]
    pub batch: i64,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {
    #[command(flatten)]
    pub model: ModelChoice,
    /// The device compared with the CPU.
    #[arg(long, default_value = "cuda")]
    pub device: String,
    #[arg(long, default_value_t = 2)]
    pub batch: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct AllreduceArgs {
    #[command(flatten)]
    pub model: ModelChoice,
    /// Processes (ranks) on this machine.
    #[arg(long, default_value_t = 2)]
    pub nproc: usize,
    /// cpu (Gloo) or cuda (each rank on cuda:LOCAL_RANK; NCCL when built with it).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    #[arg(long)]
    pub json: bool,
}

/// Whether to train channels-last: `auto` means on a CUDA device only (on the CPU it
/// measured no faster at the sizes we train there; docs/performance.md).
pub fn channels_last_choice(flag: &str, device: tch::Device) -> Result<bool> {
    match flag {
        "auto" => Ok(device.is_cuda()),
        "on" => Ok(true),
        "off" => Ok(false),
        other => anyhow::bail!("--channels-last {other}: use auto, on or off"),
    }
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Infer(a) => {
            let (name, cfg) = a.model.resolve()?;
            let r = infer::infer(&name, &cfg, select_device(&a.device)?, a.batch, a.warmup, a.iters)?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("device        {}", r.device);
                println!("model         {} ({} px), batch {}", r.preset, r.img_size, r.batch);
                println!("translation   median ms/batch   images/s");
                println!("latent        {:>15.1}   {:>8.2}", r.latent_ms, r.latent_img_per_s);
                println!("reference     {:>15.1}   {:>8.2}", r.reference_ms, r.reference_img_per_s);
                println!("peak memory   {:.0} MiB ({})", r.peak_rss_mb, r.memory_measure);
            }
            Ok(())
        }
        BenchCommand::Train(a) => {
            let (name, cfg) = a.model.resolve()?;
            let precision = Precision::parse(&a.precision).map_err(|e| anyhow::anyhow!(e))?;
            let device = select_device(&a.device)?;
            let channels_last = channels_last_choice(&a.channels_last, device)?;
            let r = train::train(
                &name,
                &cfg,
                &train::TrainBench {
                    device,
                    batch: a.batch,
                    precision,
                    channels_last,
                    warmup: a.warmup,
                    iters: a.iters,
                    data: a.data,
                    workers: a.workers,
                },
            )?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("device            {}", r.device);
                println!("model             {} ({}), batch {}", r.preset, r.precision, r.batch);
                println!("s / iteration     {:.3} (median of {})", r.s_per_iter, r.iters);
                println!("iterations / s    {:.2}", r.iter_per_s);
                println!("peak memory       {:.2} GB ({})", r.peak_mem_gb, r.memory_measure);
                println!("data wait         {:.1} % ({})", 100.0 * r.data_wait_fraction, r.data);
            }
            Ok(())
        }
        BenchCommand::Devices(a) => {
            let (name, cfg) = a.model.resolve()?;
            let r = devices::compare(&name, &cfg, select_device(&a.device)?, a.batch)?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{} vs cpu, {name}: largest |difference| of G outputs", r.device);
                println!("  latent, TF32 on     {:.3e}", r.latent_tf32);
                println!("  latent, TF32 off    {:.3e}", r.latent_fp32);
                println!("  reference, TF32 off {:.3e}", r.reference_fp32);
            }
            Ok(())
        }
        BenchCommand::Allreduce(a) => allreduce::run(&a),
    }
}
