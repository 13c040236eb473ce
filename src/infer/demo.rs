//! The demo page: held-out example images translated into every domain, with random
//! styles (several seeds, truncated by ψ) and with the styles of reference images, plus
//! style-interpolation strips, on one self-contained HTML page beside its PNG grids.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::RgbImage;
use tch::{Kind, Tensor};

use super::load::LoadedModel;
use super::translate::mean_style;
use super::truncate;
use crate::data::ImageFolder;
use crate::imaging;
use crate::rng::{latent_codes, Stream};

pub struct DemoOptions {
    /// Example images, one sub-folder per domain (the model's domain names).
    pub examples: PathBuf,
    pub out: PathBuf,
    /// Random styles per target domain.
    pub styles: usize,
    pub psi: f64,
    pub seed: u64,
    /// Latent codes averaged for the mean style of ψ.
    pub mean_style_samples: i64,
    /// Folder of the mean-style cache.
    pub cache: Option<PathBuf>,
    /// Frames of each interpolation strip.
    pub steps: usize,
}

pub struct DemoReport {
    pub page: PathBuf,
    pub images: Vec<PathBuf>,
}

/// One figure of the page.
struct Figure {
    file: String,
    title: String,
    caption: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&#39;").replace('"', "&quot;")
}

/// Sources: the i-th example of domain i mod K, so that every domain's style appears
/// among the sources and no emoji twice. References: the examples not used as sources,
/// two per domain.
/// Image files with their domain labels.
type Labelled = Vec<(PathBuf, i64)>;

fn pick(examples: &ImageFolder) -> (Labelled, Labelled) {
    let k = examples.domains.len();
    let n = examples.files.iter().map(Vec::len).min().unwrap_or(0);
    let mut sources = Vec::new();
    for i in 0..n {
        let d = i % k;
        sources.push((examples.files[d][i].clone(), d as i64));
    }
    let mut refs = Vec::new();
    for d in 0..k {
        let mut taken = 0;
        for i in (0..n).rev() {
            if i % k != d && taken < 2 {
                refs.push((examples.files[d][i].clone(), d as i64));
                taken += 1;
            }
        }
    }
    (sources, refs)
}

fn load(items: &[(PathBuf, i64)], size: u32) -> Result<Tensor> {
    let xs: Vec<Tensor> = items.iter().map(|(p, _)| imaging::load_tensor(p, size)).collect::<Result<_>>()?;
    Ok(Tensor::cat(&xs, 0))
}

