mod infer;
mod measure;
mod train;

use anyhow::Result;

use crate::device::select_device;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Latency and throughput of latent- and reference-guided translation (random weights).
    ///
    /// Example: stargan bench infer --preset afhq --device cpu --batch 1
    Infer(InferArgs),
    /// Seconds per training iteration (the full official step) with random weights.
    ///
    /// Example: stargan bench train --preset afhq --device cuda --batch 8 --data data/afhq/train
    Train(TrainArgs),
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[arg(long, default_value = "afhq")]
    pub preset: String,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long, default_value_t = 8)]
    pub batch: i64,
    /// fp32 (TF32 convolutions on GPU). bf16 is not implemented yet.
    #[arg(long, default_value = "fp32")]
    pub precision: String,
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
    #[arg(long, default_value = "afhq")]
    pub preset: String,
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

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Infer(a) => {
            let r = infer::infer(&a.preset, select_device(&a.device)?, a.batch, a.warmup, a.iters)?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("device        {}", r.device);
                println!("preset        {} ({} px), batch {}", r.preset, r.img_size, r.batch);
                println!("translation   median ms/batch   images/s");
                println!("latent        {:>15.1}   {:>8.2}", r.latent_ms, r.latent_img_per_s);
                println!("reference     {:>15.1}   {:>8.2}", r.reference_ms, r.reference_img_per_s);
                println!("peak RSS      {:.0} MiB", r.peak_rss_mb);
            }
            Ok(())
        }
        BenchCommand::Train(a) => {
            if a.precision != "fp32" {
                anyhow::bail!("--precision {}: only fp32 is implemented so far", a.precision);
            }
            let r = train::train(
                &a.preset,
                select_device(&a.device)?,
                a.batch,
                a.warmup,
                a.iters,
                a.data.as_deref(),
                a.workers,
            )?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("device            {}", r.device);
                println!("preset            {} ({}), batch {}", r.preset, r.precision, r.batch);
                println!("s / iteration     {:.3} (median of {})", r.s_per_iter, r.iters);
                println!("iterations / s    {:.2}", r.iter_per_s);
                println!("peak memory       {:.2} GB", r.peak_mem_gb);
                println!("data wait         {:.1} % ({})", 100.0 * r.data_wait_fraction, r.data);
            }
            Ok(())
        }
    }
}
