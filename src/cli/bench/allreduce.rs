//! `stargan bench allreduce`: what data parallelism costs per iteration. N processes on
//! this machine (started like `stargan train --nproc`) all-reduce tensors shaped like
//! the gradients of one training iteration: D's twice, G+F+E's, then G's.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::measure::{median, sync};
use super::AllreduceArgs;
use crate::dist::{self, Backend, ProcessGroup};
use crate::model::{Init, Module};
use crate::train::Models;

#[derive(Debug, Serialize)]
pub struct AllreduceReport {
    pub device: String,
    pub backend: String,
    pub model: String,
    pub processes: usize,
    /// Gradient bytes all-reduced per training iteration (float32).
    pub bytes_per_iteration: u64,
    /// Median milliseconds for all of them.
    pub ms_per_iteration: f64,
    /// bytes / time.
    pub algorithm_gb_per_s: f64,
    /// bytes · 2(n−1)/n / time: what each link carries in a ring all-reduce.
    pub bus_gb_per_s: f64,
}

pub fn run(a: &AllreduceArgs) -> Result<()> {
    if std::env::var_os(dist::launch::LAUNCHED_ENV).is_none() && dist::placement_from_env()?.is_none() {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let mut args = dist::launch::strip_nproc(&args);
        args.push("--nproc".into());
        args.push(a.nproc.to_string().into());
        return dist::launch::launch(a.nproc, &args);
    }
    let placement = dist::placement_from_env()?.ok_or_else(|| anyhow::anyhow!("WORLD_SIZE must be at least 2"))?;
    // One GPU per process when there are enough; otherwise they share GPU 0, which NCCL
    // refuses, so Gloo carries the CUDA tensors.
    let gpus = tch::Cuda::device_count().max(0) as usize;
    let device = match a.device.as_str() {
        "cpu" => Device::Cpu,
        _ if gpus == 0 => anyhow::bail!("--device {}: libtorch sees no CUDA device", a.device),
        _ => Device::Cuda(placement.local_rank % gpus),
    };
    let backend = if device.is_cuda() && gpus >= placement.local_world && dist::nccl_built() {
        Backend::Nccl
    } else {
        Backend::Gloo
    };
    let rendezvous = dist::rendezvous_from_env(&placement)?;
    let group = ProcessGroup::new(placement, &rendezvous, backend, std::time::Duration::from_secs(300))?;
    let (name, cfg) = a.model.resolve()?;
    let models = tch::no_grad(|| Models::new(&Init::new(device, Kind::Float), &cfg));
    let grads =
        |m: &dyn Module| -> Vec<Tensor> { m.parameters().iter().map(|p| p.tensor.detach().randn_like()).collect() };
    let d = grads(&models.discriminator);
    let g = grads(&models.nets.generator);
    let mut gfe: Vec<Tensor> = g.iter().map(|t| t.shallow_clone()).collect();
    gfe.extend(grads(&models.nets.mapping_network));
    gfe.extend(grads(&models.nets.style_encoder));
    let rounds: [&[Tensor]; 4] = [&d, &d, &gfe, &g];
    let bytes: u64 = rounds.iter().flat_map(|r| r.iter()).map(|t| t.numel() as u64 * 4).sum();
    let mut times = Vec::new();
    for i in 0..a.iters + 2 {
        group.barrier()?;
        sync(device);
        let start = Instant::now();
        for r in rounds {
            group.all_reduce_mean(&r.iter().collect::<Vec<_>>())?;
        }
        sync(device);
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    if group.rank() != 0 {
        return Ok(());
    }
    let s = median(times);
    let n = group.world() as f64;
    let r = AllreduceReport {
        device: crate::device::describe(device),
        backend: format!("{backend:?}").to_lowercase(),
        model: name,
        processes: group.world(),
        bytes_per_iteration: bytes,
        ms_per_iteration: s * 1e3,
        algorithm_gb_per_s: bytes as f64 / s / 1e9,
        bus_gb_per_s: bytes as f64 * 2.0 * (n - 1.0) / n / s / 1e9,
    };
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} processes, {} ({}), {}: {:.1} MB of gradients per iteration, all-reduced in {:.1} ms \
             (algorithm {:.2} GB/s, bus {:.2} GB/s)",
            r.processes,
            r.backend,
            r.device,
            r.model,
            bytes as f64 / 1e6,
            r.ms_per_iteration,
            r.algorithm_gb_per_s,
            r.bus_gb_per_s
        );
    }
    Ok(())
}
