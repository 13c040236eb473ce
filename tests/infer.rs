//! Inference: official-format checkpoints translate like the official networks, and the
//! `translate` / `sample` commands work end to end and fail clearly on bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use stargan::checkpoint::native::{metadata, save_modules};
use stargan::imaging;
use stargan::infer::load::{load_model, ModelSource};
use stargan::model::{Init, TranslationNets};
use tch::{Device, Kind, Tensor};

fn bin() -> Command {
    stargan_bin()
}

fn official_ckpts() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(parity_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .map(|p| (p.file_name().unwrap().to_str().unwrap().split('.').next().unwrap().to_string(), p))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no official-format .ckpt fixture in {}", parity_dir().display());
    v
}

#[test]
fn official_checkpoint_translates_like_the_official_networks() {
    for (config, path) in official_ckpts() {
        let model = load_model(&ModelSource { checkpoint: path.clone(), ..Default::default() }, Device::Cpu).unwrap();
        assert_eq!(model.cfg, model_config(&config));
        let fx = fixture(&config, "forward");
        let f32 = |k: &str| fx[k].to_kind(Kind::Float);
        let t = model.translator();
        let (x, y) = (f32("in.x"), fx["in.y"].shallow_clone());
        let latent = t.generate(&x, &t.latent_style(&f32("in.z"), &y));
        let reference = t.generate(&x, &t.reference_style(&f32("in.x_ref"), &y));
        for (name, got, want) in [("G", &latent, &fx["out.G"]), ("G_ref", &reference, &fx["out.G_ref"])] {
            // float32 weights and arithmetic against the float64 reference.
            assert_close(&format!("{}: {name}", path.display()), got, want, 1e-4);
            // The saved images differ by at most one 8-bit level.
            for (a, b) in imaging::to_images(got).iter().zip(imaging::to_images(want).iter()) {
                let worst =
                    a.as_raw().iter().zip(b.as_raw()).map(|(p, q)| (*p as i32 - *q as i32).abs()).max().unwrap();
                assert!(worst <= 1, "{name}: pixel differs by {worst}");
            }
        }
    }
}

/// A tiny randomly initialised model in our format with the AFHQ domain names.
fn tiny_checkpoint(dir: &Path) -> PathBuf {
    let cfg = model_config(&official_ckpts()[0].0);
    let nets = TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg);
    let path = dir.join("tiny.safetensors");
    let domains: Vec<String> = ["cat", "dog", "wild"].iter().map(|s| s.to_string()).collect();
    save_modules(&path, &nets.modules(), metadata(&cfg, &domains, &[])).unwrap();
    path
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "command failed: {err}");
    err
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "command should fail");
    assert!(!err.contains("panicked"), "no panics: {err}");
    err
}

fn dims(p: &Path) -> (u32, u32) {
    let i = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (i.width(), i.height())
}

