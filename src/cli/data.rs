use std::path::PathBuf;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::emoji::{build, EmojiOptions};
use crate::files::cache_dir;

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Build the emoji dataset: four vendor styles (fluent3d, noto, openmoji, twemoji) as domains.
    ///
    /// Fetches four pinned npm packages with `npm pack` (sha256-checked, cached), renders
    /// every emoji on white and writes <out>/{train,val}/<vendor>/<key>.png.
    ///
    /// Example: stargan data emoji --size 128 --out data/emoji128
    #[command(verbatim_doc_comment)]
    Emoji(EmojiArgs),
}

#[derive(clap::Args, Debug)]
pub struct EmojiArgs {
    /// Side of the rendered images in pixels (16–256).
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Cache for the npm tarballs (default: $STARGAN_CACHE or ~/.cache/stargan).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Include the skin-tone variants (3,119 per vendor instead of 1,599 base emoji).
    #[arg(long)]
    pub with_tones: bool,
    /// Keep at most N emoji per split (for quick experiments).
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Emoji(a) => {
            let opts = EmojiOptions {
                size: a.size,
                out: a.out.clone(),
                cache: a.cache.unwrap_or_else(cache_dir),
                with_tones: a.with_tones,
                limit: a.limit,
            };
            let bar = ProgressBar::new(0);
            bar.set_style(ProgressStyle::with_template("rendering {bar:30} {pos}/{len} [{elapsed}<{eta}]").unwrap());
            let s = build(&opts, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            for f in s.failures.iter().take(10) {
                eprintln!("failed: {f}");
            }
            let splits: Vec<String> = s.per_split.iter().map(|(n, c)| format!("{c} {n}")).collect();
            eprintln!(
                "wrote {} images to {} ({} emoji per vendor; licences in {}/ATTRIBUTION.md)",
                s.written,
                a.out.display(),
                splits.join(" + "),
                a.out.display()
            );
            if !s.failures.is_empty() {
                bail!("{} emoji could not be rendered", s.failures.len());
            }
            Ok(())
        }
    }
}
