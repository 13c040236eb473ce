//! The StarGAN v2 networks. Field and index names follow the official modules, so every
//! tensor's name is its official state-dict key.

pub mod blocks;
pub mod discriminator;
pub mod fan;
pub mod generator;
pub mod layers;
pub mod mapping;
pub mod style_encoder;

pub use discriminator::Discriminator;
pub use fan::Fan;
pub use generator::{Generator, Masks};
pub use layers::{Init, Module, NamedTensor, Role};
pub use mapping::MappingNetwork;
pub use style_encoder::StyleEncoder;

use crate::config::ModelConfig;

/// Official network names, as the top-level keys of a checkpoint.
pub const GENERATOR: &str = "generator";
pub const MAPPING_NETWORK: &str = "mapping_network";
pub const STYLE_ENCODER: &str = "style_encoder";
pub const DISCRIMINATOR: &str = "discriminator";
pub const FAN: &str = "fan";

/// The networks used to translate images: G, F, E, and the FAN when the model uses masks.
pub struct TranslationNets {
    pub generator: Generator,
    pub mapping_network: MappingNetwork,
    pub style_encoder: StyleEncoder,
}

impl TranslationNets {
    pub fn new(init: &Init, cfg: &ModelConfig) -> Self {
        TranslationNets {
            generator: Generator::new(init, cfg),
            mapping_network: MappingNetwork::new(init, cfg),
            style_encoder: StyleEncoder::new(init, cfg),
        }
    }

    /// (network name, module) pairs in checkpoint order.
    pub fn modules(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![
            (GENERATOR, &self.generator as &dyn Module),
            (MAPPING_NETWORK, &self.mapping_network),
            (STYLE_ENCODER, &self.style_encoder),
        ]
    }
}
