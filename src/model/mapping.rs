//! The mapping network F: latent code z and domain y → style code s.

use tch::Tensor;

use super::layers::{join, Init, Linear, Module, NamedTensor};
use crate::config::ModelConfig;

pub struct MappingNetwork {
    /// Linear layers of the shared trunk (official indices 0, 2, 4, 6; ReLU between).
    pub shared: Vec<Linear>,
    /// One head per domain, each four Linear layers (indices 0, 2, 4, 6).
    pub unshared: Vec<Vec<Linear>>,
}

impl MappingNetwork {
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        let hd = cfg.hidden_dim;
        let mut shared = vec![Linear::new(init, cfg.latent_dim, hd)];
        for _ in 0..3 {
            shared.push(Linear::new(init, hd, hd));
        }
        let unshared = (0..cfg.num_domains)
            .map(|_| {
                vec![
                    Linear::new(init, hd, hd),
                    Linear::new(init, hd, hd),
                    Linear::new(init, hd, hd),
                    Linear::new(init, hd, cfg.style_dim),
                ]
            })
            .collect();
        MappingNetwork { shared, unshared }
    }

    /// Style codes of every domain, N×K×S. Every head runs, as officially: heads that no
    /// sample picks still receive (zero) gradients, which Adam's weight decay acts on.
    pub fn forward_all(&self, z: &Tensor) -> Tensor {
        let mut h = z.shallow_clone();
        for l in &self.shared {
            h = l.forward(&h).relu();
        }
        let outs: Vec<Tensor> = self
            .unshared
            .iter()
            .map(|head| {
                let mut o = h.shallow_clone();
                for (i, l) in head.iter().enumerate() {
                    o = l.forward(&o);
                    if i + 1 < head.len() {
                        o = o.relu();
                    }
                }
                o
            })
            .collect();
        Tensor::stack(&outs, 1)
    }

    /// s = F(z, y): N×S.
    pub fn forward(&self, z: &Tensor, y: &Tensor) -> Tensor {
        pick_domain(&self.forward_all(z), y)
    }
}

/// Selects row y[n] of out[n] for each n: (N×K×…) → (N×…).
pub fn pick_domain(out: &Tensor, y: &Tensor) -> Tensor {
    let n = out.size()[0];
    let idx = Tensor::arange(n, (tch::Kind::Int64, out.device()));
    out.index(&[Some(idx), Some(y.to_kind(tch::Kind::Int64).to_device(out.device()))])
}

impl Module for MappingNetwork {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        for (i, l) in self.shared.iter().enumerate() {
            l.collect(&join(prefix, &format!("shared.{}", 2 * i)), out);
        }
        for (k, head) in self.unshared.iter().enumerate() {
            for (i, l) in head.iter().enumerate() {
                l.collect(&join(prefix, &format!("unshared.{k}.{}", 2 * i)), out);
            }
        }
    }
}
