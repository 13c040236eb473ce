//! Model configuration: every knob of the official networks, plus presets equal to the
//! released models.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The architecture of a StarGAN v2 model. Two fields are not exposed by the official
/// code: `hidden_dim` (hard-coded to 512 there) and `dim_in` (2^14 / img_size there).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Image side in pixels; a power of two, at least 32.
    pub img_size: i64,
    /// Number of domains K (sub-folders of the training set).
    pub num_domains: i64,
    /// Size of the latent code z fed to the mapping network.
    pub latent_dim: i64,
    /// Size of the style code s.
    pub style_dim: i64,
    /// Width of the mapping network (official: 512).
    pub hidden_dim: i64,
    /// Width of the first convolution (official: 2^14 / img_size).
    pub dim_in: i64,
    /// Channel cap of the convolutional nets (official: 512).
    pub max_conv_dim: i64,
    /// Weight of the high-pass skip path; > 0 enables it and the FAN masks (CelebA-HQ).
    pub w_hpf: f64,
}

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("img_size {0} is not supported: use a power of two of at least 32 (the released models use 256)")]
    ImgSize(i64),
    #[error("{name} must be at least 1, got {value}")]
    NonPositive { name: &'static str, value: i64 },
    #[error("{name} = {value} is larger than this tool supports ({max}); the released models use far less")]
    TooLarge { name: &'static str, value: i64, max: i64 },
    #[error("dim_in {dim_in} is larger than max_conv_dim {max_conv_dim}: lower dim_in or raise max_conv_dim")]
    DimIn { dim_in: i64, max_conv_dim: i64 },
    #[error("w_hpf must be a finite number >= 0 (0 = no high-pass path, 1 = CelebA-HQ), got {0}")]
    WHpf(f64),
    #[error("unknown preset '{0}': choose one of {presets}", presets = PRESETS.join(", "))]
    UnknownPreset(String),
}

/// Names accepted by [`Preset::named`].
pub const PRESETS: &[&str] = &["afhq", "celeba-hq"];

/// The official width of the first convolution for an image size: 2^14 / img_size (64
/// channels at 256 px).
pub fn default_dim_in(img_size: i64) -> i64 {
    if img_size > 0 {
        (1 << 14) / img_size
    } else {
        0
    }
}

/// A released model: its architecture, domain names and the training settings of its
/// README that differ from the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub model: ModelConfig,
    /// Domain names in label order (sorted folder names).
    pub domains: &'static [&'static str],
    /// The initial diversity weight λ_ds it was trained with.
    pub lambda_ds: f64,
}

impl Preset {
    pub fn named(name: &str) -> Result<Self, ConfigError> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "afhq" => Ok(Preset {
                name: "afhq",
                model: ModelConfig::afhq(),
                domains: &["cat", "dog", "wild"],
                lambda_ds: 2.0,
            }),
            "celeba-hq" | "celebahq" => Ok(Preset {
                name: "celeba-hq",
                model: ModelConfig::celeba_hq(),
                domains: &["female", "male"],
                lambda_ds: 1.0,
            }),
            _ => Err(ConfigError::UnknownPreset(name.to_string())),
        }
    }

    pub fn domain_names(&self) -> Vec<String> {
        self.domains.iter().map(|s| s.to_string()).collect()
    }
}

impl ModelConfig {
    /// The official architecture for a given size, domain count and high-pass weight.
    pub fn official(img_size: i64, num_domains: i64, w_hpf: f64) -> Self {
        ModelConfig {
            img_size,
            num_domains,
            latent_dim: 16,
            style_dim: 64,
            hidden_dim: 512,
            dim_in: default_dim_in(img_size),
            max_conv_dim: 512,
            w_hpf,
        }
    }

    /// The released AFHQ model: 256 px, cat/dog/wild, no high-pass path.
    pub fn afhq() -> Self {
        Self::official(256, 3, 0.0)
    }

    /// The released CelebA-HQ model: 256 px, female/male, high-pass path with FAN masks.
    pub fn celeba_hq() -> Self {
        Self::official(256, 2, 1.0)
    }

    /// The architecture of a preset.
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        Preset::named(name).map(|p| p.model)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.img_size < 32 || self.img_size.count_ones() != 1 {
            return Err(ConfigError::ImgSize(self.img_size));
        }
        // Upper bounds far above any real model, so that a configuration read from an
        // untrusted file cannot ask for networks of absurd size.
        for (name, value, max) in [
            ("img_size", self.img_size, 4096),
            ("num_domains", self.num_domains, 4096),
            ("latent_dim", self.latent_dim, 8192),
            ("style_dim", self.style_dim, 8192),
            ("hidden_dim", self.hidden_dim, 8192),
            ("dim_in", self.dim_in, 8192),
            ("max_conv_dim", self.max_conv_dim, 8192),
        ] {
            if value < 1 {
                return Err(ConfigError::NonPositive { name, value });
            }
            if value > max {
                return Err(ConfigError::TooLarge { name, value, max });
            }
        }
        if self.dim_in > self.max_conv_dim {
            return Err(ConfigError::DimIn { dim_in: self.dim_in, max_conv_dim: self.max_conv_dim });
        }
        if !self.w_hpf.is_finite() || self.w_hpf < 0.0 {
            return Err(ConfigError::WHpf(self.w_hpf));
        }
        Ok(())
    }

    /// Whether the generator uses the high-pass path and so needs FAN masks.
    pub fn uses_masks(&self) -> bool {
        self.w_hpf > 0.0
    }

    /// log2(img_size).
    pub fn log2_size(&self) -> i64 {
        63 - self.img_size.leading_zeros() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_released_models() {
        let a = ModelConfig::afhq();
        assert_eq!((a.img_size, a.num_domains, a.dim_in, a.w_hpf), (256, 3, 64, 0.0));
        let c = ModelConfig::preset("celeba_hq").unwrap();
        assert_eq!((c.num_domains, c.w_hpf, c.hidden_dim), (2, 1.0, 512));
        assert!(matches!(ModelConfig::preset("ffhq"), Err(ConfigError::UnknownPreset(_))));
        let afhq = Preset::named("AFHQ").unwrap();
        assert_eq!(afhq.domain_names(), ["cat", "dog", "wild"]);
        assert_eq!(afhq.lambda_ds, 2.0, "the AFHQ README trains with λ_ds = 2");
        assert_eq!(Preset::named("celeba_hq").unwrap().lambda_ds, 1.0);
        assert_eq!(default_dim_in(256), 64);
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let ok = ModelConfig::afhq();
        ok.validate().unwrap();
        for (img, err) in [(100, ConfigError::ImgSize(100)), (16, ConfigError::ImgSize(16))] {
            let c = ModelConfig { img_size: img, ..ok.clone() };
            assert_eq!(c.validate(), Err(err));
        }
        let c = ModelConfig { num_domains: 0, ..ok.clone() };
        assert_eq!(c.validate(), Err(ConfigError::NonPositive { name: "num_domains", value: 0 }));
        let c = ModelConfig { w_hpf: -1.0, ..ok.clone() };
        assert!(c.validate().is_err());
        let c = ModelConfig { dim_in: 1024, ..ok.clone() };
        assert!(c.validate().unwrap_err().to_string().contains("max_conv_dim"));
    }
}
