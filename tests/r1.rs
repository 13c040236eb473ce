//! The R1 penalty cannot silently drift from D: the explicit input-gradient graph equals
//! true double backward (the penalty and its gradient for every parameter of D) over a
//! grid of random configurations, with no fixture; and training with `--r1
//! double-backward` (the reference path) gives the parameters of the explicit path.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use stargan::config::ModelConfig;
use stargan::model::{Discriminator, Init, Module};
use tch::{Device, Kind, Tensor};

#[test]
fn explicit_r1_equals_double_backward_over_random_configurations() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut cases = 0;
    for img_size in [16i64, 32, 64, 128, 256] {
        for _ in 0..2 {
            let width = [4i64, 8, 16][rng.random_range(0..3)];
            let cfg = ModelConfig {
                img_size,
                num_domains: rng.random_range(2..=5),
                latent_dim: 4,
                style_dim: 4,
                hidden_dim: 8,
                dim_in: width,
                max_conv_dim: width,
                w_hpf: 0.0,
            };
            let n = rng.random_range(1..=3);
            tch::manual_seed(rng.random_range(0..1_000_000));
            let d = Discriminator::new(&Init::new(Device::Cpu, Kind::Double), &cfg);
            let x = Tensor::randn([n, 3, img_size, img_size], (Kind::Double, Device::Cpu));
            let y = Tensor::randint(cfg.num_domains, [n], (Kind::Int64, Device::Cpu));
            let what = format!("{img_size} px, width {width}, {} domains, batch {n}", cfg.num_domains);
            let (fast, g_fast, slow, g_slow) = r1_both_ways(&d, &x, &y);

            assert_close(&format!("{what}: R1"), &fast.reshape([1]), &slow.reshape([1]), 1e-12);
            let mut compared = 0;
            for ((a, b), p) in g_fast.iter().zip(&g_slow).zip(d.parameters()) {
                match (a.defined(), b.defined()) {
                    (true, true) => {
                        assert_close(&format!("{what}: dR1/d{}", p.name), a, b, 1e-10);
                        compared += 1;
                    }
                    // Biases do not change D's input gradient: one path leaves their gradient
                    // absent, the other fills it with zeros.
                    (true, false) | (false, true) => {
                        let t = if a.defined() { a } else { b };
                        assert_eq!(t.abs().max().double_value(&[]), 0.0, "{what}: {}", p.name);
                    }
                    (false, false) => {}
                }
            }
            assert!(compared >= d.parameters().len() / 2, "{what}: only {compared} gradients compared");
            cases += 1;
        }
    }
    assert_eq!(cases, 10);
}

#[test]
fn training_with_double_backward_r1_equals_the_explicit_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir().join("representative/afhq/ref");
    let run = |out: &std::path::Path, r1: &str| {
        let o = stargan_bin()
            .args(["train", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(["--img-size", "32", "--dim-in", "16", "--max-conv-dim", "32", "--latent-dim", "8"])
            .args(["--style-dim", "16", "--hidden-dim", "32", "--batch-size", "2", "--device", "cpu"])
            .args(["--precision", "fp64", "--sample-every", "0", "--no-progress", "--total-iters", "2", "--r1", r1])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (dir.path().join("explicit"), dir.path().join("double-backward"));
    run(&a, "explicit");
    run(&b, "double-backward");
    let (ta, tb) = (
        read_safetensors(&a.join("checkpoints/000002.safetensors")),
        read_safetensors(&b.join("checkpoints/000002.safetensors")),
    );
    for (k, t) in &ta {
        let scale = t.abs().max().double_value(&[]).max(1.0);
        let diff = max_abs_diff(t, &tb[k]) / scale;
        assert!(diff < 1e-10, "{k}: {diff:e}");
    }
}
