//! Where the time of a CPU training step goes: the whole step, the optimizer updates and
//! the EMA, measured in CPU time of this process (robust to other load on the machine;
//! run with OMP_NUM_THREADS=1 so that all tensor work is on this thread).
//!
//! `OMP_NUM_THREADS=1 cargo run --release --example train_phases -- [dim_in max_conv_dim style_dim hidden_dim batch img_size]`
use stargan::config::ModelConfig;
use stargan::model::{Init, Module};
use stargan::rng::{latent_codes, Stream};
use stargan::train::optim::Optimizers;
use stargan::train::step::{train_step, Batch};
use stargan::train::{ema, Models, TrainConfig};
use tch::{Device, Kind, Tensor};

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let a: Vec<i64> = std::env::args().skip(1).map(|s| s.parse().unwrap()).collect();
    let get = |i: usize, d: i64| a.get(i).copied().unwrap_or(d);
    let cfg = ModelConfig {
        img_size: get(5, 64),
        num_domains: 4,
        latent_dim: 16,
        style_dim: get(2, 32),
        hidden_dim: get(3, 128),
        dim_in: get(0, 16),
        max_conv_dim: get(1, 64),
        w_hpf: 0.0,
    };
    let batch = get(4, 4);
    let tcfg = TrainConfig { batch_size: batch, ..TrainConfig::default() };
    tch::manual_seed(0);
    let models = Models::new(&Init::new(Device::Cpu, Kind::Float), &cfg);
    let mut opt = Optimizers::new(&models, &tcfg);
    let mut lambda_ds = 1.0;
    let s = cfg.img_size;
    let channels_last = std::env::var_os("CHANNELS_LAST").is_some();
    let img = |seed: i64| {
        tch::manual_seed(seed);
        let x = Tensor::rand([batch, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        if channels_last {
            stargan::model::layers::to_channels_last(&x)
        } else {
            x
        }
    };
    let b = Batch {
        x_real: img(1),
        y_org: Tensor::arange(batch, (Kind::Int64, Device::Cpu)).remainder(4),
        x_ref: img(2),
        x_ref2: img(3),
        y_trg: (Tensor::arange(batch, (Kind::Int64, Device::Cpu)) + 1).remainder(4),
        z_trg: latent_codes(0, Stream::TrainZ, 0, batch, 16),
        z_trg2: latent_codes(0, Stream::TrainZ2, 0, batch, 16),
    };
    let n = 10;
    for _ in 0..2 {
        train_step(&models, &mut opt, &tcfg, &mut lambda_ds, &b, None).unwrap();
    }
    let t0 = cpu_seconds();
    for _ in 0..n {
        train_step(&models, &mut opt, &tcfg, &mut lambda_ds, &b, None).unwrap();
    }
    let step = (cpu_seconds() - t0) / n as f64;
    // The optimizer updates of one iteration: D twice, G twice, F and E once.
    let grads = |o: &stargan::train::optim::Adam| -> Vec<Tensor> {
        o.params.iter().map(|p| p.tensor.randn_like() * 1e-3).collect()
    };
    let (gd, gg, gf, ge) =
        (grads(&opt.discriminator), grads(&opt.generator), grads(&opt.mapping_network), grads(&opt.style_encoder));
    let t0 = cpu_seconds();
    for _ in 0..n {
        opt.discriminator.step(&gd).unwrap();
        opt.discriminator.step(&gd).unwrap();
        opt.generator.step(&gg).unwrap();
        opt.generator.step(&gg).unwrap();
        opt.mapping_network.step(&gf).unwrap();
        opt.style_encoder.step(&ge).unwrap();
    }
    let adam = (cpu_seconds() - t0) / n as f64;
    let t0 = cpu_seconds();
    for _ in 0..n {
        ema::update(&models.nets.generator, &models.ema.generator, 0.999).unwrap();
        ema::update(&models.nets.mapping_network, &models.ema.mapping_network, 0.999).unwrap();
        ema::update(&models.nets.style_encoder, &models.ema.style_encoder, 0.999).unwrap();
    }
    let ema_s = (cpu_seconds() - t0) / n as f64;
    let params: i64 = [
        &models.nets.generator as &dyn Module,
        &models.nets.mapping_network,
        &models.nets.style_encoder,
        &models.discriminator,
    ]
    .iter()
    .map(|m| m.num_params())
    .sum();
    println!(
        "config {cfg:?} batch {batch}: {params} parameters; CPU s per iteration: step {step:.3}, of which Adam {adam:.3} ({:.0} %), EMA {ema_s:.3} ({:.0} %)",
        100.0 * adam / step,
        100.0 * ema_s / step
    );
}
