//! The loss terms of StarGAN v2, each a function of tensors (reference.md §2.1).

use tch::{Kind, Tensor};

/// `t` in float32 when it is in a reduced precision (bf16 or half), else `t` itself: the
/// loss terms are always computed at least in float32.
fn at_least_f32(t: &Tensor) -> Tensor {
    match t.kind() {
        Kind::BFloat16 | Kind::Half => t.to_kind(Kind::Float),
        _ => t.shallow_clone(),
    }
}

/// Non-saturating adversarial loss: BCE-with-logits against a constant target (1 = real,
/// 0 = fake), averaged over the batch.
pub fn adv_loss(logits: &Tensor, target: f64) -> Tensor {
    let logits = at_least_f32(logits);
    let targets = logits.full_like(target);
    logits.binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, tch::Reduction::Mean)
}

/// Zero-centred R1 penalty on real images: 0.5 · mean_n Σ (∂ΣD/∂x)², computed with a
/// differentiable (create_graph) input gradient so that its own gradient reaches D.
pub fn r1_reg(d_out: &Tensor, x_in: &Tensor) -> Tensor {
    let grad = input_gradient(d_out, x_in, true);
    r1_from_gradient(&grad)
}

/// ∂(Σ d_out)/∂x_in.
pub fn input_gradient(d_out: &Tensor, x_in: &Tensor, create_graph: bool) -> Tensor {
    let ones = d_out.ones_like();
    let sum = (d_out * ones).sum(d_out.kind());
    Tensor::run_backward(&[sum], &[x_in], true, create_graph).remove(0)
}

/// 0.5 · mean over the batch of the squared L2 norm of each sample's gradient.
pub fn r1_from_gradient(grad: &Tensor) -> Tensor {
    let n = grad.size()[0];
    grad.square().reshape([n, -1]).sum_dim_intlist([1i64].as_slice(), false, None::<Kind>).mean(None::<Kind>) * 0.5
}

/// Mean absolute error.
pub fn l1(a: &Tensor, b: &Tensor) -> Tensor {
    (at_least_f32(a) - at_least_f32(b)).abs().mean(None::<Kind>)
}
