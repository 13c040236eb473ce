use std::path::PathBuf;

use anyhow::Result;

use super::model_args::{cache_dir, ModelArgs};
use crate::files;
use crate::infer::demo::{run as demo, DemoOptions};

/// Translate the bundled held-out example emoji into every style and write one page.
///
/// Without flags it uses the model shipped in models/ and the examples in
/// assets/examples/emoji, and writes runs/demo/index.html with its PNG grids: random
/// styles (latent-guided), the styles of reference images, and interpolation strips.
///
/// Examples:
///   stargan demo
///   stargan demo --checkpoint runs/emoji/checkpoints/040000.safetensors --out runs/demo-mine
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Example images, one sub-folder per domain (default: the bundled emoji).
    #[arg(long)]
    pub examples: Option<PathBuf>,
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Random styles per domain.
    #[arg(long, default_value_t = 3)]
    pub styles: usize,
    /// Truncation toward each domain's mean style (1 = none).
    #[arg(long, default_value_t = 0.7)]
    pub psi: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames of each interpolation strip.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Latent codes averaged for the mean style (cached).
    #[arg(long, default_value_t = 10000)]
    pub mean_style_samples: i64,
}

pub fn run(a: Args) -> Result<()> {
    if !(0.0..=1.0).contains(&a.psi) {
        anyhow::bail!("--psi must be between 0 and 1, got {}", a.psi);
    }
    let model = a.model.load()?;
    let started = std::time::Instant::now();
    let r = demo(
        &model,
        &DemoOptions {
            examples: a.examples.unwrap_or_else(files::example_emoji),
            out: a.out,
            styles: a.styles,
            psi: a.psi,
            seed: a.seed,
            mean_style_samples: a.mean_style_samples,
            cache: Some(cache_dir()),
            steps: a.steps,
        },
    )?;
    eprintln!(
        "wrote {} and {} images in {:.1} s; open it in a browser",
        r.page.display(),
        r.images.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
