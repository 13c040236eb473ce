//! Exponential moving average of the generator, mapping network and style encoder.

use crate::model::Module;
use crate::torch_ext::{ops, TorchError};

/// ema ← lerp(online, ema, β) for every parameter (buffers are not averaged), the same
/// kernel as the official `torch.lerp(param, param_ema, beta)`, applied to the whole
/// network in one foreach call.
pub fn update(online: &dyn Module, ema: &dyn Module, beta: f64) -> Result<(), TorchError> {
    let (p, e) = (online.parameters(), ema.parameters());
    assert!(p.len() == e.len() && p.iter().zip(&e).all(|(a, b)| a.name == b.name), "EMA and online networks differ");
    let p: Vec<&tch::Tensor> = p.iter().map(|t| &t.tensor).collect();
    let e: Vec<&tch::Tensor> = e.iter().map(|t| &t.tensor).collect();
    ops::lerp_into(&e, &p, &e, beta)
}

/// Copies every tensor (parameters and buffers) of `src` into `dst`.
pub fn copy_all(src: &dyn Module, dst: &dyn Module) {
    tch::no_grad(|| {
        for (s, mut d) in src.named_tensors().into_iter().zip(dst.named_tensors()) {
            assert_eq!(s.name, d.name, "copying between different networks");
            d.tensor.copy_(&s.tensor);
        }
    });
}
