//! The training loop reads values back from the device once per step (the fused
//! non-finite check), plus once per logged line: no hidden `.item()` on the hot path.
//! Alone in its test binary, so that the process-wide counter counts this run only.

mod common;

use common::*;
use stargan::train::step::host_reads;
use stargan::train::trainer::{run, Resume, TrainOptions};
use stargan::train::{Precision, TrainConfig};
use tch::Device;

#[test]
fn one_host_read_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let steps = 6;
    let opts = TrainOptions {
        data: data_dir().join("representative/afhq/ref"),
        val: None,
        out: dir.path().join("run"),
        model: tiny_model(3),
        train: TrainConfig { total_iters: steps, batch_size: 2, seed: 1, ..TrainConfig::default() },
        device: Device::Cpu,
        workers: 1,
        prefetch: 1,
        // Logged only at the last step; no samples, no evaluation.
        print_every: 1000,
        sample_every: 0,
        save_every: 0,
        keep_last: 1,
        resume: Resume::No,
        init: None,
        wing: None,
        sample_size: 2,
        mean_style_samples: 10,
        eval: None,
        precision: Precision::Fp32,
        channels_last: false,
        r1: Default::default(),
        save_all_ranks: false,
        progress_bar: false,
        share_cpu: false,
    };
    let before = host_reads();
    let s = run(&opts).unwrap();
    assert_eq!(s.iterations, steps);
    // One per step, and one for the single log line.
    assert_eq!(host_reads() - before, steps as usize + 1);
}
