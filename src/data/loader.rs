//! Batches for training, made on worker threads and prefetched.
//!
//! Batch k is a pure function of (seed, k): its samples are drawn from an RNG seeded by
//! both, so a resumed run sees exactly the batches the uninterrupted run would have seen.
//! Sampling is class balanced with replacement (a domain uniformly, then an image of it
//! uniformly, which equals the official WeightedRandomSampler with weights 1/count), and
//! each reference comes with a second image of its domain through a pairing fixed at
//! construction, as officially (but never an image with itself).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::augment::Augment;
use super::folder::ImageFolder;
use crate::imaging;

/// One batch of training inputs (CPU tensors).
pub struct TrainBatch {
    pub x_src: Tensor,
    pub y_src: Tensor,
    pub x_ref: Tensor,
    pub x_ref2: Tensor,
    pub y_ref: Tensor,
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub img_size: u32,
    pub randcrop_prob: f64,
    pub seed: u64,
    pub workers: usize,
    /// Batches each worker may have ready ahead of the trainer.
    pub prefetch: usize,
    /// Index of the first batch (the iteration to resume from).
    pub start_batch: u64,
}

/// Images that could not be decoded are skipped; after this many failures in a row for
/// one sample the data set is considered unusable.
const MAX_CONSECUTIVE_FAILURES: usize = 64;

struct Sampler {
    files: Vec<Vec<PathBuf>>,
    pairs: Vec<Vec<usize>>,
    augment: Augment,
    batch_size: usize,
    seed: u64,
    skipped: Arc<AtomicUsize>,
}

impl Sampler {
    fn load(&self, rng: &mut ChaCha8Rng, domain: usize, idx: usize) -> Option<Tensor> {
        let path = &self.files[domain][idx];
        match imaging::load_rgb(path) {
            Ok(img) => Some(self.augment.apply(&img, rng)),
            Err(e) => {
                let n = self.skipped.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!("warning: skipping unreadable image ({n} so far): {e:#}");
                None
            }
        }
    }

    /// Draws a domain uniformly, then an image of it uniformly, and reads it with
    /// `read`; an unreadable draw is skipped (and counted) and drawn again, up to
    /// [`MAX_CONSECUTIVE_FAILURES`] times in a row.
    fn draw<T>(
        &self,
        rng: &mut ChaCha8Rng,
        nd: usize,
        what: &str,
        read: impl Fn(&Self, &mut ChaCha8Rng, usize, usize) -> Option<T>,
    ) -> Result<(usize, T)> {
        for _ in 0..MAX_CONSECUTIVE_FAILURES {
            let d = rng.random_range(0..nd);
            let i = rng.random_range(0..self.files[d].len());
            if let Some(t) = read(self, rng, d, i) {
                return Ok((d, t));
            }
        }
        bail!("{MAX_CONSECUTIVE_FAILURES} {what} in a row could not be read; check the data folder")
    }

    fn batch(&self, k: u64) -> Result<TrainBatch> {
        let mut rng = crate::rng::batch_rng(self.seed, k);
        let nd = self.files.len();
        let (mut xs, mut ys, mut rs, mut r2s, mut yr) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..self.batch_size {
            let (d, x) = self.draw(&mut rng, nd, "images", |s, rng, d, i| s.load(rng, d, i))?;
            xs.push(x);
            ys.push(d as i64);
            let (d, (a, b)) = self.draw(&mut rng, nd, "reference images", |s, rng, d, i| {
                // Both are read (and augmented) even if the first fails: the draws of
                // the random stream stay the same whatever fails.
                let (a, b) = (s.load(rng, d, i), s.load(rng, d, s.pairs[d][i]));
                Some((a?, b?))
            })?;
            rs.push(a);
            r2s.push(b);
            yr.push(d as i64);
        }
        Ok(TrainBatch {
            x_src: Tensor::stack(&xs, 0),
            y_src: Tensor::from_slice(&ys).to_kind(Kind::Int64),
            x_ref: Tensor::stack(&rs, 0),
            x_ref2: Tensor::stack(&r2s, 0),
            y_ref: Tensor::from_slice(&yr).to_kind(Kind::Int64),
        })
    }
}

/// Pairs each image index with another index of the same domain, fixed by `seed`.
fn make_pairs(n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(rng);
    if n > 1 {
        for i in 0..n {
            if perm[i] == i {
                let j = (i + 1) % n;
                perm.swap(i, j);
            }
        }
    }
    perm
}

pub struct Loader {
    receivers: Vec<Receiver<(u64, Result<TrainBatch>)>>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    next: u64,
    start: u64,
    /// Number of images skipped because they could not be decoded.
    pub skipped: Arc<AtomicUsize>,
}

impl Loader {
    pub fn new(folder: &ImageFolder, cfg: &LoaderConfig) -> Result<Self> {
        folder.expect_pairs()?;
        let mut rng = crate::rng::pairing_rng(cfg.seed);
        let pairs = folder.files.iter().map(|f| make_pairs(f.len(), &mut rng)).collect();
        let skipped = Arc::new(AtomicUsize::new(0));
        let sampler = Arc::new(Sampler {
            files: folder.files.clone(),
            pairs,
            augment: Augment::new(cfg.img_size, cfg.randcrop_prob),
            batch_size: cfg.batch_size,
            seed: cfg.seed,
            skipped: skipped.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let n = cfg.workers.max(1);
        let mut receivers = Vec::new();
        let mut workers = Vec::new();
        for w in 0..n {
            let (tx, rx) = sync_channel(cfg.prefetch.max(1));
            let (sampler, stop) = (sampler.clone(), stop.clone());
            let first = cfg.start_batch + w as u64;
            workers.push(std::thread::spawn(move || {
                let mut k = first;
                while !stop.load(Ordering::Relaxed) {
                    let b = sampler.batch(k);
                    let failed = b.is_err();
                    if tx.send((k, b)).is_err() || failed {
                        break;
                    }
                    k += n as u64;
                }
            }));
            receivers.push(rx);
        }
        Ok(Loader { receivers, workers, stop, next: cfg.start_batch, start: cfg.start_batch, skipped })
    }

    /// The next batch, in order.
    pub fn next_batch(&mut self) -> Result<TrainBatch> {
        let w = ((self.next - self.start) % self.receivers.len() as u64) as usize;
        let (k, b) =
            self.receivers[w].recv().map_err(|_| anyhow::anyhow!("data loader worker stopped unexpectedly"))?;
        debug_assert_eq!(k, self.next);
        self.next += 1;
        b
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock workers waiting on full channels.
        self.receivers.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
