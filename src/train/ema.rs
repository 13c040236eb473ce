//! Exponential moving average of the generator, mapping network and style encoder.

use crate::model::Module;

/// ema ← lerp(online, ema, β) for every parameter (buffers are not averaged), the same
/// kernel as the official `torch.lerp(param, param_ema, beta)`.
pub fn update(online: &dyn Module, ema: &dyn Module, beta: f64) {
    tch::no_grad(|| {
        for (p, mut e) in online.parameters().into_iter().zip(ema.parameters()) {
            debug_assert_eq!(p.name, e.name);
            let new = p.tensor.lerp(&e.tensor, beta);
            e.tensor.copy_(&new);
        }
    });
}

/// Copies every tensor (parameters and buffers) of `src` into `dst`.
pub fn copy_all(src: &dyn Module, dst: &dyn Module) {
    tch::no_grad(|| {
        for (s, mut d) in src.named_tensors().into_iter().zip(dst.named_tensors()) {
            debug_assert_eq!(s.name, d.name);
            d.tensor.copy_(&s.tensor);
        }
    });
}
