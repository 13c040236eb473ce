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
