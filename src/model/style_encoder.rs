//! The style encoder E and the discriminator D share one convolutional body: a 3×3 conv,
//! downsampling ResBlks down to 4×4, LeakyReLU, a 4×4 valid conv, LeakyReLU.

use tch::Tensor;

use super::blocks::ResBlk;
use super::layers::{join, lrelu, lrelu_owned, Conv2d, Init, Linear, Module, NamedTensor};
use super::mapping::pick_domain;
use crate::config::ModelConfig;

/// The shared body of E (`shared.*`) and D (`main.*`), indexed like the official
/// Sequential: 0 = conv, 1..=R = ResBlks, R+1 = LReLU, R+2 = 4×4 conv, R+3 = LReLU.
pub struct ConvBody {
    pub conv_in: Conv2d,
    pub blocks: Vec<ResBlk>,
    pub conv_out: Conv2d,
    pub width: i64,
}

impl ConvBody {
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        let repeat = cfg.log2_size() - 2;
        let mut d_in = cfg.dim_in;
        let mut blocks = Vec::new();
        for _ in 0..repeat {
            let d_out = (2 * d_in).min(cfg.max_conv_dim);
            blocks.push(ResBlk::new(init, d_in, d_out, false, true));
            d_in = d_out;
        }
        ConvBody {
            conv_in: Conv2d::new(init, 3, cfg.dim_in, 3, 1, 1, true),
            blocks,
            conv_out: Conv2d::new(init, d_in, d_in, 4, 1, 0, true),
            width: d_in,
        }
    }

    /// N×3×H×W → N×width×1×1.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.conv_in.forward(x);
        for b in &self.blocks {
            h = b.forward(&h);
        }
        lrelu_owned(self.conv_out.forward(&lrelu(&h)))
    }

    /// Forward pass that also returns ∂⟨g_head(h), h⟩/∂x: `head_grad` maps the body's
    /// output h (N×C×1×1) to the gradient of the caller's objective with respect to h.
    /// The input gradient is an explicit graph (transposed convolutions, slope masks,
    /// pooling adjoints), so differentiating it needs only first-order autograd.
    pub fn forward_with_input_grad(&self, x: &Tensor, head_grad: &dyn Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
        use super::blocks::lrelu_slope;
        let h0 = self.conv_in.forward(x);
        let mut h = h0.shallow_clone();
        let mut saved = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (out, s) = b.forward_saving(&h);
            saved.push(s);
            h = out;
        }
        let pre_out = self.conv_out.forward(&lrelu(&h));
        let out = lrelu(&pre_out);
        let mut g = head_grad(&out) * lrelu_slope(&pre_out);
        g = self.conv_out.input_grad(&g) * lrelu_slope(&h);
        for (b, s) in self.blocks.iter().zip(&saved).rev() {
            g = b.input_grad(&g, s);
        }
        let g = self.conv_in.input_grad(&g);
        assert_eq!(g.size(), x.size(), "the input gradient must have the input's shape");
        (out, g)
    }

    /// Index of the module after the trailing LReLU in the official Sequential.
    pub fn next_index(&self) -> usize {
        self.blocks.len() + 4
    }

    pub fn collect_as(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.conv_in.collect(&join(prefix, "0"), out);
        for (i, b) in self.blocks.iter().enumerate() {
            b.collect(&join(prefix, &(i + 1).to_string()), out);
        }
        self.conv_out.collect(&join(prefix, &(self.blocks.len() + 2).to_string()), out);
    }
}

/// E: image and domain → style code.
pub struct StyleEncoder {
    pub shared: ConvBody,
    pub unshared: Vec<Linear>,
}

impl StyleEncoder {
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        let shared = ConvBody::new(init, cfg);
        let unshared = (0..cfg.num_domains).map(|_| Linear::new(init, shared.width, cfg.style_dim)).collect();
        StyleEncoder { shared, unshared }
    }

    /// Style codes of every domain, N×K×S (every head runs, as officially).
    pub fn forward_all(&self, x: &Tensor) -> Tensor {
        let h = self.shared.forward(x).flatten(1, -1);
        let outs: Vec<Tensor> = self.unshared.iter().map(|l| l.forward(&h)).collect();
        Tensor::stack(&outs, 1)
    }

    /// s = E(x, y): N×S.
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        pick_domain(&self.forward_all(x), y)
    }
}

impl Module for StyleEncoder {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.shared.collect_as(&join(prefix, "shared"), out);
        for (k, l) in self.unshared.iter().enumerate() {
            l.collect(&join(prefix, &format!("unshared.{k}")), out);
        }
    }
}
