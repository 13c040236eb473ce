//! Resident memory of CPU inference stage by stage (AFHQ-size networks, 256 px, batch 1):
//! after start-up, after giving back the GPU libraries' pages, after building G, F and E,
//! and after each latent- and reference-guided translation.
//!
//! `cargo run --release --example memory_stages` (the settings of `stargan`);
//! set `NO_TUNE=1`, `KEEP_GPU_PAGES=1` or `NCHW=1` to switch one of them off.

use std::time::Instant;

use stargan::config::ModelConfig;
use stargan::infer::Translator;
use stargan::model::{layers, Init, TranslationNets};
use tch::{Device, Kind, Tensor};

fn mb(status: &str, key: &str) -> f64 {
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

fn report(stage: &str) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    println!("{stage:<28} RSS {:6.0} MiB   peak {:6.0} MiB", mb(&s, "VmRSS:"), mb(&s, "VmHWM:"));
}

fn main() {
    let on = |var: &str| std::env::var_os(var).is_none();
    if on("NO_TUNE") {
        stargan::process::tune_allocator();
    }
    let _ = Tensor::zeros([1], (Kind::Float, Device::Cpu));
    report("start-up (libtorch loaded)");
    if on("KEEP_GPU_PAGES") {
        stargan::process::release_gpu_library_pages();
        report("GPU library pages given back");
    }
    let cfg = ModelConfig::preset("afhq").unwrap();
    let loaded;
    let built;
    let nets = match std::env::var_os("CKPT") {
        Some(path) => {
            let src = stargan::infer::load::ModelSource {
                checkpoint: path.into(),
                preset: Some("afhq".into()),
                ..Default::default()
            };
            loaded = stargan::infer::load::load_model(&src, Device::Cpu).unwrap();
            report("G, F, E loaded");
            &loaded.nets
        }
        None => {
            built = tch::no_grad(|| TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg));
            report("G, F, E built");
            &built
        }
    };
    let o = (Kind::Float, Device::Cpu);
    let x = Tensor::rand([1, 3, 256, 256], o) * 2.0 - 1.0;
    let z = Tensor::randn([1, cfg.latent_dim], o);
    let y = Tensor::zeros([1], (Kind::Int64, Device::Cpu));
    let t = Translator { nets, fan: None, device: Device::Cpu, latent_dim: cfg.latent_dim };
    // The Translator picks channels-last; an NCHW run calls the networks directly.
    let nchw = !on("NCHW");
    for i in 0..3 {
        let start = Instant::now();
        let out = if nchw {
            tch::no_grad(|| nets.generator.forward(&x, &nets.mapping_network.forward(&z, &y), None))
        } else {
            t.generate(&x, &t.latent_style(&z, &y))
        };
        assert_eq!(layers::is_channels_last(&out), !nchw);
        report(&format!("latent {i} ({:.0} ms)", start.elapsed().as_secs_f64() * 1e3));
    }
    for i in 0..3 {
        let start = Instant::now();
        let _ = if nchw {
            tch::no_grad(|| nets.generator.forward(&x, &nets.style_encoder.forward(&x, &y), None))
        } else {
            t.generate(&x, &t.reference_style(&x, &y))
        };
        report(&format!("reference {i} ({:.0} ms)", start.elapsed().as_secs_f64() * 1e3));
    }
}
