//! Multi-tensor kernels: the fused Adam step and foreach arithmetic, one call for a whole
//! list of tensors instead of a handful of kernels per tensor.

use tch::Tensor;

use super::{check, ffi, ptrs, TorchError};

/// The scalars of an Adam step with coupled (L2) weight decay, as `torch.optim.Adam`.
#[derive(Clone, Copy, Debug)]
pub struct AdamScalars {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

fn same_len(lists: &[usize]) -> Result<(), TorchError> {
    if lists.windows(2).any(|w| w[0] != w[1]) {
        return Err(TorchError(format!("tensor lists of different lengths: {lists:?}")));
    }
    Ok(())
}

/// `aten::_fused_adam_`: updates `params`, `exp_avgs` and `exp_avg_sqs` in place from
/// `grads`, with the step counts in `steps` (float tensors already incremented for this
/// step, as `torch.optim.Adam(fused=True)` does before calling it).
pub fn fused_adam(
    params: &[&Tensor],
    grads: &[&Tensor],
    exp_avgs: &[&Tensor],
    exp_avg_sqs: &[&Tensor],
    steps: &[&Tensor],
    s: AdamScalars,
) -> Result<(), TorchError> {
    same_len(&[params.len(), grads.len(), exp_avgs.len(), exp_avg_sqs.len(), steps.len()])?;
    if params.is_empty() {
        return Ok(());
    }
    let (p, g, m, v, t) = (ptrs(params), ptrs(grads), ptrs(exp_avgs), ptrs(exp_avg_sqs), ptrs(steps));
    // SAFETY: five arrays of `n` valid at::Tensor pointers, borrowed for the call.
    check(unsafe {
        ffi::stargan_fused_adam(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            t.as_ptr(),
            p.len(),
            s.lr,
            s.beta1,
            s.beta2,
            s.weight_decay,
            s.eps,
        )
    })
}

/// `dst[i] ← lerp(start[i], end[i], weight)` for every i, with one foreach kernel for
/// the lerps and one for the copies. `dst` may be `end`.
pub fn lerp_into(dst: &[&Tensor], start: &[&Tensor], end: &[&Tensor], weight: f64) -> Result<(), TorchError> {
    same_len(&[dst.len(), start.len(), end.len()])?;
    if dst.is_empty() {
        return Ok(());
    }
    let (d, a, b) = (ptrs(dst), ptrs(start), ptrs(end));
    // SAFETY: three arrays of valid at::Tensor pointers, borrowed for the call.
    check(unsafe { ffi::stargan_foreach_lerp_into(d.as_ptr(), a.as_ptr(), b.as_ptr(), d.len(), weight) })
}

/// `t ← t + value` for every tensor of the list.
pub fn add_scalar_(ts: &[&Tensor], value: f64) -> Result<(), TorchError> {
    if ts.is_empty() {
        return Ok(());
    }
    let p = ptrs(ts);
    // SAFETY: an array of valid at::Tensor pointers, borrowed for the call.
    check(unsafe { ffi::stargan_foreach_add_scalar_(p.as_ptr(), p.len(), value) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn lerp_into_equals_the_per_tensor_lerp() {
        tch::manual_seed(0);
        let a: Vec<Tensor> = (0..3).map(|i| Tensor::randn([i + 2, 3], (Kind::Double, Device::Cpu))).collect();
        let b: Vec<Tensor> = a.iter().map(|t| t.randn_like()).collect();
        let want: Vec<Tensor> = a.iter().zip(&b).map(|(x, y)| x.lerp(y, 0.999)).collect();
        fn refs(v: &[Tensor]) -> Vec<&Tensor> {
            v.iter().collect()
        }
        lerp_into(&refs(&b), &refs(&a), &refs(&b), 0.999).unwrap();
        for (got, want) in b.iter().zip(&want) {
            assert!(got.equal(want), "bitwise equal to Tensor::lerp");
        }
        assert!(lerp_into(&refs(&b[..2]), &refs(&a), &refs(&b), 0.5).is_err(), "length mismatch is an error");
    }

    #[test]
    fn errors_come_back_as_messages() {
        let a = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let e = lerp_into(&[&a], &[&a], &[&b], 0.5).unwrap_err();
        assert!(e.0.contains("size") || e.0.contains("shape"), "{e}");
    }
}
