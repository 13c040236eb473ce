//! Inference: translating images with latent or reference styles, and the official
//! sample grids.

pub mod animate;
pub mod demo;
pub mod export;
pub mod grids;
pub mod load;
pub mod sample;
pub mod translate;

use tch::{Device, Kind, Tensor};

use crate::model::{layers, Fan, Masks, TranslationNets};

/// The networks used for translation (normally the EMA ones) and the FAN when the model
/// uses face masks.
pub struct Translator<'a> {
    pub nets: &'a TranslationNets,
    pub fan: Option<&'a Fan>,
    pub device: Device,
    pub latent_dim: i64,
}

impl Translator<'_> {
    /// `t` in the networks' type (float32 normally, float64 in an fp64 training run):
    /// images and codes arrive as float32.
    fn as_nets(&self, t: &Tensor) -> Tensor {
        let kind = self.nets.generator.from_rgb.weight.kind();
        if t.kind() == kind {
            t.shallow_clone()
        } else {
            t.to_kind(kind)
        }
    }

    /// Masks of the source images, when the model uses them.
    pub fn masks(&self, x: &Tensor) -> Option<Masks> {
        tch::no_grad(|| self.fan.map(|f| f.masks(&self.as_nets(x))))
    }

    /// Style codes of latent codes z for domain labels y.
    pub fn latent_style(&self, z: &Tensor, y: &Tensor) -> Tensor {
        tch::no_grad(|| self.nets.mapping_network.forward(&self.as_nets(z), y))
    }

    /// Style codes of reference images for domain labels y.
    pub fn reference_style(&self, x_ref: &Tensor, y: &Tensor) -> Tensor {
        tch::no_grad(|| self.nets.style_encoder.forward(&fast_layout(&self.as_nets(x_ref)), y))
    }

    /// G(x, s) with the masks of x when needed.
    pub fn generate(&self, x: &Tensor, s: &Tensor) -> Tensor {
        let masks = self.masks(x);
        self.generate_masked(x, s, masks.as_ref())
    }

    /// G(x, s) with masks computed beforehand (once per source batch, reused across styles).
    pub fn generate_masked(&self, x: &Tensor, s: &Tensor, masks: Option<&Masks>) -> Tensor {
        tch::no_grad(|| self.nets.generator.forward(&fast_layout(&self.as_nets(x)), &self.as_nets(s), masks))
    }

    /// The average style of a domain over `n` random latent codes (for ψ truncation),
    /// computed in chunks to keep memory flat.
    pub fn mean_style(&self, domain: i64, n: i64, z_source: &mut dyn FnMut(i64) -> Tensor) -> Tensor {
        tch::no_grad(|| {
            let mut total: Option<Tensor> = None;
            let mut left = n;
            while left > 0 {
                let m = left.min(1000);
                let z = self.as_nets(&z_source(m).to_device(self.device));
                let y = Tensor::full([m], domain, (Kind::Int64, self.device));
                let s =
                    self.nets.mapping_network.forward(&z, &y).sum_dim_intlist([0i64].as_slice(), true, None::<Kind>);
                total = Some(match total {
                    Some(t) => t + s,
                    None => s,
                });
                left -= m;
            }
            total.expect("n > 0") / n as f64
        })
    }
}

/// Images in the memory layout the convolutions run fastest on for their device and
/// precision (channels-last for oneDNN on the CPU); every layer keeps that layout.
fn fast_layout(x: &Tensor) -> Tensor {
    if layers::prefers_channels_last(x.device(), x.kind()) {
        layers::to_channels_last(x)
    } else {
        x.shallow_clone()
    }
}

/// ψ truncation: lerp(s_avg, s, ψ).
pub fn truncate(s_avg: &Tensor, s: &Tensor, psi: f64) -> Tensor {
    s_avg.lerp(s, psi)
}
