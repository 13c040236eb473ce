//! `stargan eval` end to end on a tiny model and tiny data: the JSON has every task and
//! the mean, with the official key names; the paired metric appears for paired data.

mod common;

use std::path::Path;

use common::*;
use stargan::checkpoint::native::{metadata, save_modules};
use stargan::model::{Init, TranslationNets};
use tch::{Device, Kind};

fn tiny(dir: &Path, k: i64, names: &[&str]) -> std::path::PathBuf {
    let cfg = tiny_model(k);
    let nets = TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg);
    let path = dir.join("tiny.safetensors");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    save_modules(&path, &nets.modules(), metadata(&cfg, &names, &[])).unwrap();
    path
}

fn eval(ckpt: &Path, data: &Path, out: &Path, extra: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let o = stargan_bin()
        .args(["eval", "--device", "cpu", "--num-outs", "2", "--batch", "4", "--checkpoint"])
        .arg(ckpt)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    v.as_object().unwrap().clone()
}

#[test]
fn eval_reports_every_task_and_the_mean() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("afhq");
    std::fs::create_dir_all(&data).unwrap();
    // A few real images per domain keep the Inception passes short on the CPU.
    let rep = data_dir().join("representative/afhq");
    for (split, from, n) in [("train", "ref", 5), ("val", "src", 2)] {
        for d in ["cat", "dog", "wild"] {
            std::fs::create_dir_all(data.join(split).join(d)).unwrap();
            let mut files: Vec<_> =
                std::fs::read_dir(rep.join(from).join(d)).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            for f in files.iter().take(n) {
                std::os::unix::fs::symlink(f, data.join(split).join(d).join(f.file_name().unwrap())).unwrap();
            }
        }
    }
    let ckpt = tiny(dir.path(), 3, &["cat", "dog", "wild"]);
    let out = dir.path().join("eval");
    let r = eval(&ckpt, &data, &out, &["--keep-images"]);
    for mode in ["latent", "reference"] {
        for task in ["cat2dog", "cat2wild", "dog2cat", "dog2wild", "wild2cat", "wild2dog", "mean"] {
            for metric in ["FID", "LPIPS", "ACC"] {
                let key = format!("{metric}_{mode}/{task}");
                let v = r.get(&key).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{key} missing: {r:?}"));
                assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
            }
        }
    }
    // Where each task's outputs were classified: one fraction per domain, summing to 1,
    // the target's being the task's ACC.
    for mode in ["latent", "reference"] {
        for (task, target) in [("cat2dog", "dog"), ("dog2wild", "wild"), ("wild2cat", "cat")] {
            let f = |d: &str| r[&format!("CLS_{mode}/{task}/{d}")].as_f64().unwrap();
            let total: f64 = ["cat", "dog", "wild"].iter().map(|d| f(d)).sum();
            assert!((total - 1.0).abs() < 1e-9, "{mode}/{task}: fractions sum to {total}");
            assert_eq!(f(target), r[&format!("ACC_{mode}/{task}")].as_f64().unwrap());
        }
    }
    let scores = r.keys().filter(|k| !k.starts_with("CLS_")).count();
    assert_eq!(scores, 2 * 3 * 7, "no paired metric for unpaired data: {:?}", r.keys().collect::<Vec<_>>());
    assert_eq!(r.len() - scores, 2 * 6 * 3, "a fraction per mode, task and domain");
    // Every output was kept: 2 sources × 2 outputs per task.
    let kept = std::fs::read_dir(out.join("images/latent/cat2dog")).unwrap().count();
    assert_eq!(kept, 4);
    // A different style per output: LPIPS between outputs is not zero.
    assert!(r["LPIPS_latent/mean"].as_f64().unwrap() > 0.0);
}

/// Two clearly different synthetic domains with the same file names: `n_train` training
/// and 3 validation images each.
fn paired_data(root: &Path, n_train: u8) -> std::path::PathBuf {
    let data = root.join("paired");
    for (split, n) in [("train", n_train), ("val", 3)] {
        for (d, tint) in [("flat", 0u8), ("glossy", 120)] {
            for i in 0..n {
                let p = data.join(split).join(d).join(format!("e{i}.png"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8 ^ (i * 40), (y * 8) as u8, tint]))
                    .save(&p)
                    .unwrap();
            }
        }
    }
    data
}

fn run_eval(args: &[&str], data: &Path, out: &Path) -> serde_json::Map<String, serde_json::Value> {
    let o = stargan_bin()
        .args(["eval", "--device", "cpu", "--batch", "4"])
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    v.as_object().unwrap().clone()
}

#[test]
fn baselines_go_through_the_same_protocol_and_bound_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = paired_data(dir.path(), 6);
    let ckpt = tiny(dir.path(), 2, &["flat", "glossy"]);
    let model = run_eval(&["--num-outs", "1", "--checkpoint", ckpt.to_str().unwrap()], &data, &dir.path().join("m"));
    let identity = run_eval(&["--num-outs", "1", "--baseline", "identity"], &data, &dir.path().join("i"));
    let real = run_eval(&["--num-outs", "1", "--baseline", "real"], &data, &dir.path().join("r"));
    let keys = |r: &serde_json::Map<String, serde_json::Value>| r.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&model), keys(&identity), "the same keys as a model");
    assert_eq!(keys(&model), keys(&real));
    assert!(keys(&model).iter().all(|k| !k.starts_with("LPIPS_")), "no diversity with one output per source");
    let v = |r: &serde_json::Map<String, serde_json::Value>, k: &str| r[k].as_f64().unwrap();
    // The two synthetic styles are trivially told apart: the real images of the target
    // are all classified as the target, the untranslated sources never are.
    assert_eq!(v(&real, "ACC_reference/mean"), 1.0);
    assert_eq!(v(&identity, "ACC_latent/mean"), 0.0);
    // ... because they are all taken for their own domain.
    assert_eq!(v(&identity, "CLS_latent/flat2glossy/flat"), 1.0);
    assert_eq!(v(&real, "CLS_reference/glossy2flat/glossy"), 0.0);
    // The real target rendering is its own ground truth; the source is far from it.
    assert_eq!(v(&real, "paired_LPIPS/mean"), 0.0);
    assert_eq!(v(&real, "paired_L1/mean"), 0.0);
    assert!(v(&identity, "paired_L1/mean") > 0.2);
    assert!(v(&real, "FID_latent/mean") < v(&identity, "FID_latent/mean"));
    let bad = stargan_bin().args(["eval", "--baseline", "mean", "--data"]).arg(&data).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use identity or real"));
}

#[test]
fn paired_data_gets_the_paired_metric() {
    let dir = tempfile::tempdir().unwrap();
    let data = paired_data(dir.path(), 5);
    let ckpt = tiny(dir.path(), 2, &["flat", "glossy"]);
    let r = eval(&ckpt, &data, &dir.path().join("eval"), &["--mode", "latent"]);
    for key in
        ["paired_LPIPS/flat2glossy", "paired_L1/glossy2flat", "paired_LPIPS/mean", "paired_L1/mean", "FID_latent/mean"]
    {
        let v = r.get(key).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{key} missing"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
    // L1 of images in [-1, 1] is at most 2.
    assert!(r["paired_L1/mean"].as_f64().unwrap() <= 2.0);
}
