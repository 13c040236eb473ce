use std::path::PathBuf;

use anyhow::Result;

use super::model_args::{cache_dir, ModelArgs};
use crate::infer::sample::{run as sample, SampleOptions};

/// The official sample mode: reference grid, latent grids per domain, and a
/// style-interpolation animation (GIF; MP4 with --mp4 when ffmpeg is installed).
///
/// --src and --ref are folders with one sub-folder per domain; the first --limit images
/// of each (in label order) are used.
///
/// Example:
///   stargan sample --checkpoint 100000_nets_ema.ckpt --preset afhq --src assets/afhq/src --ref assets/afhq/ref --out results/
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Source images (one sub-folder per domain).
    #[arg(long)]
    pub src: PathBuf,
    /// Reference images (one sub-folder per domain).
    #[arg(long = "ref")]
    pub refs: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// Use at most this many sources and references.
    #[arg(long, default_value_t = 32)]
    pub limit: usize,
    /// Truncation of the latent grids (1 = none).
    #[arg(long, default_value_t = 1.0)]
    pub psi: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 10000)]
    pub mean_style_samples: i64,
    /// Skip the interpolation animation.
    #[arg(long)]
    pub no_animation: bool,
    /// Write the animation as MP4 when ffmpeg is on the PATH (default: animated GIF).
    #[arg(long)]
    pub mp4: bool,
}

pub fn run(a: Args) -> Result<()> {
    let model = a.model.load()?;
    let r = sample(
        &model,
        &SampleOptions {
            src: a.src,
            refs: a.refs,
            out: a.out.clone(),
            limit: a.limit,
            psi: a.psi,
            seed: a.seed,
            mean_style_samples: a.mean_style_samples,
            animation: !a.no_animation,
            prefer_mp4: a.mp4,
            cache: Some(cache_dir()),
        },
    )?;
    for f in &r.files {
        eprintln!("wrote {}", f.display());
    }
    if let Some(why) = r.animation_skipped {
        eprintln!("animation skipped: {why}");
    }
    Ok(())
}
