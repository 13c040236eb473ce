use std::path::PathBuf;

use anyhow::Result;

use crate::infer::export::export;

/// Export the inference networks of a checkpoint (EMA G, F, E, configuration and domain
/// names; no discriminator or optimizer state) to a small safetensors file.
///
/// Example:
///   stargan export --checkpoint runs/emoji/checkpoints/040000.safetensors --out models/emoji64.safetensors --half
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A training checkpoint of ours, an exported file, or an official .ckpt with a config.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// Store float16 (half the size); refused if a translation moves by more than 1/255.
    #[arg(long)]
    pub half: bool,
    /// FAN weights (official wing.ckpt) for a model with face masks whose checkpoint
    /// lacks them; they are written into the exported file.
    #[arg(long)]
    pub wing: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let r = export(&a.checkpoint, &a.out, a.half, a.wing.as_deref())?;
    eprintln!(
        "wrote {} ({:.1} MB{}; largest change of a translated pixel: {} of 255)",
        r.path.display(),
        r.bytes as f64 / 1e6,
        if a.half { ", float16" } else { "" },
        r.max_level_diff
    );
    Ok(())
}
