//! On a machine with CUDA: the parity fixtures in float32 with TF32 off agree with the
//! float64 expectations within float32 tolerance.
//!
//! Ignored by default (a GPU test that finds no GPU must not show as passed): run them
//! with `cargo test --test cuda -- --ignored`, as the device script does. There,
//! `STARGAN_REQUIRE_CUDA=1` makes a missing GPU a failure; without it they say that they
//! found none and check nothing.

mod common;

use common::*;
use stargan::checkpoint::{load_module, Checkpoint};
use stargan::model::{Discriminator, Init, TranslationNets, DISCRIMINATOR};
use tch::{Device, Kind};

/// The CUDA device, or None (after saying so) when there is none and none is required.
pub fn cuda_or_skip() -> Option<Device> {
    if tch::Cuda::is_available() {
        return Some(Device::Cuda(0));
    }
    if std::env::var("STARGAN_REQUIRE_CUDA").is_ok_and(|v| v == "1") {
        panic!("STARGAN_REQUIRE_CUDA=1 but libtorch sees no CUDA device");
    }
    eprintln!("no CUDA device: nothing checked (set STARGAN_REQUIRE_CUDA=1 to make this a failure)");
    None
}

#[test]
#[ignore = "needs a CUDA GPU: cargo test --test cuda -- --ignored (the device script runs it)"]
fn float32_forward_on_cuda_matches_float64_reference() {
    // TF32 off in cuBLAS and cuDNN (read by the CUDA libraries when they initialise, so
    // before the first CUDA call of this test binary).
    std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
    let Some(dev) = cuda_or_skip() else { return };
    tch::Cuda::cudnn_set_benchmark(false);
    let mut checked = 0;
    for name in parity_configs() {
        let cfg = model_config(&name);
        if cfg.uses_masks() {
            continue; // The FAN masks are covered on the CPU.
        }
        let init = Init::new(dev, Kind::Float);
        let ckpt = Checkpoint::open(parity_dir().join(format!("{name}.init.safetensors"))).unwrap();
        let nets = TranslationNets::new(&init, &cfg);
        for (net, m) in nets.modules() {
            load_module(m, net, ckpt.net(net).unwrap(), &ckpt.path, &cfg).unwrap();
        }
        let d = Discriminator::new(&init, &cfg);
        load_module(&d, DISCRIMINATOR, ckpt.net(DISCRIMINATOR).unwrap(), &ckpt.path, &cfg).unwrap();
        let fx = fixture(&name, "forward");
        let f = |k: &str| fx[k].to_kind(Kind::Float).to_device(dev);
        let y = fx["in.y"].to_device(dev);
        tch::no_grad(|| {
            let s = nets.mapping_network.forward(&f("in.z"), &y);
            assert_close(&format!("{name}: F (cuda f32)"), &s.to_device(Device::Cpu), &fx["out.F"], 1e-4);
            let g = nets.generator.forward(&f("in.x"), &s, None);
            assert_close(&format!("{name}: G (cuda f32)"), &g.to_device(Device::Cpu), &fx["out.G"], 1e-4);
        });
        let (logits, grad) = d.forward_with_input_grad(&f("in.x"), &y);
        assert_close(&format!("{name}: D (cuda f32)"), &logits.to_device(Device::Cpu), &fx["out.D"], 1e-4);
        assert_close(
            &format!("{name}: D_input_grad (cuda f32)"),
            &grad.to_device(Device::Cpu),
            &fx["out.D_input_grad"],
            1e-4,
        );
        checked += 1;
    }
    assert!(checked > 0, "no fixture configuration without masks in {}", parity_dir().display());
}

/// The explicit R1 graph (D's input gradient built from transposed convolutions) equals
/// create_graph double backward on CUDA too: the penalty and its gradient with respect
/// to every parameter of D, in float32 with TF32 off.
#[test]
#[ignore = "needs a CUDA GPU: cargo test --test cuda -- --ignored (the device script runs it)"]
fn explicit_r1_graph_equals_double_backward_on_cuda() {
    std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
    let Some(dev) = cuda_or_skip() else { return };
    stargan::torch_ext::cuda::set_allow_tf32(false);
    let mut checked = 0;
    for name in parity_configs() {
        let cfg = model_config(&name);
        let d = Discriminator::new(&Init::new(dev, Kind::Float), &cfg);
        let ckpt = Checkpoint::open(parity_dir().join(format!("{name}.init.safetensors"))).unwrap();
        load_module(&d, DISCRIMINATOR, ckpt.net(DISCRIMINATOR).unwrap(), &ckpt.path, &cfg).unwrap();
        let fx = fixture(&name, "forward");
        let x = fx["in.x"].to_kind(Kind::Float).to_device(dev);
        let y = fx["in.y"].to_device(dev);
        let (fast, g_fast, slow, g_slow) = r1_both_ways(&d, &x, &y);
        assert_close(
            &format!("{name}: R1 (cuda)"),
            &fast.to_device(Device::Cpu).reshape([-1]),
            &slow.to_device(Device::Cpu).reshape([-1]),
            1e-5,
        );
        for (a, b) in g_fast.iter().zip(&g_slow) {
            if a.defined() && b.defined() {
                assert_close(
                    &format!("{name}: dR1/dθ (cuda)"),
                    &a.to_device(Device::Cpu),
                    &b.to_device(Device::Cpu),
                    1e-4,
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0);
}
