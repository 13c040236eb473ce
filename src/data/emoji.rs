//! The emoji dataset: the same emoji in four vendors' styles (Twemoji, Noto, OpenMoji,
//! Fluent 3D) as four domains, rendered from pinned npm packages.
//!
//! Steps: `npm pack` each package into a cache and check its sha256; read the tarballs
//! in memory; render every emoji of the index (`assets/emoji-index.tsv`) with a
//! content-box fit (the visible drawing's bounding box scaled to 88 % of the canvas,
//! centred) on white; write `<out>/{train,val}/<vendor>/<key>.png`. The index already
//! carries the Fluent 3D skin-tone fix (files of 1f3fc and 1f3fd are swapped upstream).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage, RgbaImage};
use rayon::prelude::*;
use resvg::{tiny_skia, usvg};
use sha2::{Digest, Sha256};

use crate::files::sha256_file;
use crate::imaging;

/// A pinned npm package and the sha256 of its tarball as `npm pack` serves it.
pub struct Package {
    pub domain: &'static str,
    pub spec: &'static str,
    pub tarball: &'static str,
    pub sha256: &'static str,
    pub license: &'static str,
    pub attribution: &'static str,
}

pub const PACKAGES: [Package; 4] = [
    Package {
        domain: "fluent3d",
        spec: "@lobehub/fluent-emoji-3d@1.1.0",
        tarball: "lobehub-fluent-emoji-3d-1.1.0.tgz",
        sha256: "c1bb7eee7de090205a232518a9ab4adb3df458bfbe8a1f78232991194c8b2e58",
        license: "MIT",
        attribution: "Fluent Emoji © Microsoft, MIT licence",
    },
    Package {
        domain: "noto",
        spec: "@iconify-json/noto@1.2.9",
        tarball: "iconify-json-noto-1.2.9.tgz",
        sha256: "3e918d88fc945c0bb3d468dbace6f88caef67f01c9f0e7bcae0915a042e8f1ad",
        license: "Apache-2.0",
        attribution: "Noto Emoji © Google, Apache License 2.0",
    },
    Package {
        domain: "openmoji",
        spec: "openmoji@17.0.0",
        tarball: "openmoji-17.0.0.tgz",
        sha256: "55ee7d13485dec86e9f38c1f3a645a13382d33ff97c0cd845ee824b0aef45e68",
        license: "CC-BY-SA-4.0",
        attribution: "OpenMoji, the open-source emoji and icon project (openmoji.org), CC BY-SA 4.0",
    },
    Package {
        domain: "twemoji",
        spec: "@discordapp/twemoji@16.0.1",
        tarball: "discordapp-twemoji-16.0.1.tgz",
        sha256: "2278fd609501e20dc646a546c1d7bbcab86a4c38010ded12b45e61f9687b9d0a",
        license: "CC-BY-4.0",
        attribution: "Twemoji graphics © 2014–2021 Twitter and contributors (jdecked/Discord forks), CC BY 4.0",
    },
];

/// The index: key, name, category, has_skin_tone, split, and each vendor's source.
const INDEX: &str = include_str!("../../assets/emoji-index.tsv");

/// One emoji of the index.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub name: String,
    pub has_skin_tone: bool,
    pub split: String,
    /// Source per domain: a file in the tarball, or an iconify icon name (Noto).
    pub sources: HashMap<&'static str, String>,
}

