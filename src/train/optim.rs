//! Adam with coupled (L2) weight decay, exactly as `torch.optim.Adam` with
//! `weight_decay > 0`: the decay is added to the gradient before the moments (this is
//! not AdamW). A parameter whose gradient is absent is skipped entirely, as PyTorch does
//! with `zero_grad(set_to_none=True)`.

use tch::Tensor;

use super::{Models, TrainConfig};
use crate::model::{Module, NamedTensor};
use crate::torch_ext::ops::{self, AdamScalars};
use crate::torch_ext::TorchError;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// Per-parameter state: step count and the two moment estimates. The count is kept
/// twice: on the host for the checkpoint and the unfused update, and as a float tensor
/// on the parameter's device for the fused kernel (which reads it there, without a
/// host synchronisation).
pub struct AdamState {
    pub step: i64,
    step_tensor: Tensor,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
}

impl AdamState {
    fn new(param: &Tensor, step: i64, exp_avg: Tensor, exp_avg_sq: Tensor) -> Self {
        let step_tensor = Tensor::from(step as f32).to_device(param.device());
        AdamState { step, step_tensor, exp_avg, exp_avg_sq }
    }
}

/// How the update is computed. Both give the same parameters (tested to 1e-15 in
/// float64); the fused kernel does the whole list in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdamKernel {
    /// `aten::_fused_adam_`: one multi-tensor kernel for every parameter.
    Fused,
    /// A few tensor operations per parameter, written out (the reference).
    PerTensor,
}

pub struct Adam {
    pub config: AdamConfig,
    pub params: Vec<NamedTensor>,
    pub state: Vec<Option<AdamState>>,
    pub kernel: AdamKernel,
}

impl Adam {
    pub fn new(params: Vec<NamedTensor>, config: AdamConfig) -> Self {
        let state = params.iter().map(|_| None).collect();
        Adam { config, params, state, kernel: AdamKernel::Fused }
    }

    /// The parameter tensors, for autograd.
    pub fn tensors(&self) -> Vec<Tensor> {
        self.params.iter().map(|p| p.tensor.shallow_clone()).collect()
    }

    /// One update with `grads[i]` for `params[i]`; undefined gradients are skipped (their
    /// parameter, moments and step count stay as they are).
    pub fn step(&mut self, grads: &[Tensor]) -> Result<(), TorchError> {
        if grads.len() != self.params.len() {
            return Err(TorchError(format!("{} gradients for {} parameters", grads.len(), self.params.len())));
        }
        match self.kernel {
            AdamKernel::Fused => self.step_fused(grads),
            AdamKernel::PerTensor => {
                self.step_per_tensor(grads);
                Ok(())
            }
        }
    }

    fn step_fused(&mut self, grads: &[Tensor]) -> Result<(), TorchError> {
        let mut live = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            if !g.defined() {
                continue;
            }
            let p = &self.params[i].tensor;
            let st = self.state[i].get_or_insert_with(|| AdamState::new(p, 0, p.zeros_like(), p.zeros_like()));
            st.step += 1;
            live.push(i);
        }
        let states: Vec<&AdamState> =
            live.iter().map(|&i| self.state[i].as_ref().expect("initialised above")).collect();
        let steps: Vec<&Tensor> = states.iter().map(|s| &s.step_tensor).collect();
        // The count goes up before the update, as torch.optim.Adam(fused=True) does.
        ops::add_scalar_(&steps, 1.0)?;
        let c = self.config;
        ops::fused_adam(
            &live.iter().map(|&i| &self.params[i].tensor).collect::<Vec<_>>(),
            &live.iter().map(|&i| &grads[i]).collect::<Vec<_>>(),
            &states.iter().map(|s| &s.exp_avg).collect::<Vec<_>>(),
            &states.iter().map(|s| &s.exp_avg_sq).collect::<Vec<_>>(),
            &steps,
            AdamScalars { lr: c.lr, beta1: c.beta1, beta2: c.beta2, weight_decay: c.weight_decay, eps: c.eps },
        )
    }

    fn step_per_tensor(&mut self, grads: &[Tensor]) {
        let c = self.config;
        tch::no_grad(|| {
            for ((p, g), st) in self.params.iter_mut().zip(grads).zip(self.state.iter_mut()) {
                if !g.defined() {
                    continue;
                }
                let st = st
                    .get_or_insert_with(|| AdamState::new(&p.tensor, 0, p.tensor.zeros_like(), p.tensor.zeros_like()));
                st.step += 1;
                let _ = st.step_tensor.g_add_scalar_(1.0);
                let grad = if c.weight_decay != 0.0 { g + &p.tensor * c.weight_decay } else { g.shallow_clone() };
                let _ = st.exp_avg.lerp_(&grad, 1.0 - c.beta1);
                st.exp_avg_sq *= c.beta2;
                st.exp_avg_sq += &grad * (1.0 - c.beta2) * &grad;
                let step = st.step as f64;
                let bias_correction1 = 1.0 - c.beta1.powf(step);
                let bias_correction2 = 1.0 - c.beta2.powf(step);
                let step_size = c.lr / bias_correction1;
                // `** 0.5` in PyTorch is pow, not sqrt.
                let denom = st.exp_avg_sq.sqrt() / bias_correction2.powf(0.5) + c.eps;
                p.tensor += &st.exp_avg * (-step_size) / denom;
            }
        });
    }

    /// Tensors of the optimizer state, named `<param>.exp_avg` / `.exp_avg_sq` / `.step`
    /// (the step as a 0-d int64 tensor), for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (p, st) in self.params.iter().zip(&self.state) {
            if let Some(st) = st {
                out.push((format!("{}.step", p.name), Tensor::from(st.step)));
                out.push((format!("{}.exp_avg", p.name), st.exp_avg.shallow_clone()));
                out.push((format!("{}.exp_avg_sq", p.name), st.exp_avg_sq.shallow_clone()));
            }
        }
        out
    }

    /// Restores the state written by [`Adam::state_tensors`].
    pub fn load_state(&mut self, get: &dyn Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        for (p, st) in self.params.iter().zip(self.state.iter_mut()) {
            let step = get(&format!("{}.step", p.name));
            *st = match step {
                None => None,
                Some(step) => {
                    let load = |suffix: &str| -> Result<Tensor, String> {
                        let t = get(&format!("{}.{suffix}", p.name))
                            .ok_or_else(|| format!("{}.{suffix} missing", p.name))?;
                        if t.size() != p.tensor.size() {
                            return Err(format!(
                                "{}.{suffix} has shape {:?}, expected {:?}",
                                p.name,
                                t.size(),
                                p.tensor.size()
                            ));
                        }
                        Ok(t.to_kind(p.tensor.kind()).to_device(p.tensor.device()))
                    };
                    Some(AdamState::new(&p.tensor, step.int64_value(&[]), load("exp_avg")?, load("exp_avg_sq")?))
                }
            };
        }
        Ok(())
    }
}

