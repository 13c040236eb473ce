//! The demo page and exported inference files, on tiny models (the shipped model has its
//! own tests in `shipped.rs`).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use stargan::checkpoint::native::{metadata, save_modules};
use stargan::checkpoint::Checkpoint;
use stargan::imaging;
use stargan::infer::load::{load_model, ModelSource};
use stargan::model::{Init, TranslationNets};
use stargan::train::trainer::{run, Resume, TrainOptions};
use stargan::train::TrainConfig;
use tch::{Device, Kind, Tensor};

/// Every `src='…'` of a page, resolved next to it.
pub fn page_images(page: &Path) -> Vec<PathBuf> {
    let html = std::fs::read_to_string(page).unwrap();
    html.split("src='").skip(1).map(|rest| page.with_file_name(rest.split('\'').next().unwrap())).collect()
}

#[test]
fn demo_page_references_images_that_exist_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_emoji_model(dir.path());
    let out = dir.path().join("demo");
    let o = stargan_bin()
        .args(["demo", "--device", "cpu", "--mean-style-samples", "200", "--checkpoint"])
        .arg(&ckpt)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let images = page_images(&out.join("index.html"));
    assert_eq!(images.len(), 3, "latent, reference and interpolation figures");
    for p in &images {
        let img = imaging::load_rgb(p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert_eq!(img.width() % 32, 0, "{}: whole 32-px tiles", p.display());
    }
    // Latent grid: 8 sources (rows) × (source + 4 domains × 3 styles) columns.
    let latent = imaging::load_rgb(&out.join("latent.png")).unwrap();
    assert_eq!((latent.width(), latent.height()), (13 * 32, 8 * 32));
    // Another model's domains do not fit the bundled examples: a clear error.
    let other = dir.path().join("other.safetensors");
    let cfg = tiny_model(3);
    let nets = TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    save_modules(&other, &nets.modules(), metadata(&cfg, &names, &[])).unwrap();
    let o = stargan_bin()
        .args(["demo", "--device", "cpu", "--checkpoint"])
        .arg(&other)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("one sub-folder per model domain"));
}

fn probe(path: &Path) -> Tensor {
    let m = load_model(&ModelSource { checkpoint: path.to_path_buf(), ..Default::default() }, Device::Cpu).unwrap();
    tch::manual_seed(3);
    let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let z = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2]);
    let t = m.translator();
    t.generate(&x, &t.latent_style(&z, &y))
}

#[test]
fn export_keeps_the_inference_networks_and_float16_translates_alike() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let afhq = data_dir().join("representative/afhq");
    run(&TrainOptions {
        data: afhq.join("ref"),
        val: None,
        out: run_dir.clone(),
        model: tiny_model(3),
        train: TrainConfig { total_iters: 1, batch_size: 2, seed: 3, ..TrainConfig::default() },
        device: Device::Cpu,
        workers: 1,
        prefetch: 1,
        print_every: 1,
        sample_every: 0,
        save_every: 1,
        keep_last: 1,
        resume: Resume::No,
        init: None,
        wing: None,
        sample_size: 2,
        mean_style_samples: 10,
        eval: None,
        precision: stargan::train::Precision::Fp32,
        channels_last: false,
        r1: Default::default(),
        save_all_ranks: false,
        progress_bar: false,
        share_cpu: false,
    })
    .unwrap();
    let ckpt = run_dir.join("checkpoints/000001.safetensors");
    let out = dir.path().join("model.safetensors");
    // float16 is kept only when it moves no translated pixel by more than one 8-bit level;
    // on this one-iteration model the largest move sits at that boundary (1 or 2 levels,
    // depending on the float32 reduction order), so both outcomes of the check are tested.
    let o =
        stargan_bin().args(["export", "--half", "--checkpoint"]).arg(&ckpt).arg("--out").arg(&out).output().unwrap();
    let half = o.status.success();
    if !half {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("export it without --half"), "{err}");
        assert!(!out.exists(), "a refused export leaves no file behind");
        let o = stargan_bin().args(["export", "--checkpoint"]).arg(&ckpt).arg("--out").arg(&out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // A target that cannot be replaced (a folder of that name) is an error naming it, with
    // nothing left behind.
    let taken = dir.path().join("taken.safetensors");
    std::fs::create_dir(&taken).unwrap();
    let o = stargan_bin().args(["export", "--checkpoint"]).arg(&ckpt).arg("--out").arg(&taken).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("taken.safetensors"), "{err}");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(names.iter().all(|n| !n.contains("staging") && !n.contains(".tmp-")), "{names:?}");
    let c = Checkpoint::open(&out).unwrap();
    let nets: Vec<&str> = c.nets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nets, ["generator", "mapping_network", "style_encoder"], "no discriminator, no optimizer state");
    let kind = if half { Kind::Half } else { Kind::Float };
    assert!(c.nets.iter().flat_map(|(_, sd)| sd).all(|(_, t)| t.kind() == kind));
    assert_eq!(c.metadata["kind"], "inference");
    assert_eq!(c.metadata["source_iteration"], "1");
    assert_eq!(c.config, Some(tiny_model(3)));
    // A quarter of the online + EMA + D + optimizer file, or less.
    assert!(std::fs::metadata(&out).unwrap().len() * 4 < std::fs::metadata(&ckpt).unwrap().len());
    // The translations of the exported file and of the EMA networks in the checkpoint
    // agree: exactly in float32; to float16 precision, and one 8-bit level once saved, in float16.
    let (a, b) = (probe(&ckpt), probe(&out));
    let diff = max_abs_diff(&a, &b);
    if !half {
        assert_eq!(diff, 0.0, "float32 export translates exactly as the checkpoint");
        return;
    }
    assert!(diff < 2e-2, "max |diff| {diff}");
    let worst = imaging::to_images(&a)
        .iter()
        .zip(imaging::to_images(&b).iter())
        .flat_map(|(p, q)| {
            p.as_raw().iter().zip(q.as_raw()).map(|(u, v)| (*u as i32 - *v as i32).abs()).collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    // The export checked one level on its own probe images; on these other inputs a model at
    // that boundary may move a pixel by two.
    assert!(worst <= 2, "{worst} levels");
}
