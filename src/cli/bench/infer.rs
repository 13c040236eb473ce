//! `stargan bench infer`: latency and throughput of translation, with peak memory.

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::measure::{memory_measure, peak_memory_mib, time};
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
    /// Peak memory in MiB (the key keeps its first name): see `memory_measure`.
    pub peak_rss_mb: f64,
    /// What `peak_rss_mb` measures: the process's peak resident set (VmHWM) on the CPU,
    /// the CUDA caching allocator's peak allocation on a GPU.
    pub memory_measure: String,
    pub threads: i32,
}

/// Times latent- and reference-guided translation with randomly initialised networks.
pub fn infer(
    name: &str,
    cfg: &ModelConfig,
    device: Device,
    batch: i64,
    warmup: usize,
    iters: usize,
) -> Result<InferReport> {
    tch::manual_seed(0);
    let nets = tch::no_grad(|| TranslationNets::new(&Init::new(device, Kind::Float), cfg));
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
    // Through the same Translator as `stargan translate`, so that the layout and no-grad
    // mode are the ones users get.
    let tr = crate::infer::Translator { nets: &nets, fan: None, device, latent_dim: cfg.latent_dim };
    let latent_ms = time(device, warmup, iters, || tr.generate(&x, &tr.latent_style(&z, &y)));
    let reference_ms = time(device, warmup, iters, || tr.generate(&x, &tr.reference_style(&x_ref, &y)));
    Ok(InferReport {
        device: crate::device::describe(device),
        preset: name.to_string(),
        batch,
        img_size: cfg.img_size,
        iters,
        latent_ms,
        reference_ms,
        latent_img_per_s: batch as f64 / latent_ms * 1e3,
        reference_img_per_s: batch as f64 / reference_ms * 1e3,
        peak_rss_mb: peak_memory_mib(device),
        memory_measure: memory_measure(device).into(),
        threads: tch::get_num_threads(),
    })
}
