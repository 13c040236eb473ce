//! Time of each generator stage at 256 px (AFHQ-size, batch 1), NCHW against
//! channels-last, and whether each stage's output kept the layout (c = channels-last).
//!
//! `cargo run --release --example layer_times`

use std::time::Instant;

use stargan::config::ModelConfig;
use stargan::model::layers::{is_channels_last, lrelu_owned, to_channels_last};
use stargan::model::{Init, TranslationNets};
use tch::{Device, Kind, Tensor};

fn main() {
    let cfg = ModelConfig::preset("afhq").unwrap();
    let nets = tch::no_grad(|| TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg));
    let o = (Kind::Float, Device::Cpu);
    let x0 = Tensor::rand([1, 3, 256, 256], o) * 2.0 - 1.0;
    let z = Tensor::randn([1, cfg.latent_dim], o);
    let y = Tensor::zeros([1], (Kind::Int64, Device::Cpu));
    let g = &nets.generator;
    let tag = |t: &Tensor| if is_channels_last(t) { "c" } else { "n" };
    tch::no_grad(|| {
        let s = nets.mapping_network.forward(&z, &y);
        for channels_last in [false, true, false, true] {
            let x = if channels_last { to_channels_last(&x0) } else { x0.shallow_clone() };
            let mut line = String::new();
            let mut total = 0.0;
            let mut stage = |name: String, start: Instant, out: &Tensor| {
                let ms = start.elapsed().as_secs_f64() * 1e3;
                total += ms;
                line += &format!("{name} {ms:.0}{} ", tag(out));
            };
            let t = Instant::now();
            let mut h = g.from_rgb.forward(&x);
            stage("rgb".into(), t, &h);
            for b in &g.encode {
                let t = Instant::now();
                h = b.forward(&h);
                stage(format!("enc{}", h.size()[2]), t, &h);
            }
            for b in &g.decode {
                let t = Instant::now();
                h = b.forward(&h, &s);
                stage(format!("dec{}", h.size()[2]), t, &h);
            }
            let t = Instant::now();
            let out = g.to_rgb_conv.forward(&lrelu_owned(g.to_rgb_norm.forward(&h)));
            stage("out".into(), t, &out);
            let layout = if channels_last { "channels-last" } else { "NCHW" };
            println!("{layout:>13}: {total:4.0} ms | {line}");
        }
    });
}
