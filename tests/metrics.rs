//! FID and LPIPS against the reference implementations (`fixtures/metrics/`). The
//! weights are fetched by the pinned, sha256-checked step on first use.

mod common;

use std::path::PathBuf;

use common::*;
use stargan::imaging;
use stargan::metrics::fid::{features_of_files, fit, frechet_distance, Inception};
use stargan::metrics::lpips::Lpips;
use stargan::metrics::weights::{resolve, INCEPTION, LPIPS_ALEXNET};
use tch::{Device, Tensor};

fn metrics_dir() -> PathBuf {
    fixtures_dir().join("metrics")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(metrics_dir().join("metrics.expected.json")).unwrap()).unwrap()
}

fn inception() -> Inception {
    Inception::load(&resolve(&INCEPTION, None, &test_cache()).unwrap(), Device::Cpu).unwrap()
}

fn lpips() -> Lpips {
    Lpips::load(&resolve(&LPIPS_ALEXNET, None, &test_cache()).unwrap(), Device::Cpu).unwrap()
}

#[test]
fn inception_features_match_the_reference() {
    let fx = read_safetensors(&metrics_dir().join("fid.safetensors"));
    let got = inception().features(&fx["inception_input"]).unwrap();
    let diff = max_abs_diff(&got, &fx["inception_output"]);
    assert!(diff <= 1e-4, "max |diff| {diff:e}");
}

#[test]
fn frechet_distance_of_reference_features() {
    let fx = read_safetensors(&metrics_dir().join("fid.safetensors"));
    let exp = expected();
    for (pair, want) in exp["fid"].as_object().unwrap() {
        let (a, b) = pair.split_once("->").unwrap();
        let got = frechet_distance(&fit(&fx[&format!("features.{a}")]), &fit(&fx[&format!("features.{b}")]));
        let want = want.as_f64().unwrap();
        assert!(((got - want) / want).abs() <= 1e-6, "{pair}: {got} vs {want}");
        // Distance to itself is zero.
        let g = fit(&fx[&format!("features.{a}")]);
        assert!(frechet_distance(&g, &g).abs() < 1e-6 * want);
    }
}

#[test]
fn image_to_fid_pipeline_within_two_percent() {
    let exp = expected();
    let net = inception();
    let root = data_dir().join("representative/afhq");
    let mut feats = std::collections::HashMap::new();
    for (domain, files) in exp["fid_files"].as_object().unwrap() {
        let paths: Vec<PathBuf> = files.as_array().unwrap().iter().map(|f| root.join(f.as_str().unwrap())).collect();
        feats.insert(domain.clone(), features_of_files(&net, &paths, 8, &|_| {}).unwrap());
    }
    for (pair, want) in exp["fid"].as_object().unwrap() {
        let (a, b) = pair.split_once("->").unwrap();
        let got = frechet_distance(&fit(&feats[a]), &fit(&feats[b]));
        let want = want.as_f64().unwrap();
        eprintln!("{pair}: {got:.3} (reference {want:.3})");
        assert!(((got - want) / want).abs() <= 0.02, "{pair}: {got} vs {want}");
    }
}

#[test]
fn lpips_matches_the_reference_values() {
    let net = lpips();
    let exp = &expected()["lpips"];
    let ex = data_dir().join("lpips-examples");
    let load = |n: &str| imaging::to_tensor(&imaging::load_rgb(&ex.join(format!("{n}.png"))).unwrap()).unsqueeze(0);
    let (r, p0, p1) = (load("ex_ref"), load("ex_p0"), load("ex_p1"));
    let check = |got: &Tensor, key: &str| {
        let got = got.double_value(&[0]);
        let want = exp[key].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-4, "{key}: {got} vs {want}");
    };
    check(&net.distance(&r, &p0), "ex_ref,ex_p0");
    check(&net.distance(&r, &p1), "ex_ref,ex_p1");
    assert_eq!(net.distance(&r, &r).double_value(&[0]), 0.0);
    let fx = read_safetensors(&metrics_dir().join("lpips.safetensors"));
    let keys: Vec<&String> = exp.as_object().unwrap().keys().filter(|k| k.ends_with("@256")).collect();
    assert_eq!(keys.len(), 2);
    // a256 is the first image of both pairs; b256 and c256 the second of each, in order.
    let mut sorted = keys.clone();
    sorted.sort();
    check(&net.distance(&fx["lpips.a256"], &fx["lpips.b256"]), sorted[0]);
    check(&net.distance(&fx["lpips.a256"], &fx["lpips.c256"]), sorted[1]);
    // Batched: one value per pair, symmetric.
    let ab = net.distance(&Tensor::cat(&[&r, &p0], 0), &Tensor::cat(&[&p0, &r], 0));
    assert_eq!(ab.size(), [2]);
    assert!((ab.double_value(&[0]) - ab.double_value(&[1])).abs() < 1e-6);
}