#[test]
fn translate_and_sample_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_checkpoint(dir.path());
    let afhq = data_dir().join("representative/afhq");
    let s = 32;

    // Latent-guided: 5 cat sources × 3 styles.
    let out = dir.path().join("latent");
    run_ok(
        bin()
            .args(["translate", "--device", "cpu", "--checkpoint"])
            .arg(&ckpt)
            .arg("--input")
            .arg(afhq.join("src/cat"))
            .args(["--domain", "dog", "--styles", "3", "--psi", "0.7", "--mean-style-samples", "200", "--out"])
            .arg(&out),
    );
    let pngs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "grid.png")
        .collect();
    assert_eq!(pngs.len(), 15);
    for p in &pngs {
        assert_eq!(dims(p), (s, s));
        assert!(p.file_name().unwrap().to_str().unwrap().contains("_dog_style0"));
    }
    assert_eq!(dims(&out.join("grid.png")), (4 * s, 5 * s));

    // Reference-guided: one source, a folder of 8 dog references.
    let out = dir.path().join("reference");
    run_ok(
        bin()
            .args(["translate", "--device", "cpu", "--checkpoint"])
            .arg(&ckpt)
            .arg("--input")
            .arg(afhq.join("src/cat/flickr_cat_000253.jpg"))
            .args(["--domain", "DOG", "--reference"])
            .arg(afhq.join("ref/dog"))
            .arg("--out")
            .arg(&out),
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 8 + 1);
    assert_eq!(dims(&out.join("grid.png")), (9 * s, 2 * s), "header row of references, then the source row");

    // Sample mode: reference grid, one latent grid per domain, the animation.
    let out = dir.path().join("sample");
    run_ok(
        bin()
            .args(["sample", "--device", "cpu", "--checkpoint"])
            .arg(&ckpt)
            .arg("--src")
            .arg(afhq.join("src"))
            .arg("--ref")
            .arg(afhq.join("ref"))
            .args(["--limit", "6", "--out"])
            .arg(&out),
    );
    assert_eq!(dims(&out.join("reference.png")), (7 * s, 7 * s));
    for d in ["cat", "dog", "wild"] {
        assert_eq!(dims(&out.join(format!("latent_{d}_psi_1.0.png"))), (6 * s, 11 * s));
    }
    let gif = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(out.join("video_ref.gif")).unwrap(),
    ))
    .unwrap();
    use image::AnimationDecoder;
    let frames = gif.into_frames().collect_frames().unwrap();
    // The first 6 references are cats: 5 consecutive same-domain pairs × 31 frames + 10.
    assert_eq!(frames.len(), 5 * 31 + 10);
    assert_eq!(frames[0].buffer().dimensions(), (s + 32 + 6 * s, 2 * s));

    // References that never repeat a domain: the animation is skipped, not a crash.
    let mixed = dir.path().join("mixed");
    for d in ["cat", "dog", "wild"] {
        std::fs::create_dir_all(mixed.join(d)).unwrap();
        let src = std::fs::read_dir(afhq.join("ref").join(d)).unwrap().next().unwrap().unwrap().path();
        std::fs::copy(&src, mixed.join(d).join(src.file_name().unwrap())).unwrap();
    }
    let out = dir.path().join("sample2");
    let log = run_ok(
        bin()
            .args(["sample", "--device", "cpu", "--checkpoint"])
            .arg(&ckpt)
            .arg("--src")
            .arg(afhq.join("src"))
            .arg("--ref")
            .arg(&mixed)
            .args(["--limit", "3", "--out"])
            .arg(&out),
    );
    assert!(log.contains("animation skipped"), "{log}");
    assert!(out.join("reference.png").exists() && !out.join("video_ref.gif").exists());
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_checkpoint(dir.path());
    let cat = data_dir().join("representative/afhq/src/cat/flickr_cat_000253.jpg");
    let translate = |input: &Path, domain: &str, ckpt: &Path| {
        let mut c = bin();
        c.args(["translate", "--device", "cpu", "--checkpoint"])
            .arg(ckpt)
            .arg("--input")
            .arg(input)
            .args(["--domain", domain, "--out"])
            .arg(dir.path().join("o"));
        c
    };
    let e = run_err(&mut translate(&dir.path().join("missing.jpg"), "dog", &ckpt));
    assert!(e.contains("missing.jpg") && e.contains("does not exist"), "{e}");
    let txt = dir.path().join("notes.png");
    std::fs::write(&txt, "not an image").unwrap();
    let e = run_err(&mut translate(&txt, "dog", &ckpt));
    assert!(e.contains("notes.png"), "{e}");
    let e = run_err(&mut translate(&cat, "horse", &ckpt));
    assert!(e.contains("unknown domain 'horse'") && e.contains("cat, dog, wild"), "{e}");
    let e = run_err(&mut translate(&cat, "dog", &dir.path().join("nope.safetensors")));
    assert!(e.contains("nope.safetensors"), "{e}");
    // An official checkpoint with the wrong preset: the importer names tensor and flag.
    let (_, official) = &official_ckpts()[0];
    let e = run_err(translate(&cat, "dog", official).args(["--preset", "celeba-hq", "--wing"]).arg(official));
    assert!(e.contains("generator.") && e.contains("--"), "{e}");
    let e = run_err(translate(&cat, "dog", official).args(["--preset", "afhq"]));
    assert!(e.contains("shape") && e.contains("--img-size"), "{e}");
}

#[test]
fn inference_builds_no_autograd_graph() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_checkpoint(dir.path());
    let model = load_model(&ModelSource { checkpoint: ckpt, ..Default::default() }, Device::Cpu).unwrap();
    let t = model.translator();
    let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let y = Tensor::from_slice(&[0i64, 1, 2, 0]);
    let s = t.reference_style(&x, &y);
    let out = t.generate(&x, &s);
    assert!(!out.requires_grad(), "inference builds no autograd graph");
    assert_eq!(out.size(), [4, 3, 32, 32]);
}
