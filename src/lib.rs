//! StarGAN v2 (Choi et al., CVPR 2020) on libtorch.
//!
//! The crate is organised by what it does:
//! - [`config`]: the model configuration and the presets of the released models;
//! - [`model`]: the four networks (generator, mapping network, style encoder,
//!   discriminator) and the FAN that makes the face masks, with parameter names equal
//!   to the official state-dict keys;
//! - [`checkpoint`]: our safetensors format and the importer of official `.ckpt` files;
//! - [`cli`]: the `stargan` command line.

// Checkpoint errors carry the file, tensor, shapes and hint by value; they are cold paths.
#![allow(clippy::result_large_err)]

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod files;
pub mod imaging;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod process;
pub mod rng;
pub mod serve;
pub mod torch_ext;
pub mod train;