pub fn index() -> Vec<Entry> {
    let mut lines = INDEX.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().expect("index header").split('\t').collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let col = |n: &str| f.get(header.iter().position(|h| *h == n).unwrap()).copied().unwrap_or("");
            let sources = PACKAGES
                .iter()
                .filter(|p| !col(p.domain).is_empty())
                .map(|p| (p.domain, col(p.domain).to_string()))
                .collect();
            Entry {
                key: col("key").into(),
                name: col("name").into(),
                has_skin_tone: col("has_skin_tone") == "1",
                split: col("split").into(),
                sources,
            }
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct EmojiOptions {
    pub size: u32,
    pub out: PathBuf,
    /// Where the npm tarballs are kept between builds.
    pub cache: PathBuf,
    /// Include skin-tone variants (default: base emoji only, balanced categories).
    pub with_tones: bool,
    /// Keep at most this many emoji per split (chosen by hash, spread over categories).
    pub limit: Option<usize>,
}

/// Returns the verified tarball of `pkg`, fetching it with `npm pack` when needed.
pub fn fetch(pkg: &Package, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("npm");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create cache folder {}", dir.display()))?;
    let path = dir.join(pkg.tarball);
    if path.exists() && sha256_file(&path)? == pkg.sha256 {
        return Ok(path);
    }
    let status = Command::new("npm")
        .args(["pack", pkg.spec, "--silent", "--pack-destination"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| {
            "cannot run `npm` (Node.js's package manager), needed to fetch the emoji packages; install Node.js/npm"
        })?;
    if !status.success() {
        bail!("`npm pack {}` failed ({status}); check the network access to the npm registry", pkg.spec);
    }
    let got = sha256_file(&path).with_context(|| format!("npm pack did not produce {}", path.display()))?;
    if got != pkg.sha256 {
        let _ = std::fs::remove_file(&path);
        bail!(
            "{} has sha256 {got}, expected {}; the registry served a different file, refusing to use it",
            pkg.spec,
            pkg.sha256
        );
    }
    Ok(path)
}

/// Reads the wanted files of a .tgz into memory.
fn read_tarball(path: &Path, wanted: &HashSet<String>) -> Result<HashMap<String, Vec<u8>>> {
    let f = std::fs::File::open(path)?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = HashMap::new();
    for e in ar.entries().with_context(|| format!("{} is not a valid tarball", path.display()))? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().to_string();
        if wanted.contains(&name) {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)?;
            out.insert(name, buf);
        }
    }
    Ok(out)
}

/// Iconify icon bodies wrapped as standalone SVG documents.
fn iconify_svgs(icons_json: &[u8], names: &HashSet<&str>) -> Result<HashMap<String, String>> {
    let v: serde_json::Value = serde_json::from_slice(icons_json).context("icons.json is not valid JSON")?;
    let (dw, dh) = (v["width"].as_f64().unwrap_or(16.0), v["height"].as_f64().unwrap_or(16.0));
    let icons = v["icons"].as_object().context("icons.json has no icons")?;
    let mut out = HashMap::new();
    for n in names {
        let Some(icon) = icons.get(*n) else { continue };
        let body = icon["body"].as_str().unwrap_or_default();
        let (w, h) = (icon["width"].as_f64().unwrap_or(dw), icon["height"].as_f64().unwrap_or(dh));
        let (l, t) = (icon["left"].as_f64().unwrap_or(0.0), icon["top"].as_f64().unwrap_or(0.0));
        out.insert(
            n.to_string(),
            format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" viewBox=\"{l} {t} {w} {h}\">{body}</svg>"
            ),
        );
    }
    Ok(out)
}

/// Share of the canvas taken by the drawing's longer side.
const FILL: f64 = 0.88;

fn alpha_bbox(alpha: impl Fn(u32, u32) -> u8, w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if alpha(x, y) > 8 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    (x0 < x1).then_some((x0, y0, x1, y1))
}

fn on_white_premultiplied(p: &tiny_skia::Pixmap) -> RgbImage {
    let d = p.data();
    RgbImage::from_fn(p.width(), p.height(), |x, y| {
        let i = 4 * (y * p.width() + x) as usize;
        let a = d[i + 3] as u16;
        let c = |v: u8| (v as u16 + 255 - a).min(255) as u8;
        Rgb([c(d[i]), c(d[i + 1]), c(d[i + 2])])
    })
}

