//! `stargan bench train`: seconds per training iteration, peak memory and the time spent
//! waiting for data.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::measure::{median, memory_measure, peak_memory_mib, sync};
use crate::config::ModelConfig;
use crate::model::Init;
use crate::train::Precision;

#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub device: String,
    pub preset: String,
    pub precision: String,
    pub channels_last: bool,
    pub batch: i64,
    pub iters: usize,
    /// Median seconds per full iteration (D latent, D ref, G latent, G ref, EMA).
    pub s_per_iter: f64,
    pub iter_per_s: f64,
    /// Peak memory in GB: see `memory_measure`.
    pub peak_mem_gb: f64,
    pub memory_measure: String,
    /// Fraction of the wall time spent waiting for the next batch (0 with synthetic data).
    pub data_wait_fraction: f64,
    pub data: String,
}

/// How to run the benchmark.
pub struct TrainBench {
    pub device: Device,
    pub batch: i64,
    pub precision: Precision,
    pub channels_last: bool,
    pub warmup: usize,
    pub iters: usize,
    pub data: Option<std::path::PathBuf>,
    pub workers: usize,
}

/// Times the training step with random weights, on synthetic batches or on real images
/// from `data` (decoded and augmented by the loader's worker threads), the way
/// `stargan train` runs it: one host read per iteration (the non-finite check).
pub fn train(name: &str, cfg: &ModelConfig, o: &TrainBench) -> Result<TrainReport> {
    use crate::data::loader::{Loader, LoaderConfig};
    use crate::rng::{latent_codes, Stream};
    use crate::train::optim::Optimizers;
    use crate::train::step::{train_step_with, Batch, StepOptions};
    use crate::train::{Models, TrainConfig};

    let (device, batch) = (o.device, o.batch);
    let tcfg = TrainConfig { batch_size: batch, ..TrainConfig::default() };
    tch::manual_seed(0);
    if let Device::Cuda(i) = device {
        tch::Cuda::cudnn_set_benchmark(true);
        crate::torch_ext::cuda::reset_peak_memory(i);
    }
    let kind = o.precision.param_kind();
    let models = Models::new(&Init::new(device, kind), cfg);
    if o.channels_last {
        models.to_channels_last();
    }
    let mut opt = Optimizers::new(&models, &tcfg);
    let mut lambda_ds = tcfg.lambda_ds;
    let mut loader = match &o.data {
        Some(d) => {
            let folder = crate::data::ImageFolder::open(d)?;
            let lc = LoaderConfig {
                batch_size: batch as usize,
                img_size: cfg.img_size as u32,
                randcrop_prob: 0.5,
                seed: 0,
                workers: o.workers,
                prefetch: 4,
                start_batch: 0,
            };
            Some(Loader::new(&folder, &lc)?)
        }
        None => None,
    };
    let img = |t: Tensor| {
        let t = t.to_kind(kind).to_device(device);
        if o.channels_last {
            crate::model::layers::to_channels_last(&t)
        } else {
            t
        }
    };
    let k = cfg.num_domains;
    let size = cfg.img_size;
    let mixed = (o.precision == Precision::Bf16).then_some(device);
    let mut times = Vec::new();
    let (mut waited, mut total) = (0.0, 0.0);
    for i in 0..o.warmup + o.iters {
        let start = Instant::now();
        let random = || Tensor::rand([batch, 3, size, size], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let (x, y, r1, r2, yr) = match &mut loader {
            Some(l) => {
                let tb = l.next_batch()?;
                (tb.x_src, tb.y_src, tb.x_ref, tb.x_ref2, tb.y_ref)
            }
            None => (random(), Tensor::randint(k, [batch], (Kind::Int64, Device::Cpu)), random(), random(), {
                Tensor::randint(k, [batch], (Kind::Int64, Device::Cpu))
            }),
        };
        let b = Batch {
            x_real: img(x),
            y_org: y.to_device(device),
            x_ref: img(r1),
            x_ref2: img(r2),
            y_trg: yr.to_device(device),
            z_trg: latent_codes(0, Stream::TrainZ, i as u64, batch, cfg.latent_dim).to_kind(kind).to_device(device),
            z_trg2: latent_codes(0, Stream::TrainZ2, i as u64, batch, cfg.latent_dim).to_kind(kind).to_device(device),
        };
        let wait = if loader.is_some() { start.elapsed().as_secs_f64() } else { 0.0 };
        let losses = train_step_with(
            &models,
            &mut opt,
            &tcfg,
            &mut lambda_ds,
            &b,
            &StepOptions { mixed, ..Default::default() },
        )?;
        if !losses.all_finite() {
            anyhow::bail!("a loss became non-finite at iteration {i} of the benchmark");
        }
        sync(device);
        let dt = start.elapsed().as_secs_f64();
        if i >= o.warmup {
            times.push(dt);
            waited += wait;
            total += dt;
        }
    }
    let s = median(times);
    Ok(TrainReport {
        device: crate::device::describe(device),
        preset: name.into(),
        precision: format!("{:?}", o.precision).to_lowercase(),
        channels_last: o.channels_last,
        batch,
        iters: o.iters,
        s_per_iter: s,
        iter_per_s: 1.0 / s,
        peak_mem_gb: peak_memory_mib(device) / 1024.0,
        memory_measure: memory_measure(device).into(),
        data_wait_fraction: if total > 0.0 { waited / total } else { 0.0 },
        data: o.data.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "synthetic".into()),
    })
}
