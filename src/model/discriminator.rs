//! The multi-task discriminator D: one real/fake logit per domain; the logit of the
//! sample's own domain is used.

use tch::Tensor;

use super::layers::{join, Conv2d, Init, Module, NamedTensor};
use super::mapping::pick_domain;
use super::style_encoder::ConvBody;
use crate::config::ModelConfig;

pub struct Discriminator {
    pub main: ConvBody,
    /// 1×1 conv width → K (official `main.{R+4}`).
    pub head: Conv2d,
}

impl Discriminator {
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        let main = ConvBody::new(init, cfg);
        let head = Conv2d::new(init, main.width, cfg.num_domains, 1, 1, 0, true);
        Discriminator { main, head }
    }

    /// Logits of every domain, N×K.
    pub fn forward_all(&self, x: &Tensor) -> Tensor {
        self.head.forward(&self.main.forward(x)).flatten(1, -1)
    }

    /// D(x, y) and ∂(Σ_n D(x, y)_n)/∂x, the input gradient as an explicit graph (for the
    /// R1 penalty without double backward through convolutions).
    pub fn forward_with_input_grad(&self, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
        let k = self.head.weight.size()[0];
        let onehot = y.to_device(x.device()).one_hot(k).to_kind(x.kind()).view([-1, k, 1, 1]);
        let head = |_: &Tensor| self.head.input_grad(&onehot);
        let (h, grad) = self.main.forward_with_input_grad(x, &head);
        let logits = pick_domain(&self.head.forward(&h).flatten(1, -1), y);
        (logits, grad)
    }

    /// D(x, y): N logits.
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        pick_domain(&self.forward_all(x), y)
    }
}

impl Module for Discriminator {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = join(prefix, "main");
        self.main.collect_as(&p, out);
        self.head.collect(&join(&p, &self.main.next_index().to_string()), out);
    }
}
