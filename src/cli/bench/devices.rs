//! `stargan bench devices`: the same networks and inputs on the CPU and on a device.

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::model::{Init, TranslationNets};
use crate::torch_ext::cuda::set_allow_tf32;

#[derive(Debug, Serialize)]
pub struct DevicesReport {
    pub device: String,
    pub model: String,
    /// Largest |difference| of latent-guided outputs (in [-1, 1] units), TF32 allowed.
    pub latent_tf32: f64,
    /// The same with TF32 off: float32 against float32.
    pub latent_fp32: f64,
    /// Reference-guided, TF32 off.
    pub reference_fp32: f64,
}

fn copy_to(src: &TranslationNets, cfg: &ModelConfig, device: Device) -> TranslationNets {
    let dst = TranslationNets::new(&Init::for_loading(device, Kind::Float), cfg);
    tch::no_grad(|| {
        for ((_, a), (_, b)) in src.modules().iter().zip(dst.modules().iter()) {
            for (s, mut d) in a.named_tensors().into_iter().zip(b.named_tensors()) {
                d.tensor.copy_(&s.tensor);
            }
        }
    });
    dst
}

fn outputs(nets: &TranslationNets, x: &Tensor, x_ref: &Tensor, z: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
    let d = nets.generator.from_rgb.weight.device();
    tch::no_grad(|| {
        let (x, x_ref, z, y) = (x.to_device(d), x_ref.to_device(d), z.to_device(d), y.to_device(d));
        let latent = nets.generator.forward(&x, &nets.mapping_network.forward(&z, &y), None);
        let reference = nets.generator.forward(&x, &nets.style_encoder.forward(&x_ref, &y), None);
        (latent.to_device(Device::Cpu), reference.to_device(Device::Cpu))
    })
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

pub fn compare(name: &str, cfg: &ModelConfig, device: Device, batch: i64) -> Result<DevicesReport> {
    tch::manual_seed(0);
    let cpu = TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), cfg);
    let s = cfg.img_size;
    let x = Tensor::rand([batch, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let x_ref = Tensor::rand([batch, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let z = Tensor::randn([batch, cfg.latent_dim], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(batch, (Kind::Int64, Device::Cpu)).remainder(cfg.num_domains);
    let (want_latent, want_reference) = outputs(&cpu, &x, &x_ref, &z, &y);
    let other = copy_to(&cpu, cfg, device);
    set_allow_tf32(true);
    let (latent_tf32, _) = outputs(&other, &x, &x_ref, &z, &y);
    set_allow_tf32(false);
    let (latent, reference) = outputs(&other, &x, &x_ref, &z, &y);
    set_allow_tf32(true);
    Ok(DevicesReport {
        device: crate::device::describe(device),
        model: name.into(),
        latent_tf32: max_diff(&latent_tf32, &want_latent),
        latent_fp32: max_diff(&latent, &want_latent),
        reference_fp32: max_diff(&reference, &want_reference),
    })
}
