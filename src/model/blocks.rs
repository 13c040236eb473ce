//! The building blocks of StarGAN v2: ResBlk, AdaIN, AdainResBlk and the high-pass filter.

use std::f64::consts::SQRT_2;

use tch::Tensor;

use super::layers::{
    avg_pool2, instance_norm, lrelu, lrelu_owned, merge_residual, push, upsample2, Conv2d, Init, InstanceNorm, Linear,
    Module, NamedTensor, Role, LRELU_SLOPE,
};

/// Pre-activation residual block of the encoder, the style encoder and the discriminator.
/// Output = (shortcut + residual) / √2; the shortcut pools, then convolves (1×1, learned
/// only when the width changes).
pub struct ResBlk {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub norm: Option<(InstanceNorm, InstanceNorm)>,
    pub conv1x1: Option<Conv2d>,
    pub downsample: bool,
}

impl ResBlk {
    pub fn new(init: &Init, d_in: i64, d_out: i64, normalize: bool, downsample: bool) -> Self {
        ResBlk {
            conv1: Conv2d::new(init, d_in, d_in, 3, 1, 1, true),
            conv2: Conv2d::new(init, d_in, d_out, 3, 1, 1, true),
            norm: normalize.then(|| (InstanceNorm::affine(init, d_in), InstanceNorm::affine(init, d_in))),
            conv1x1: (d_in != d_out).then(|| Conv2d::new(init, d_in, d_out, 1, 1, 0, false)),
            downsample,
        }
    }

    /// The official order is conv1x1, then pool. A bias-free 1×1 convolution and a 2×2
    /// average commute exactly (both are linear; one mixes channels per pixel, the other
    /// pixels per channel), so this pools first and convolves a quarter of the pixels.
    fn shortcut(&self, x: &Tensor) -> Tensor {
        let x = if self.downsample { avg_pool2(x) } else { x.shallow_clone() };
        match &self.conv1x1 {
            Some(c) => c.forward(&x),
            None => x,
        }
    }

    fn residual(&self, x: &Tensor) -> Tensor {
        let mut h = match &self.norm {
            Some((n1, _)) => n1.forward(x),
            None => x.shallow_clone(),
        };
        h = match &self.norm {
            Some(_) => lrelu_owned(h),
            None => lrelu(&h),
        };
        h = self.conv1.forward(&h);
        if self.downsample {
            h = avg_pool2(&h);
        }
        if let Some((_, n2)) = &self.norm {
            h = n2.forward(&h);
        }
        self.conv2.forward(&lrelu_owned(h))
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        merge_residual(&self.shortcut(x), &self.residual(x))
    }
}

/// Activations of an un-normalised ResBlk kept for its explicit input gradient.
pub struct ResBlkSaved {
    input: Tensor,
    mid: Tensor,
}

/// d/dx of [`lrelu`] at `pre`: 1 where pre > 0, else the slope ([`LRELU_SLOPE`], the same
/// constant the forward pass uses). Piecewise constant, so it carries no gradient of its
/// own.
pub fn lrelu_slope(pre: &Tensor) -> Tensor {
    let pos = pre.detach().gt(0.0).to_kind(pre.kind());
    pos * (1.0 - LRELU_SLOPE) + LRELU_SLOPE
}

/// Gradient through a 2×2 average pool: each input pixel gets a quarter of its output's.
pub fn avg_pool2_backward(g: &Tensor) -> Tensor {
    super::layers::upsample2(g) * 0.25
}

impl ResBlk {
    /// Forward pass of an un-normalised block (style encoder / discriminator) that keeps
    /// what [`ResBlk::input_grad`] needs.
    pub fn forward_saving(&self, x: &Tensor) -> (Tensor, ResBlkSaved) {
        assert!(self.norm.is_none(), "explicit input gradients are for un-normalised blocks");
        let mut mid = self.conv1.forward(&lrelu(x));
        if self.downsample {
            mid = avg_pool2(&mid);
        }
        let res = self.conv2.forward(&lrelu(&mid));
        let out = merge_residual(&self.shortcut(x), &res);
        (out, ResBlkSaved { input: x.shallow_clone(), mid })
    }

    /// ∂(⟨g_out, block(x)⟩)/∂x as an explicit graph of transposed convolutions, slope
    /// masks and pooling adjoints: differentiable with ordinary (first-order) autograd.
    pub fn input_grad(&self, g_out: &Tensor, saved: &ResBlkSaved) -> Tensor {
        let g = g_out / SQRT_2;
        // Adjoint of the shortcut, pool then conv1x1: conv1x1's adjoint, then the pool's.
        let mut g_sc = match &self.conv1x1 {
            Some(c) => c.input_grad(&g),
            None => g.shallow_clone(),
        };
        if self.downsample {
            g_sc = avg_pool2_backward(&g_sc);
        }
        let mut g_r = self.conv2.input_grad(&g) * lrelu_slope(&saved.mid);
        if self.downsample {
            g_r = avg_pool2_backward(&g_r);
        }
        let g_r = self.conv1.input_grad(&g_r) * lrelu_slope(&saved.input);
        let g = g_sc + g_r;
        assert_eq!(g.size(), saved.input.size(), "a ResBlk's input gradient must have its input's shape");
        g
    }
}

