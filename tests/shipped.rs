//! The model shipped in `models/`: it loads, it translates the bundled examples, its
//! outputs depend on the target domain and on the style (a collapsed model fails), and
//! `make demo`'s page shows images that exist and decode.
//!
//! The LPIPS thresholds come from the shipped model's evaluation (docs/quality.md): its
//! LPIPS diversity between latent-guided styles on the validation split is
//! `LATENT_DIVERSITY_EVAL` (the 300-iteration model already has 0.166); a model whose mapping network or style
//! injection collapsed gives ≈ 0. The tests ask for half of the evaluated figure on the
//! eight bundled examples, for styles and for domains alike.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use stargan::checkpoint::Checkpoint;
use stargan::files::{example_emoji, shipped_model};
use stargan::imaging;
use stargan::infer::load::{load_model, LoadedModel, ModelSource};
use stargan::metrics::lpips::Lpips;
use stargan::metrics::weights::{resolve, LPIPS_ALEXNET};
use tch::{Device, Kind, Tensor};

/// `LPIPS_latent/mean` of `stargan eval` on the shipped model (docs/quality.md).
const LATENT_DIVERSITY_EVAL: f64 = 0.224;
/// Styles must differ by at least half of that on the bundled examples.
const MIN_STYLE_LPIPS: f64 = LATENT_DIVERSITY_EVAL / 2.0;
/// Domains must differ by at least the same threshold (measured with the 61,000-iteration
/// model: domains 0.23–0.35 apart, two styles of one domain 0.16–0.33).
const MIN_DOMAIN_LPIPS: f64 = MIN_STYLE_LPIPS;

fn model() -> LoadedModel {
    load_model(&ModelSource { checkpoint: shipped_model(), ..Default::default() }, Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e:#}", shipped_model().display()))
}

fn lpips() -> Lpips {
    Lpips::load(&resolve(&LPIPS_ALEXNET, None, &test_cache()).unwrap(), Device::Cpu).unwrap()
}

/// The bundled examples of one domain, as a batch in [-1, 1].
fn examples(domain: &str, size: u32) -> Tensor {
    let dir = example_emoji().join(domain);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 8, "{}", dir.display());
    Tensor::cat(&files.iter().map(|f| imaging::load_tensor(f, size).unwrap()).collect::<Vec<_>>(), 0)
}

fn mean_lpips(l: &Lpips, a: &Tensor, b: &Tensor) -> f64 {
    l.distance(&a.to_kind(Kind::Float), &b.to_kind(Kind::Float)).mean(Kind::Double).double_value(&[])
}

#[test]
fn the_shipped_model_loads_with_the_emoji_domains() {
    let m = model();
    assert_eq!(m.domains, ["fluent3d", "noto", "openmoji", "twemoji"]);
    assert_eq!(m.cfg.img_size, 64);
    // An exported inference file: the EMA networks of a training checkpoint, nothing else.
    let c = Checkpoint::open(shipped_model()).unwrap();
    assert_eq!(c.metadata["kind"], "inference");
    assert!(c.metadata["source_iteration"].parse::<u64>().unwrap() > 0);
    let x = examples("twemoji", 64);
    let t = m.translator();
    let y = Tensor::from_slice(&[0i64; 8]);
    let out = tch::no_grad(|| {
        t.generate(&x, &t.latent_style(&Tensor::randn([8, m.cfg.latent_dim], (Kind::Float, Device::Cpu)), &y))
    });
    assert_eq!(out.size(), [8, 3, 64, 64]);
    assert!(out.isfinite().all().int64_value(&[]) == 1);
}

#[test]
fn outputs_differ_across_styles_and_domains() {
    let m = model();
    let l = lpips();
    let t = m.translator();
    let x = examples("noto", 64);
    tch::manual_seed(7);
    let n = x.size()[0];
    let z1 = Tensor::randn([n, m.cfg.latent_dim], (Kind::Float, Device::Cpu));
    let z2 = Tensor::randn([n, m.cfg.latent_dim], (Kind::Float, Device::Cpu));
    let mut by_domain = Vec::new();
    let mut style_distances = Vec::new();
    for d in 0..m.domains.len() as i64 {
        let y = Tensor::full([n], d, (Kind::Int64, Device::Cpu));
        let (a, b) =
            tch::no_grad(|| (t.generate(&x, &t.latent_style(&z1, &y)), t.generate(&x, &t.latent_style(&z2, &y))));
        let s = mean_lpips(&l, &a, &b);
        eprintln!("{}: LPIPS between two styles {s:.4}", m.domains[d as usize]);
        style_distances.push(s);
        by_domain.push(a);
    }
    let style = style_distances.iter().sum::<f64>() / style_distances.len() as f64;
    assert!(style > MIN_STYLE_LPIPS, "mean LPIPS between styles {style:.4} ≤ {MIN_STYLE_LPIPS:.4}: collapsed styles");
    for i in 0..by_domain.len() {
        for j in i + 1..by_domain.len() {
            let d = mean_lpips(&l, &by_domain[i], &by_domain[j]);
            eprintln!("{} vs {}: LPIPS {d:.4}", m.domains[i], m.domains[j]);
            assert!(d > MIN_DOMAIN_LPIPS, "{} and {} outputs differ by LPIPS {d:.4} only", m.domains[i], m.domains[j]);
        }
    }
}

/// Every `src='…'` of a page, resolved next to it.
fn page_images(page: &Path) -> Vec<PathBuf> {
    let html = std::fs::read_to_string(page).unwrap();
    html.split("src='").skip(1).map(|rest| page.with_file_name(rest.split('\'').next().unwrap())).collect()
}

#[test]
fn make_demo_page_shows_images_that_exist_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    // What `make demo` runs (there with --device auto): the shipped model, the bundled examples.
    let o = stargan_bin().args(["demo", "--device", "cpu", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let images = page_images(&out.join("index.html"));
    assert_eq!(images.len(), 3, "latent, reference and interpolation figures");
    for p in &images {
        let img = imaging::load_rgb(p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert!(img.width() >= 64 * 5 && img.height() >= 64, "{}: {}×{}", p.display(), img.width(), img.height());
    }
}
