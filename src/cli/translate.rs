use std::path::PathBuf;

use anyhow::Result;

use super::model_args::{cache_dir, ModelArgs};
use crate::infer::load::image_inputs;
use crate::infer::translate::{run as translate, StyleMode, TranslateJob};

/// Translate images into a domain, with random styles or the style of reference images.
///
/// Writes one PNG per source and style (<source>_<domain>_<style>.png) and grid.png
/// (one row per source: the source, then its translations).
///
/// Examples:
///   stargan translate --checkpoint runs/afhq/checkpoints/100000.safetensors --input cat.jpg --domain dog --styles 8 --out out/
///   stargan translate --checkpoint 100000_nets_ema.ckpt --preset afhq --input cats/ --domain wild --reference lions/ --out out/
///   stargan translate --checkpoint celeba.ckpt --preset celeba-hq --wing wing.ckpt --input me.jpg --domain male --psi 0.7 --out out/
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment, allow_negative_numbers = true)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Source image, or a folder of them (searched recursively).
    #[arg(long)]
    pub input: PathBuf,
    /// Target domain name (e.g. dog).
    #[arg(long)]
    pub domain: String,
    /// Number of random styles per source (latent-guided).
    #[arg(long, default_value_t = 4, conflicts_with = "reference")]
    pub styles: usize,
    /// Seed of the random styles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Truncation toward the domain's mean style (1 = none).
    #[arg(long, default_value_t = 1.0)]
    pub psi: f64,
    /// Reference image or folder: translate with each reference's style instead.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Images per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Latent codes averaged for the mean style (cached).
    #[arg(long, default_value_t = 10000)]
    pub mean_style_samples: i64,
}

pub fn run(a: Args) -> Result<()> {
    if !(0.0..=1.0).contains(&a.psi) {
        anyhow::bail!("--psi must be between 0 and 1, got {}", a.psi);
    }
    let sources = image_inputs(&a.input)?;
    let model = a.model.load()?;
    model.domain_index(&a.domain)?;
    let mode = match &a.reference {
        Some(r) => StyleMode::Reference(image_inputs(r)?),
        None => {
            StyleMode::Latent { count: a.styles, seed: a.seed, psi: a.psi, mean_style_samples: a.mean_style_samples }
        }
    };
    let job = TranslateJob {
        model: &model,
        sources,
        domain: a.domain.clone(),
        mode,
        out: a.out.clone(),
        batch: a.batch,
        cache: Some(cache_dir()),
    };
    let r = translate(&job)?;
    eprintln!("wrote {} images and {} to {}", r.files.len(), r.grid.display(), a.out.display());
    Ok(())
}
