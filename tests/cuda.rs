//! On a machine with CUDA: the parity fixtures in float32 with TF32 off agree with the
//! float64 expectations within float32 tolerance. Without CUDA these tests report that
//! they had nothing to check and pass.

mod common;

use common::*;
use stargan::checkpoint::{load_module, Checkpoint};
use stargan::model::{Discriminator, Init, TranslationNets, DISCRIMINATOR};
use tch::{Device, Kind};

#[test]
fn float32_forward_on_cuda_matches_float64_reference() {
    // TF32 off in cuBLAS and cuDNN (read by the CUDA libraries when they initialise, so
    // before the first CUDA call of this test binary).
    std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
    if !tch::Cuda::is_available() {
        eprintln!("no CUDA device: nothing to check");
        return;
    }
    let dev = Device::Cuda(0);
    tch::Cuda::cudnn_set_benchmark(false);
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
    }
}
