//! The names inside our checkpoint files, in one place: the metadata keys, the kinds of
//! file, and how the tensors of EMA networks and optimizer states are named.
//!
//! A training checkpoint holds `<net>.*` (online networks and the discriminator),
//! `<net>_ema.*` (EMA networks), `fan.*` when the model uses masks, and
//! `optim.<net>.<param>.{step,exp_avg,exp_avg_sq}`; an inference file (`stargan
//! export`) holds the EMA networks under their plain names.

/// Metadata: what kind of file this is ([`KIND_TRAINING`] or [`KIND_INFERENCE`]).
pub const META_KIND: &str = "kind";
/// Metadata: the training configuration (JSON), in training checkpoints.
pub const META_TRAIN_CONFIG: &str = "train_config";
/// Metadata: iterations done, in training checkpoints.
pub const META_ITERATION: &str = "iteration";
/// Metadata: the current (decayed) λ_ds, in training checkpoints.
pub const META_LAMBDA_DS: &str = "lambda_ds";
/// Metadata of inference files: the file name and iteration they were exported from.
pub const META_SOURCE: &str = "source";
pub const META_SOURCE_ITERATION: &str = "source_iteration";

pub const KIND_TRAINING: &str = "training";
pub const KIND_INFERENCE: &str = "inference";

/// The suffix of the EMA copy of a network.
pub const EMA_SUFFIX: &str = "_ema";
/// The prefix of optimizer-state tensors.
pub const OPTIM_PREFIX: &str = "optim";

/// Tensor-name prefix of the EMA copy of `net`.
pub fn ema_name(net: &str) -> String {
    format!("{net}{EMA_SUFFIX}")
}
