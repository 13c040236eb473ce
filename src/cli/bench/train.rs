//! `stargan bench train`: seconds per training iteration, peak memory and the time spent
//! waiting for data.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::measure::{median, peak_rss_mb};
use crate::config::ModelConfig;
use crate::model::Init;

#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub device: String,
    pub preset: String,
    pub precision: String,
    pub batch: i64,
    pub iters: usize,
    /// Median seconds per full iteration (D latent, D ref, G latent, G ref, EMA).
    pub s_per_iter: f64,
    pub iter_per_s: f64,
    /// Peak GPU memory in GB (CUDA), or peak RSS of the process (CPU).
    pub peak_mem_gb: f64,
    /// Fraction of the wall time spent waiting for the next batch (0 with synthetic data).
    pub data_wait_fraction: f64,
    pub data: String,
}

/// Times the training step at a preset with random weights, on synthetic batches or on
/// real images from `data` (decoded and augmented by the loader's worker threads).
pub fn train(
    preset: &str,
    device: Device,
    batch: i64,
    warmup: usize,
    iters: usize,
    data: Option<&std::path::Path>,
    workers: usize,
) -> Result<TrainReport> {
    use crate::data::loader::{Loader, LoaderConfig};
    use crate::rng::{latent_codes, Stream};
    use crate::train::optim::Optimizers;
    use crate::train::step::{train_step, Batch};
    use crate::train::{Models, TrainConfig};

    let cfg = ModelConfig::preset(preset)?;
    let tcfg = TrainConfig { batch_size: batch, ..TrainConfig::default() };
    tch::manual_seed(0);
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let models = Models::new(&Init::new(device, Kind::Float), &cfg);
    let mut opt = Optimizers::new(&models, &tcfg);
    let mut lambda_ds = tcfg.lambda_ds;
    let mut loader = match data {
        Some(d) => {
            let folder = crate::data::ImageFolder::open(d)?;
            let lc = LoaderConfig {
                batch_size: batch as usize,
                img_size: cfg.img_size as u32,
                randcrop_prob: 0.5,
                seed: 0,
                workers,
                prefetch: 4,
                start_batch: 0,
            };
            Some(Loader::new(&folder, &lc)?)
        }
        None => None,
    };
    let opts = (Kind::Float, device);
    let k = cfg.num_domains;
    let synthetic = || Batch {
        x_real: Tensor::rand([batch, 3, cfg.img_size, cfg.img_size], opts) * 2.0 - 1.0,
        y_org: Tensor::randint(k, [batch], (Kind::Int64, device)),
        x_ref: Tensor::rand([batch, 3, cfg.img_size, cfg.img_size], opts) * 2.0 - 1.0,
        x_ref2: Tensor::rand([batch, 3, cfg.img_size, cfg.img_size], opts) * 2.0 - 1.0,
        y_trg: Tensor::randint(k, [batch], (Kind::Int64, device)),
        z_trg: Tensor::randn([batch, cfg.latent_dim], opts),
        z_trg2: Tensor::randn([batch, cfg.latent_dim], opts),
    };
    let mut times = Vec::new();
    let (mut waited, mut total) = (0.0, 0.0);
    for i in 0..warmup + iters {
        let start = Instant::now();
        let b = match &mut loader {
            Some(l) => {
                let tb = l.next_batch()?;
                Batch {
                    x_real: tb.x_src.to_device(device),
                    y_org: tb.y_src.to_device(device),
                    x_ref: tb.x_ref.to_device(device),
                    x_ref2: tb.x_ref2.to_device(device),
                    y_trg: tb.y_ref.to_device(device),
                    z_trg: latent_codes(0, Stream::TrainZ, i as u64, batch, cfg.latent_dim).to_device(device),
                    z_trg2: latent_codes(0, Stream::TrainZ2, i as u64, batch, cfg.latent_dim).to_device(device),
                }
            }
            None => synthetic(),
        };
        let wait = if loader.is_some() { start.elapsed().as_secs_f64() } else { 0.0 };
        let losses = train_step(&models, &mut opt, &tcfg, &mut lambda_ds, &b, None)?;
        // Reading the losses synchronises with the device once per iteration.
        let _ = losses.values();
        let dt = start.elapsed().as_secs_f64();
        if i >= warmup {
            times.push(dt);
            waited += wait;
            total += dt;
        }
    }
    let s = median(times);
    let peak_mem_gb = if device.is_cuda() { cuda_peak_gb().unwrap_or(f64::NAN) } else { peak_rss_mb() / 1024.0 };
    Ok(TrainReport {
        device: crate::device::describe(device),
        preset: preset.into(),
        precision: "fp32".into(),
        batch,
        iters,
        s_per_iter: s,
        iter_per_s: 1.0 / s,
        peak_mem_gb,
        data_wait_fraction: if total > 0.0 { waited / total } else { 0.0 },
        data: data.map(|d| d.display().to_string()).unwrap_or_else(|| "synthetic".into()),
    })
}

/// Peak memory used on the GPU by this process, from `nvidia-smi` (tch exposes no CUDA
/// allocator statistics).
fn cuda_peak_gb() -> Option<f64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let me = std::process::id().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.split(',').next().map(str::trim) == Some(me.as_str()))
        .and_then(|l| l.split(',').nth(1)?.trim().parse::<f64>().ok())
        .map(|mib| mib / 1024.0)
}
