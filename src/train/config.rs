//! Training hyper-parameters, with the official defaults.

use serde::{Deserialize, Serialize};

use super::optim::AdamConfig;

/// Every hyper-parameter of the official training loop (reference.md §2.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub lambda_reg: f64,
    pub lambda_cyc: f64,
    pub lambda_sty: f64,
    pub lambda_ds: f64,
    pub ds_iter: i64,
    pub total_iters: i64,
    pub batch_size: i64,
    pub randcrop_prob: f64,
    pub lr: f64,
    pub f_lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub ema_beta: f64,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lambda_reg: 1.0,
            lambda_cyc: 1.0,
            lambda_sty: 1.0,
            lambda_ds: 1.0,
            ds_iter: 100_000,
            total_iters: 100_000,
            batch_size: 8,
            randcrop_prob: 0.5,
            lr: 1e-4,
            f_lr: 1e-6,
            beta1: 0.0,
            beta2: 0.99,
            weight_decay: 1e-4,
            ema_beta: 0.999,
            seed: 777,
        }
    }
}

impl TrainConfig {
    /// Adam settings of G, E and D.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig { lr: self.lr, beta1: self.beta1, beta2: self.beta2, eps: 1e-8, weight_decay: self.weight_decay }
    }

    /// Adam settings of the mapping network (lr = f_lr).
    pub fn adam_mapping(&self) -> AdamConfig {
        AdamConfig { lr: self.f_lr, ..self.adam() }
    }

    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} must be > 0, got {v}"))
            }
        };
        pos("lr", self.lr)?;
        pos("f_lr", self.f_lr)?;
        if self.batch_size < 1 {
            return Err(format!("batch_size must be at least 1, got {}", self.batch_size));
        }
        if self.ds_iter < 1 {
            return Err(format!("ds_iter must be at least 1, got {}", self.ds_iter));
        }
        if !(0.0..=1.0).contains(&self.randcrop_prob) {
            return Err(format!("randcrop_prob must be in [0, 1], got {}", self.randcrop_prob));
        }
        for (n, v) in [("beta1", self.beta1), ("beta2", self.beta2), ("ema_beta", self.ema_beta)] {
            if !(0.0..1.0).contains(&v) {
                return Err(format!("{n} must be in [0, 1), got {v}"));
            }
        }
        for (n, v) in [
            ("lambda_reg", self.lambda_reg),
            ("lambda_cyc", self.lambda_cyc),
            ("lambda_sty", self.lambda_sty),
            ("lambda_ds", self.lambda_ds),
            ("weight_decay", self.weight_decay),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("{n} must be >= 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// When a run logs, samples, saves and evaluates. Saved in the run's config.json ("run"), so
/// that `stargan train --out DIR --resume` alone continues with the schedule the run was started
/// with (before, it fell back to these defaults: a resumed run stopped evaluating).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSchedule {
    pub print_every: i64,
    pub sample_every: i64,
    pub save_every: i64,
    pub keep_last: usize,
    pub sample_size: i64,
    pub mean_style_samples: i64,
    pub eval_every: i64,
    pub eval_images: usize,
    pub eval_outs: usize,
}

impl Default for RunSchedule {
    fn default() -> Self {
        RunSchedule {
            print_every: 10,
            sample_every: 5000,
            save_every: 10000,
            keep_last: 3,
            sample_size: 8,
            mean_style_samples: 10000,
            eval_every: 0,
            eval_images: 64,
            eval_outs: 1,
        }
    }
}
