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