/// Renders an SVG so that its visible content fills 88 % of a size×size canvas: a probe
/// render finds the alpha bounding box (vector bounding boxes include clipped, hidden
/// shapes), a second render maps that box to the canvas; content outside the viewBox
/// stays hidden.
pub fn render_svg(svg: &[u8], size: u32) -> Result<RgbImage> {
    let tree = usvg::Tree::from_data(svg, &usvg::Options::default()).context("invalid SVG")?;
    let (vw, vh) = (tree.size().width() as f64, tree.size().height() as f64);
    let probe = 128u32;
    let ps = probe as f64 / vw.max(vh);
    let mut pix = tiny_skia::Pixmap::new(probe, probe).context("pixmap")?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(ps as f32, ps as f32), &mut pix.as_mut());
    let Some((x0, y0, x1, y1)) = alpha_bbox(|x, y| pix.pixel(x, y).unwrap().alpha(), probe, probe) else {
        bail!("the SVG draws nothing");
    };
    // Bounding box in SVG units, padded by half a probe pixel.
    let pad = 0.5;
    let (bx0, by0) = ((x0 as f64 - pad) / ps, (y0 as f64 - pad) / ps);
    let (bx1, by1) = ((x1 as f64 + pad) / ps, (y1 as f64 + pad) / ps);
    let s = FILL * size as f64 / (bx1 - bx0).max(by1 - by0);
    let (cx, cy) = ((bx0 + bx1) / 2.0, (by0 + by1) / 2.0);
    let (tx, ty) = (size as f64 / 2.0 - cx * s, size as f64 / 2.0 - cy * s);
    let mut pix = tiny_skia::Pixmap::new(size, size).context("pixmap")?;
    let t = tiny_skia::Transform::from_row(s as f32, 0.0, 0.0, s as f32, tx as f32, ty as f32);
    resvg::render(&tree, t, &mut pix.as_mut());
    // Hide whatever lies outside the mapped viewBox.
    let (vx0, vy0, vx1, vy1) = (tx, ty, tx + vw * s, ty + vh * s);
    let w = size;
    let data = pix.data_mut();
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
            if fx < vx0 || fy < vy0 || fx > vx1 || fy > vy1 {
                let i = 4 * (y * w + x) as usize;
                data[i..i + 4].fill(0);
            }
        }
    }
    Ok(on_white_premultiplied(&pix))
}

/// Fits a raster emoji (RGBA) the same way: alpha-box crop, Lanczos resize to 88 %,
/// centred, alpha-blended on white.
pub fn render_raster(data: &[u8], size: u32) -> Result<RgbImage> {
    let img: RgbaImage = image::load_from_memory(data).context("undecodable image")?.to_rgba8();
    let Some((x0, y0, x1, y1)) = alpha_bbox(|x, y| img.get_pixel(x, y).0[3], img.width(), img.height()) else {
        bail!("the image is fully transparent");
    };
    let crop = image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image();
    let scale = FILL * size as f64 / (x1 - x0).max(y1 - y0) as f64;
    let (nw, nh) =
        (((x1 - x0) as f64 * scale).round().max(1.0) as u32, ((y1 - y0) as f64 * scale).round().max(1.0) as u32);
    let fitted = image::imageops::resize(&crop, nw, nh, image::imageops::FilterType::Lanczos3);
    let mut canvas = RgbaImage::from_pixel(size, size, image::Rgba([255, 255, 255, 255]));
    image::imageops::overlay(&mut canvas, &fitted, ((size - nw) / 2) as i64, ((size - nh) / 2) as i64);
    Ok(image::DynamicImage::ImageRgba8(canvas).to_rgb8())
}

pub struct Summary {
    pub written: usize,
    pub per_split: Vec<(String, usize)>,
    pub failures: Vec<String>,
}

