//! StarGAN v2 (Choi et al., CVPR 2020) on libtorch.
//!
//! The crate is organised by what it does:
//! - [`config`]: the model configuration and the presets of the released models;
//! - [`model`]: the four networks (generator, mapping network, style encoder,
//!   discriminator) and the FAN that makes the face masks, with parameter names equal
//!   to the official state-dict keys;
//! - [`checkpoint`]: our safetensors format and the importer of official `.ckpt` files;
//! - [`data`]: image folders, class-balanced sampling, reference pairs, augmentation,
//!   prefetching workers, and the emoji data set builder;
//! - [`train`]: the official objective and loop, optimizers, EMA, precision, resume;
//! - [`dist`]: data-parallel training on c10d (Gloo, NCCL), torchrun-compatible;
//! - [`infer`]: translation with latent or reference styles, sample grids, the demo page;
//! - [`metrics`]: FID, LPIPS, style accuracy and the paired metric, with the protocol;
//! - [`serve`]: the local web page (`stargan serve`);
//! - [`imaging`]: images ↔ tensors, resizing, grids, safe decoding of untrusted bytes;
//! - [`rng`]: every random draw as a named stream of the seed (what makes resume exact);
//! - [`torch_ext`]: what tch does not bind, through our C++ shim (fused Adam, foreach,
//!   CPU autocast);
//! - [`device`], [`process`], [`files`]: the compute device, process memory settings,
//!   and the files the tool keeps outside a run (cache, shipped model, examples);
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
