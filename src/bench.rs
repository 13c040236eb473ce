//! Benchmarks (not tests): inference latency and throughput, with peak memory.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::model::{Init, TranslationNets};

#[derive(Debug, Serialize)]
pub struct InferReport {
    pub device: String,
    pub preset: String,
    pub batch: i64,
    pub img_size: i64,
    pub iters: usize,
    /// Median latency of F + G (latent-guided), milliseconds per batch.
    pub latent_ms: f64,
    /// Median latency of E + G (reference-guided), milliseconds per batch.
    pub reference_ms: f64,
    pub latent_img_per_s: f64,
    pub reference_img_per_s: f64,
    /// Peak resident memory of the process, MB (VmHWM).
    pub peak_rss_mb: f64,
    pub threads: i32,
}

/// Peak resident set size of this process in MB (Linux), 0 when unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn sync(d: Device) {
    if let Device::Cuda(i) = d {
        tch::Cuda::synchronize(i as i64);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> Tensor>(d: Device, warmup: usize, iters: usize, mut f: F) -> f64 {
    for _ in 0..warmup {
        let _ = f();
    }
    sync(d);
    let mut v = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let out = f();
        sync(d);
        drop(out);
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    median(v)
}

/// Times latent- and reference-guided translation with randomly initialised networks.
pub fn infer(preset: &str, device: Device, batch: i64, warmup: usize, iters: usize) -> Result<InferReport> {
    let cfg = ModelConfig::preset(preset)?;
    tch::manual_seed(0);
    let nets = tch::no_grad(|| TranslationNets::new(&Init::new(device, Kind::Float), &cfg));
    for (_, m) in nets.modules() {
        for t in crate::model::Module::named_tensors(m) {
            let _ = t.tensor.set_requires_grad(false);
        }
    }
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let opts = (Kind::Float, device);
    let x = Tensor::rand([batch, 3, cfg.img_size, cfg.img_size], opts) * 2.0 - 1.0;
    let x_ref = Tensor::rand([batch, 3, cfg.img_size, cfg.img_size], opts) * 2.0 - 1.0;
    let z = Tensor::randn([batch, cfg.latent_dim], opts);
    let y = Tensor::zeros([batch], (Kind::Int64, device));
    // Masks are not timed: they need the FAN (a separate network); the AFHQ model has none.
    let latent_ms = tch::no_grad(|| {
        time(device, warmup, iters, || nets.generator.forward(&x, &nets.mapping_network.forward(&z, &y), None))
    });
    let reference_ms = tch::no_grad(|| {
        time(device, warmup, iters, || nets.generator.forward(&x, &nets.style_encoder.forward(&x_ref, &y), None))
    });
    Ok(InferReport {
        device: crate::device::describe(device),
        preset: preset.to_string(),
        batch,
        img_size: cfg.img_size,
        iters,
        latent_ms,
        reference_ms,
        latent_img_per_s: batch as f64 / latent_ms * 1e3,
        reference_img_per_s: batch as f64 / reference_ms * 1e3,
        peak_rss_mb: peak_rss_mb(),
        threads: tch::get_num_threads(),
    })
}
