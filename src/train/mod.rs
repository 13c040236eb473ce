//! Training: the official StarGAN v2 objective.

pub mod losses;
