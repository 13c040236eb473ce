//! Training data: image folders (one sub-folder per domain), class-balanced sampling,
//! reference pairs, the official augmentation, and worker threads that prefetch batches.

pub mod augment;
pub mod emoji;
pub mod folder;
pub mod loader;

pub use folder::{DataError, ImageFolder};
