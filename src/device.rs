//! Choosing the compute device once, at the top, from `--device auto|cpu|cuda[:N]`.

use anyhow::{bail, Result};
use tch::Device;

/// Parses a device flag. `auto` picks the first CUDA device when one is usable.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => require_cuda(0),
        s if s.starts_with("cuda:") => match s[5..].parse::<usize>() {
            Ok(i) => require_cuda(i),
            Err(_) => bail!("invalid device '{spec}': write cuda:N with N a number, e.g. cuda:0"),
        },
        _ => bail!("invalid device '{spec}': use auto, cpu, cuda or cuda:N"),
    }
}

/// Parses a device flag (the commands' `--device`).
pub fn select_device(spec: &str) -> Result<Device> {
    parse_device(spec)
}

fn require_cuda(index: usize) -> Result<Device> {
    let count = tch::Cuda::device_count() as usize;
    if count == 0 {
        bail!(
            "--device cuda was asked for, but libtorch sees no CUDA device (driver missing, \
             or a CPU-only libtorch); use --device cpu"
        );
    }
    if index >= count {
        bail!("--device cuda:{index} does not exist: this machine has {count} CUDA device(s)");
    }
    Ok(Device::Cuda(index))
}

/// Human-readable name of a device, for logs and benchmark reports.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}
