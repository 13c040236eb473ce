use anyhow::Result;

use crate::device::parse_device;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Latency and throughput of latent- and reference-guided translation (random weights).
    ///
    /// Example: stargan bench infer --preset afhq --device cpu --batch 1
    Infer(InferArgs),
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
            let r = crate::bench::infer(&a.preset, parse_device(&a.device)?, a.batch, a.warmup, a.iters)?;
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("device        {}", r.device);
                println!("preset        {} ({} px), batch {}", r.preset, r.img_size, r.batch);
                println!("translation   median ms/batch   images/s");
                println!("latent        {:>15.1}   {:>8.2}", r.latent_ms, r.latent_img_per_s);
                println!("reference     {:>15.1}   {:>8.2}", r.reference_ms, r.reference_img_per_s);
                println!("peak RSS      {:.0} MB", r.peak_rss_mb);
            }
            Ok(())
        }
    }
}
