//! The generator: encoder of ResBlks, decoder of AdainResBlks modulated by the style
//! code, and (when w_hpf > 0) a high-pass skip path gated by the FAN face masks.

use std::collections::HashMap;

use tch::Tensor;

use super::blocks::{AdainResBlk, HighPass, ResBlk};
use super::layers::{join, lrelu_owned, resize_bilinear, Conv2d, Init, InstanceNorm, Module, NamedTensor};
use crate::config::ModelConfig;

/// Resolutions at which the high-pass path adds the masked encoder features.
const MASKED_SIZES: [i64; 3] = [32, 64, 128];

pub struct Generator {
    pub from_rgb: Conv2d,
    pub encode: Vec<ResBlk>,
    pub decode: Vec<AdainResBlk>,
    pub to_rgb_norm: InstanceNorm,
    pub to_rgb_conv: Conv2d,
    pub hpf: Option<HighPass>,
}

/// The two FAN masks, each N×1×256×256: `coarse` (whole face, used at 32 px) and `fine`
/// (without face outline, mouth and brows; used at 64 and 128 px).
pub struct Masks {
    pub coarse: Tensor,
    pub fine: Tensor,
}

impl Generator {
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        let dim_in = cfg.dim_in;
        let mut repeat = cfg.log2_size() - 4;
        if cfg.uses_masks() {
            repeat += 1;
        }
        let mut encode = Vec::new();
        let mut decode = Vec::new();
        let mut d_in = dim_in;
        let mut d_out = dim_in;
        for _ in 0..repeat {
            d_out = (2 * d_in).min(cfg.max_conv_dim);
            encode.push(ResBlk::new(init, d_in, d_out, true, true));
            // The decoder mirrors the encoder: built as a stack, first block last.
            decode.insert(0, AdainResBlk::new(init, d_out, d_in, cfg.style_dim, cfg.w_hpf, true));
            d_in = d_out;
        }
        for _ in 0..2 {
            encode.push(ResBlk::new(init, d_out, d_out, true, false));
            decode.insert(0, AdainResBlk::new(init, d_out, d_out, cfg.style_dim, cfg.w_hpf, false));
        }
        Generator {
            from_rgb: Conv2d::new(init, 3, dim_in, 3, 1, 1, true),
            encode,
            decode,
            to_rgb_norm: InstanceNorm::affine(init, dim_in),
            to_rgb_conv: Conv2d::new(init, dim_in, 3, 1, 1, 0, true),
            hpf: cfg.uses_masks().then(|| HighPass::new(init, cfg.w_hpf)),
        }
    }

    /// Translates `x` (N×3×H×W in [-1, 1]) with style codes `s` (N×S). `masks` must be
    /// given when the model has the high-pass path and ignored otherwise, as officially.
    /// The output is not squashed: the official generator has no final tanh.
    pub fn forward(&self, x: &Tensor, s: &Tensor, masks: Option<&Masks>) -> Tensor {
        let masks = if self.hpf.is_some() { masks } else { None };
        let mut h = self.from_rgb.forward(x);
        let mut cache: HashMap<i64, Tensor> = HashMap::new();
        for block in &self.encode {
            let size = h.size()[2];
            if masks.is_some() && MASKED_SIZES.contains(&size) {
                cache.insert(size, h.shallow_clone());
            }
            h = block.forward(&h);
        }
        for block in &self.decode {
            h = block.forward(&h, s);
            let size = h.size()[2];
            if let (Some(m), Some(hpf)) = (masks, &self.hpf) {
                if let Some(skip) = cache.get(&size) {
                    let mask = if size == 32 { &m.coarse } else { &m.fine };
                    let mask = resize_bilinear(mask, size);
                    // Out of place: the sum is exactly the official h + hpf(mask · skip).
                    h = hpf.forward(&(mask * skip)) + &h;
                }
            }
        }
        let h = lrelu_owned(self.to_rgb_norm.forward(&h));
        self.to_rgb_conv.forward(&h)
    }
}

impl Module for Generator {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = |n: &str| join(prefix, n);
        self.from_rgb.collect(&p("from_rgb"), out);
        for (i, b) in self.encode.iter().enumerate() {
            b.collect(&p(&format!("encode.{i}")), out);
        }
        for (i, b) in self.decode.iter().enumerate() {
            b.collect(&p(&format!("decode.{i}")), out);
        }
        self.to_rgb_norm.collect(&p("to_rgb.0"), out);
        self.to_rgb_conv.collect(&p("to_rgb.2"), out);
        if let Some(h) = &self.hpf {
            h.collect(&p("hpf"), out);
        }
    }
}
