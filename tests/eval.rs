//! `stargan eval` end to end on a tiny model and tiny data: the JSON has every task and
//! the mean, with the official key names; the paired metric appears for paired data.

mod common;

use std::path::Path;
use std::process::Command;

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
    let o = Command::new(env!("CARGO_BIN_EXE_stargan"))
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
    for (split, from, n) in [("train", "ref", 3), ("val", "src", 2)] {
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
            for metric in ["FID", "LPIPS"] {
                let key = format!("{metric}_{mode}/{task}");
                let v = r.get(&key).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{key} missing: {r:?}"));
                assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
            }
        }
    }
    assert_eq!(r.len(), 2 * 2 * 7, "no paired metric for unpaired data: {:?}", r.keys().collect::<Vec<_>>());
    // Every output was kept: 2 sources × 2 outputs per task.
    let kept = std::fs::read_dir(out.join("images/latent/cat2dog")).unwrap().count();
    assert_eq!(kept, 4);
    // A different style per output: LPIPS between outputs is not zero.
    assert!(r["LPIPS_latent/mean"].as_f64().unwrap() > 0.0);
}

#[test]
fn paired_data_gets_the_paired_metric() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("paired");
    for split in ["train", "val"] {
        for (d, tint) in [("flat", 0u8), ("glossy", 120)] {
            for i in 0..3u8 {
                let p = data.join(split).join(d).join(format!("e{i}.png"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8 ^ (i * 40), (y * 8) as u8, tint]))
                    .save(&p)
                    .unwrap();
            }
        }
    }
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