impl Module for ResBlk {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = |n: &str| super::layers::join(prefix, n);
        self.conv1.collect(&p("conv1"), out);
        self.conv2.collect(&p("conv2"), out);
        if let Some((n1, n2)) = &self.norm {
            n1.collect(&p("norm1"), out);
            n2.collect(&p("norm2"), out);
        }
        if let Some(c) = &self.conv1x1 {
            c.collect(&p("conv1x1"), out);
        }
    }
}

/// Adaptive instance normalisation: (1 + γ(s)) · IN(x) + β(s), with [γ, β] = fc(s).
pub struct AdaIn {
    pub fc: Linear,
    channels: i64,
}

impl AdaIn {
    pub fn new(init: &Init, style_dim: i64, channels: i64) -> Self {
        AdaIn { fc: Linear::new(init, style_dim, 2 * channels), channels }
    }

    pub fn forward(&self, x: &Tensor, s: &Tensor) -> Tensor {
        let h = self.fc.forward(s);
        let (n, c) = (h.size()[0], self.channels);
        let gamma = h.narrow(1, 0, c);
        let beta = h.narrow(1, c, c);
        // (1 + γ)·IN(x) + β in one kernel: the per-sample (1 + γ, β) are the affine of
        // the instance norm. Saves two passes over the activation and two temporaries of
        // its size; equal to the three-op form up to rounding.
        instance_norm(x, Some(&(gamma + 1.0).reshape([n * c])), Some(&beta.reshape([n * c])))
    }
}

impl Module for AdaIn {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.fc.collect(&super::layers::join(prefix, "fc"), out);
    }
}

/// Residual block of the decoder, modulated by the style code. With the high-pass path
/// (w_hpf > 0) it returns the residual branch alone: the shortcut weights exist (and are
/// stored in checkpoints) but are never used.
pub struct AdainResBlk {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub norm1: AdaIn,
    pub norm2: AdaIn,
    pub conv1x1: Option<Conv2d>,
    pub upsample: bool,
    pub use_shortcut: bool,
}

impl AdainResBlk {
    pub fn new(init: &Init, d_in: i64, d_out: i64, style_dim: i64, w_hpf: f64, upsample: bool) -> Self {
        AdainResBlk {
            conv1: Conv2d::new(init, d_in, d_out, 3, 1, 1, true),
            conv2: Conv2d::new(init, d_out, d_out, 3, 1, 1, true),
            norm1: AdaIn::new(init, style_dim, d_in),
            norm2: AdaIn::new(init, style_dim, d_out),
            conv1x1: (d_in != d_out).then(|| Conv2d::new(init, d_in, d_out, 1, 1, 0, false)),
            upsample,
            use_shortcut: w_hpf == 0.0,
        }
    }

    /// The official order is upsample, then conv1x1. Nearest-neighbour upsampling copies
    /// pixels and a bias-free 1×1 convolution maps each pixel on its own, so they commute
    /// exactly: convolving before upsampling does a quarter of the work and never holds
    /// the upsampled input.
    fn shortcut(&self, x: &Tensor) -> Tensor {
        let x = match &self.conv1x1 {
            Some(c) => c.forward(x),
            None => x.shallow_clone(),
        };
        if self.upsample {
            upsample2(&x)
        } else {
            x
        }
    }

    fn residual(&self, x: &Tensor, s: &Tensor) -> Tensor {
        let mut h = lrelu_owned(self.norm1.forward(x, s));
        if self.upsample {
            h = upsample2(&h);
        }
        h = self.conv1.forward(&h);
        h = lrelu_owned(self.norm2.forward(&h, s));
        self.conv2.forward(&h)
    }

    pub fn forward(&self, x: &Tensor, s: &Tensor) -> Tensor {
        let out = self.residual(x, s);
        if self.use_shortcut {
            merge_residual(&out, &self.shortcut(x))
        } else {
            out
        }
    }
}

impl Module for AdainResBlk {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = |n: &str| super::layers::join(prefix, n);
        self.conv1.collect(&p("conv1"), out);
        self.conv2.collect(&p("conv2"), out);
        self.norm1.collect(&p("norm1"), out);
        self.norm2.collect(&p("norm2"), out);
        if let Some(c) = &self.conv1x1 {
            c.collect(&p("conv1x1"), out);
        }
    }
}

/// Depthwise 3×3 Laplacian-like high-pass filter, divided by w_hpf (a buffer).
pub struct HighPass {
    pub filter: Tensor,
}

impl HighPass {
    pub fn new(init: &Init, w_hpf: f64) -> Self {
        HighPass { filter: Self::kernel(w_hpf).to_kind(init.kind).to_device(init.device) }
    }

    /// The official kernel [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf, computed in float32
    /// as the official buffer is (and recreated when a checkpoint lacks it).
    pub fn kernel(w_hpf: f64) -> Tensor {
        let k: [f32; 9] = [-1., -1., -1., -1., 8., -1., -1., -1., -1.];
        Tensor::from_slice(&k).view([3, 3]) / w_hpf
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let c = x.size()[1];
        let w = self.filter.to_kind(x.kind()).view([1, 1, 3, 3]).expand([c, 1, 3, 3], false);
        x.conv2d(&w, None::<Tensor>, [1], [1], [1], c)
    }
}

impl Module for HighPass {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "filter", &self.filter, Role::Buffer);
    }
}
