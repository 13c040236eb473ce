//! What every benchmark measures with: peak memory, device synchronisation, medians.

use std::time::Instant;

use tch::{Device, Tensor};

/// Peak resident set size of this process in MiB (Linux), 0 when unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Peak memory in MiB: the CUDA caching allocator's peak allocation on a GPU, else the
/// process's peak resident set.
pub fn peak_memory_mib(d: Device) -> f64 {
    match d {
        Device::Cuda(i) => {
            crate::torch_ext::cuda::peak_memory(i).map(|(a, _)| a as f64 / (1 << 20) as f64).unwrap_or(f64::NAN)
        }
        _ => peak_rss_mb(),
    }
}

/// What [`peak_memory_mib`] measures on `d`, for reports.
pub fn memory_measure(d: Device) -> &'static str {
    if d.is_cuda() {
        "CUDA caching allocator, peak allocated"
    } else {
        "process peak RSS (VmHWM)"
    }
}

pub fn sync(d: Device) {
    if let Device::Cuda(i) = d {
        tch::Cuda::synchronize(i as i64);
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn time<F: FnMut() -> Tensor>(d: Device, warmup: usize, iters: usize, mut f: F) -> f64 {
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