/// The emoji to build: present in all four vendors, base emoji unless `with_tones`,
/// at most `limit` per split (chosen by a hash of the key, so categories stay mixed).
pub fn select(entries: &[Entry], with_tones: bool, limit: Option<usize>) -> Vec<Entry> {
    let mut chosen: Vec<Entry> = entries
        .iter()
        .filter(|e| e.sources.len() == PACKAGES.len() && (with_tones || !e.has_skin_tone))
        .cloned()
        .collect();
    if let Some(n) = limit {
        let hash = |k: &str| Sha256::digest(k.as_bytes()).to_vec();
        chosen.sort_by_key(|e| hash(&e.key));
        let mut kept = Vec::new();
        for split in ["train", "val"] {
            kept.extend(chosen.iter().filter(|e| e.split == split).take(n).cloned());
        }
        chosen = kept;
    }
    chosen
}

pub fn build(opts: &EmojiOptions, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<Summary> {
    if !(16..=256).contains(&opts.size) {
        bail!("--size {} is out of range: use 16 to 256 (Fluent 3D is 256-px raster art)", opts.size);
    }
    let entries = select(&index(), opts.with_tones, opts.limit);
    let mut jobs: Vec<(&'static str, Entry, Vec<u8>)> = Vec::new();
    for pkg in PACKAGES.iter() {
        let tgz = fetch(pkg, &opts.cache)?;
        let names: HashSet<&str> =
            entries.iter().filter_map(|e| e.sources.get(pkg.domain).map(String::as_str)).collect();
        if pkg.domain == "noto" {
            let files = read_tarball(&tgz, &HashSet::from(["package/icons.json".to_string()]))?;
            let json = files.get("package/icons.json").context("package/icons.json missing from the Noto tarball")?;
            let svgs = iconify_svgs(json, &names)?;
            for e in &entries {
                let src = &e.sources[pkg.domain];
                let svg = svgs.get(src).with_context(|| format!("icon '{src}' missing from {}", pkg.spec))?;
                jobs.push((pkg.domain, e.clone(), svg.clone().into_bytes()));
            }
        } else {
            let wanted: HashSet<String> = names.iter().map(|s| s.to_string()).collect();
            let mut files = read_tarball(&tgz, &wanted)?;
            for e in &entries {
                let src = &e.sources[pkg.domain];
                let bytes = files.remove(src).with_context(|| format!("{src} missing from {}", pkg.spec))?;
                jobs.push((pkg.domain, e.clone(), bytes));
            }
        }
    }
    let done = AtomicUsize::new(0);
    let total = jobs.len();
    let results: Vec<Result<(), String>> = jobs
        .par_iter()
        .map(|(domain, e, bytes)| {
            let img = if e.sources[domain].ends_with(".webp") {
                render_raster(bytes, opts.size)
            } else {
                render_svg(bytes, opts.size)
            };
            let r = img.and_then(|img| {
                imaging::save(&img, &opts.out.join(&e.split).join(domain).join(format!("{}.png", e.key)))
            });
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            r.map_err(|err| format!("{domain}/{}: {err:#}", e.key))
        })
        .collect();
    let failures: Vec<String> = results.into_iter().filter_map(|r| r.err()).collect();
    write_notice(&opts.out)?;
    let per_split =
        ["train", "val"].iter().map(|s| (s.to_string(), entries.iter().filter(|e| e.split == *s).count())).collect();
    Ok(Summary { written: total - failures.len(), per_split, failures })
}

/// Attribution and licences, written next to the data.
pub fn write_notice(out: &Path) -> Result<()> {
    let mut s = String::from(
        "# Emoji dataset: attribution and licences\n\nRendered by `stargan data emoji` from these npm packages (sha256-pinned):\n\n",
    );
    for p in PACKAGES.iter() {
        s.push_str(&format!("- `{}` ({}): {} — {}\n", p.domain, p.spec, p.attribution, p.license));
    }
    s.push_str(
        "\nOpenMoji's licence is CC BY-SA 4.0 (ShareAlike): a redistributed copy of these renders must stay under \
         CC BY-SA 4.0. Twemoji and OpenMoji require attribution as above.\n",
    );
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("ATTRIBUTION.md"), s)?;
    Ok(())
}