pub fn run(m: &LoadedModel, o: &DemoOptions) -> Result<DemoReport> {
    let examples = ImageFolder::open(&o.examples)
        .with_context(|| format!("the demo needs example images in {}", o.examples.display()))?;
    if examples.domains != m.domains {
        bail!(
            "the examples in {} are of the domains {} but the model's domains are {}; pass --examples with one \
             sub-folder per model domain",
            o.examples.display(),
            examples.domains.join(", "),
            m.domains.join(", ")
        );
    }
    if o.styles == 0 || o.steps < 2 {
        bail!("--styles must be at least 1 and --steps at least 2");
    }
    let size = m.cfg.img_size as u32;
    let (t, d) = (m.translator(), m.device);
    let k = m.cfg.num_domains;
    let (sources, refs) = pick(&examples);
    if sources.is_empty() {
        bail!("{} holds no example images", o.examples.display());
    }
    let x = load(&sources, size)?.to_device(d);
    let n = x.size()[0];
    let masks = t.masks(&x);
    std::fs::create_dir_all(&o.out).with_context(|| format!("cannot create {}", o.out.display()))?;
    let mut figures = Vec::new();
    let mut images = Vec::new();
    let mut save = |img: &RgbImage, file: &str, title: &str, caption: String| -> Result<()> {
        let path = o.out.join(file);
        imaging::save(img, &path)?;
        images.push(path);
        figures.push(Figure { file: file.into(), title: title.into(), caption });
        Ok(())
    };

    // Latent-guided: per target domain, the same `styles` codes for every source.
    let z = latent_codes(o.seed, Stream::TranslateStyles, 0, o.styles as i64, m.cfg.latent_dim).to_device(d);
    let mut latent: Vec<Vec<RgbImage>> = vec![Vec::new(); n as usize];
    let mut mean_styles = Vec::new();
    for y in 0..k {
        let s_avg = mean_style(m, y, o.mean_style_samples, o.cache.as_deref())?;
        let s_all = truncate(
            &s_avg.expand([o.styles as i64, -1], true),
            &t.latent_style(&z, &Tensor::full([o.styles as i64], y, (Kind::Int64, d))),
            o.psi,
        );
        for j in 0..o.styles as i64 {
            let out = t.generate_masked(&x, &s_all.narrow(0, j, 1).expand([n, -1], true), masks.as_ref());
            for (i, img) in imaging::to_images(&out).into_iter().enumerate() {
                latent[i].push(img);
            }
        }
        mean_styles.push((s_avg, s_all));
    }
    let mut tiles = Vec::new();
    for (src, outs) in imaging::to_images(&x).into_iter().zip(latent) {
        tiles.push(src);
        tiles.extend(outs);
    }
    save(
        &imaging::grid(&tiles, 1 + k as usize * o.styles),
        "latent.png",
        "Random styles (latent-guided)",
        format!(
            "Each row: a held-out source, then its translations into {} ({} random styles each, the same codes in every \
             row, ψ = {}).",
            m.domains.join(", "),
            o.styles,
            o.psi
        ),
    )?;

    // Reference-guided: references across the top, each source translated with the style
    // of each reference (into the reference's domain).
    let xr = load(&refs, size)?.to_device(d);
    let yr = Tensor::from_slice(&refs.iter().map(|(_, y)| *y).collect::<Vec<_>>()).to_device(d);
    let s_ref = t.reference_style(&xr, &yr);
    let mut tiles = vec![imaging::blank(size, size)];
    tiles.extend(imaging::to_images(&xr));
    let mut by_ref = Vec::new();
    for r in 0..xr.size()[0] {
        by_ref.push(imaging::to_images(&t.generate_masked(
            &x,
            &s_ref.narrow(0, r, 1).expand([n, -1], true),
            masks.as_ref(),
        )));
    }
    for (i, src) in imaging::to_images(&x).into_iter().enumerate() {
        tiles.push(src);
        tiles.extend(by_ref.iter().map(|outs| outs[i].clone()));
    }
    save(
        &imaging::grid(&tiles, 1 + refs.len()),
        "reference.png",
        "Styles of reference images (reference-guided)",
        "First row: reference images, two per domain. Each further row: a held-out source, then its translation \
         with the style of the reference above."
            .into(),
    )?;

    // Interpolation: the first source, from the first random style to the second of each
    // domain (or from the mean style when there is only one).
    let alphas: Vec<f64> = (0..o.steps).map(|i| i as f64 / (o.steps - 1) as f64).collect();
    let x0 = x.narrow(0, 0, 1);
    let m0 = masks
        .as_ref()
        .map(|mk| crate::model::Masks { coarse: mk.coarse.narrow(0, 0, 1), fine: mk.fine.narrow(0, 0, 1) });
    let mut tiles = Vec::new();
    for (s_avg, s_all) in &mean_styles {
        let from = if o.styles >= 2 { s_all.narrow(0, 0, 1) } else { s_avg.shallow_clone() };
        let to = s_all.narrow(0, (o.styles as i64 - 1).min(1), 1);
        tiles.extend(imaging::to_images(&x0));
        for a in &alphas {
            tiles.extend(imaging::to_images(&t.generate_masked(&x0, &from.lerp(&to, *a), m0.as_ref())));
        }
    }
    save(
        &imaging::grid(&tiles, 1 + o.steps),
        "interpolation.png",
        "Style interpolation",
        format!(
            "One source; each row moves between two random styles of one domain ({}), in {} steps.",
            m.domains.join(", "),
            o.steps
        ),
    )?;

    let page = o.out.join("index.html");
    write_page(&page, m, o, &figures)?;
    Ok(DemoReport { page, images })
}

fn write_page(path: &Path, m: &LoadedModel, o: &DemoOptions, figures: &[Figure]) -> Result<()> {
    let mut html = String::from(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>StarGAN v2 demo</title><style>\
         body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
         img{image-rendering:pixelated;border:1px solid #ccc;max-width:100%}\
         figure{margin:1.5em 0}figcaption{color:#555;margin-top:.4em}code{background:#f3f3f3;padding:0 .2em}\
         </style></head><body><h1>StarGAN v2: one generator, every style</h1>",
    );
    let _ = write!(
        html,
        "<p>Model <code>{}</code>: {} px, domains {}. The sources and references below are held-out validation images \
         that the model never saw in training (from <code>{}</code>).</p>",
        escape(&m.path.display().to_string()),
        m.cfg.img_size,
        escape(&m.domains.join(", ")),
        escape(&o.examples.display().to_string())
    );
    for f in figures {
        let _ = write!(
            html,
            "<figure><h2>{}</h2><img src='{}' alt='{}' style='width:{}px'><figcaption>{}</figcaption></figure>",
            escape(&f.title),
            escape(&f.file),
            escape(&f.title),
            // Shown at twice the size: 64-px tiles are small on a screen.
            2 * imaging::load_rgb(&path.with_file_name(&f.file))?.width(),
            escape(&f.caption)
        );
    }
    html.push_str("</body></html>\n");
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
