//! Evaluation metrics with the StarGAN v2 protocol: FID (quality) and LPIPS (diversity),
//! plus a paired metric for data sets with ground truth in every domain.

pub mod fid;
pub mod lpips;
pub mod numpy;
pub mod protocol;
pub mod style;
pub mod weights;