/// The four optimizers of the official code.
pub struct Optimizers {
    pub generator: Adam,
    pub mapping_network: Adam,
    pub style_encoder: Adam,
    pub discriminator: Adam,
}

impl Optimizers {
    pub fn new(models: &Models, cfg: &TrainConfig) -> Self {
        Optimizers {
            generator: Adam::new(models.nets.generator.parameters(), cfg.adam()),
            mapping_network: Adam::new(models.nets.mapping_network.parameters(), cfg.adam_mapping()),
            style_encoder: Adam::new(models.nets.style_encoder.parameters(), cfg.adam()),
            discriminator: Adam::new(models.discriminator.parameters(), cfg.adam()),
        }
    }

    pub fn all(&self) -> [(&'static str, &Adam); 4] {
        [
            (crate::model::GENERATOR, &self.generator),
            (crate::model::MAPPING_NETWORK, &self.mapping_network),
            (crate::model::STYLE_ENCODER, &self.style_encoder),
            (crate::model::DISCRIMINATOR, &self.discriminator),
        ]
    }

    /// Uses `kernel` for all four optimizers.
    pub fn set_kernel(&mut self, kernel: AdamKernel) {
        for (_, o) in self.all_mut() {
            o.kernel = kernel;
        }
    }

    pub fn all_mut(&mut self) -> [(&'static str, &mut Adam); 4] {
        [
            (crate::model::GENERATOR, &mut self.generator),
            (crate::model::MAPPING_NETWORK, &mut self.mapping_network),
            (crate::model::STYLE_ENCODER, &mut self.style_encoder),
            (crate::model::DISCRIMINATOR, &mut self.discriminator),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use tch::{Device, Kind};

    fn params(seed: i64) -> Vec<NamedTensor> {
        tch::manual_seed(seed);
        [vec![3, 4], vec![5], vec![2, 2, 3]]
            .into_iter()
            .enumerate()
            .map(|(i, shape)| NamedTensor {
                name: format!("p{i}"),
                tensor: Tensor::randn(shape.as_slice(), (Kind::Double, Device::Cpu)),
                role: Role::Param,
            })
            .collect()
    }

    #[test]
    fn fused_and_per_tensor_adam_agree_over_steps_with_absent_gradients() {
        let cfg = AdamConfig { lr: 1e-2, beta1: 0.0, beta2: 0.99, eps: 1e-8, weight_decay: 1e-4 };
        for beta1 in [0.0, 0.9] {
            let cfg = AdamConfig { beta1, ..cfg };
            let mut fused = Adam::new(params(1), cfg);
            let mut reference = Adam::new(params(1), cfg);
            reference.kernel = AdamKernel::PerTensor;
            for step in 0..6 {
                tch::manual_seed(100 + step);
                let grads: Vec<Tensor> = fused
                    .params
                    .iter()
                    .enumerate()
                    // Parameter 1 has no gradient on even steps: skipped, as PyTorch skips it.
                    .map(|(i, p)| if i == 1 && step % 2 == 0 { Tensor::new() } else { p.tensor.randn_like() })
                    .collect();
                fused.step(&grads).unwrap();
                reference.step(&grads).unwrap();
            }
            for (a, b) in fused.params.iter().zip(&reference.params) {
                let diff = (&a.tensor - &b.tensor).abs().max().double_value(&[]);
                assert!(diff <= 1e-15, "beta1 {beta1}, {}: {diff:e}", a.name);
            }
            for (a, b) in fused.state.iter().zip(&reference.state) {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert_eq!(a.step, b.step);
                assert_eq!(a.step_tensor.double_value(&[]), b.step as f64);
                assert!((&a.exp_avg_sq - &b.exp_avg_sq).abs().max().double_value(&[]) <= 1e-15);
                assert!((&a.exp_avg - &b.exp_avg).abs().max().double_value(&[]) <= 1e-15);
            }
            // The parameter without a gradient on half the steps took three.
            assert_eq!(fused.state[1].as_ref().unwrap().step, 3);
        }
    }

    #[test]
    fn a_wrong_number_of_gradients_is_an_error() {
        let mut a =
            Adam::new(params(2), AdamConfig { lr: 1e-3, beta1: 0.0, beta2: 0.99, eps: 1e-8, weight_decay: 0.0 });
        assert!(a.step(&[]).is_err());
    }
}
