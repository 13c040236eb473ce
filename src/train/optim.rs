//! Adam with coupled (L2) weight decay, exactly as `torch.optim.Adam` with
//! `weight_decay > 0`: the decay is added to the gradient before the moments (this is
//! not AdamW). A parameter whose gradient is absent is skipped entirely, as PyTorch does
//! with `zero_grad(set_to_none=True)`.

use tch::Tensor;

use super::{Models, TrainConfig};
use crate::model::{Module, NamedTensor};

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// Per-parameter state: step count and the two moment estimates.
pub struct AdamState {
    pub step: i64,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
}

pub struct Adam {
    pub config: AdamConfig,
    pub params: Vec<NamedTensor>,
    pub state: Vec<Option<AdamState>>,
}

impl Adam {
    pub fn new(params: Vec<NamedTensor>, config: AdamConfig) -> Self {
        let state = params.iter().map(|_| None).collect();
        Adam { config, params, state }
    }

    /// The parameter tensors, for autograd.
    pub fn tensors(&self) -> Vec<Tensor> {
        self.params.iter().map(|p| p.tensor.shallow_clone()).collect()
    }

    /// One update with `grads[i]` for `params[i]`; undefined gradients are skipped.
    pub fn step(&mut self, grads: &[Tensor]) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        let c = self.config;
        tch::no_grad(|| {
            for ((p, g), st) in self.params.iter_mut().zip(grads).zip(self.state.iter_mut()) {
                if !g.defined() {
                    continue;
                }
                let st = st.get_or_insert_with(|| AdamState {
                    step: 0,
                    exp_avg: p.tensor.zeros_like(),
                    exp_avg_sq: p.tensor.zeros_like(),
                });
                st.step += 1;
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
                    Some(AdamState {
                        step: step.int64_value(&[]),
                        exp_avg: load("exp_avg")?,
                        exp_avg_sq: load("exp_avg_sq")?,
                    })
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

    pub fn all_mut(&mut self) -> [(&'static str, &mut Adam); 4] {
        [
            (crate::model::GENERATOR, &mut self.generator),
            (crate::model::MAPPING_NETWORK, &mut self.mapping_network),
            (crate::model::STYLE_ENCODER, &mut self.style_encoder),
            (crate::model::DISCRIMINATOR, &mut self.discriminator),
        ]
    }
}
