//! Training: the official StarGAN v2 objective and loop.

pub mod checkpoint;
pub mod config;
pub mod cpu_share;
pub mod ema;
pub mod evaluation;
pub mod losses;
pub mod optim;
pub mod report;
pub mod step;
pub mod stop;
pub mod trainer;

pub use config::{RunSchedule, TrainConfig};

/// The arithmetic of a training run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// float32 (TF32 convolutions and matrix products on recent GPUs).
    Fp32,
    /// bfloat16 autocast for the forward passes; parameters, optimizer state, EMA, the R1
    /// penalty and the losses stay float32.
    Bf16,
    /// float64 everywhere: for exactness checks, not for speed.
    Fp64,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "f32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp64" | "float64" | "f64" => Ok(Precision::Fp64),
            other => Err(format!("--precision {other}: use fp32, bf16 or fp64")),
        }
    }

    /// The type of the parameters (and of the data fed to the networks).
    pub fn param_kind(self) -> tch::Kind {
        match self {
            Precision::Fp64 => tch::Kind::Double,
            _ => tch::Kind::Float,
        }
    }
}

use crate::config::ModelConfig;
use crate::model::{Discriminator, Fan, Init, TranslationNets};

/// Everything the training step touches: online nets, discriminator, EMA nets, FAN.
pub struct Models {
    pub nets: TranslationNets,
    pub discriminator: Discriminator,
    pub ema: TranslationNets,
    pub fan: Option<Fan>,
}

impl Models {
    /// He-initialised networks; the EMA nets start as copies of the online ones (the
    /// official code copies them before He init: a documented departure).
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        let nets = TranslationNets::new(init, cfg);
        let ema_nets = TranslationNets::new(init, cfg);
        for (_, m) in ema_nets.modules() {
            for t in m.named_tensors() {
                let _ = t.tensor.set_requires_grad(false);
            }
        }
        let models = Models {
            nets,
            discriminator: Discriminator::new(init, cfg),
            ema: ema_nets,
            fan: cfg.uses_masks().then(|| Fan::new(init)),
        };
        models.reset_ema();
        models
    }

    /// Stores every 4-D weight channels-last (the same tensors, so optimizers and
    /// checkpoints are unaffected): with channels-last activations, cuDNN and oneDNN
    /// convolve without reordering.
    pub fn to_channels_last(&self) {
        let mut all = self.nets.modules();
        all.extend(self.ema.modules());
        all.push((crate::model::DISCRIMINATOR, &self.discriminator as &dyn crate::model::Module));
        tch::no_grad(|| {
            for (_, m) in all {
                for mut t in m.named_tensors().into_iter().map(|n| n.tensor).filter(|t| t.dim() == 4) {
                    let cl = crate::model::layers::to_channels_last(&t);
                    t.set_data(&cl);
                }
            }
        });
    }

    /// Sets the EMA nets to exact copies of the online nets (after loading weights).
    pub fn reset_ema(&self) {
        for ((_, a), (_, b)) in self.nets.modules().iter().zip(self.ema.modules().iter()) {
            ema::copy_all(*a, *b);
        }
    }
}
