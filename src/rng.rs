//! Every random draw of the crate, as named streams of a seed.
//!
//! Nothing uses a global generator: each draw is a pure function of (seed, stream,
//! index), so a resumed run draws exactly what the uninterrupted run would have, two
//! processes draw the same codes, and an evaluation is repeatable. The numeric stream
//! tags are part of that contract (changing one changes every result drawn from it), so
//! they are spelled out here once.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::Tensor;

/// Streams of latent codes z ~ N(0, I).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// z_trg of a training iteration (index = iteration).
    TrainZ,
    /// z_trg2 of a training iteration, the second code of the diversity loss.
    TrainZ2,
    /// The rows of the latent sample grids written during training.
    TrainGridRows,
    /// Styles of `stargan translate` (and of the demo and the web page).
    TranslateStyles,
    /// The rows of the latent grids of `stargan sample`.
    SampleGridRows,
    /// Latent codes of the evaluation protocol (index encodes task, batch and output).
    Eval,
    /// Codes averaged for the mean style of the training sample grids.
    TrainGridMeanStyle,
    /// Codes averaged for the mean style of ψ truncation at inference.
    MeanStyle,
}

impl Stream {
    /// The tag mixed into the seed. Fixed forever: see the module comment.
    const fn tag(self) -> u64 {
        match self {
            Stream::TrainZ => 0,
            Stream::TrainZ2 => 1,
            Stream::TrainGridRows => 3,
            Stream::TranslateStyles => 4,
            Stream::SampleGridRows => 5,
            Stream::Eval => 6,
            Stream::TrainGridMeanStyle => 7,
            Stream::MeanStyle => 9,
        }
    }
}

/// `n` latent codes of size `dim` (an n×dim float32 CPU tensor), a pure function of
/// (seed, stream, index).
pub fn latent_codes(seed: u64, stream: Stream, index: u64, n: i64, dim: i64) -> Tensor {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ 0x2A2A_0000 ^ index.wrapping_mul(0x100_0000_01B3) ^ (stream.tag() << 56));
    let v: Vec<f32> = (0..n * dim).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_slice(&v).view([n, dim])
}

/// The generator of training batch `k`: which images, which references, which crops.
pub fn batch_rng(seed: u64, k: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The generator of the fixed pairing of each reference image with a second one.
pub fn pairing_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_add(0x5EED))
}

/// The generator that picks the fixed images of the training sample grids.
pub fn grid_images_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ 0x5A3B_1E00_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_pure_functions_of_seed_stream_and_index() {
        let a = latent_codes(7, Stream::TrainZ, 3, 2, 4);
        assert!(a.equal(&latent_codes(7, Stream::TrainZ, 3, 2, 4)));
        for other in [
            latent_codes(8, Stream::TrainZ, 3, 2, 4),
            latent_codes(7, Stream::TrainZ2, 3, 2, 4),
            latent_codes(7, Stream::TrainZ, 4, 2, 4),
        ] {
            assert!(!a.equal(&other));
        }
        assert_eq!(a.size(), [2, 4]);
    }

    #[test]
    fn stream_tags_are_distinct() {
        let all = [
            Stream::TrainZ,
            Stream::TrainZ2,
            Stream::TrainGridRows,
            Stream::TranslateStyles,
            Stream::SampleGridRows,
            Stream::Eval,
            Stream::TrainGridMeanStyle,
            Stream::MeanStyle,
        ];
        let mut tags: Vec<u64> = all.iter().map(|s| s.tag()).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), all.len());
    }
}
