//! Training-step parity, float64, for every configuration in the fixtures directory:
//! two official iterations reproduce every logged loss, λ_ds, and a summary (sum, sum of
//! squares, 16 samples) of every parameter of the online and EMA networks.

mod common;

use common::*;
use stargan::checkpoint::{load_module, Checkpoint};
use stargan::model::{Init, Module, DISCRIMINATOR, FAN};
use stargan::train::optim::{AdamKernel, Optimizers};
use stargan::train::step::{train_step, Batch};
use stargan::train::{Models, TrainConfig};
use tch::{Device, Kind, Tensor};

const LOSS_RTOL: f64 = 1e-9;
const PARAM_TOL: f64 = 1e-8;

fn train_config(name: &str) -> TrainConfig {
    let c = &expected_json(name)["config"];
    let f = |k: &str| c[k].as_f64().unwrap_or_else(|| panic!("{name}: config.{k}"));
    TrainConfig {
        lambda_reg: f("lambda_reg"),
        lambda_cyc: f("lambda_cyc"),
        lambda_sty: f("lambda_sty"),
        lambda_ds: f("lambda_ds"),
        ds_iter: c["ds_iter"].as_i64().unwrap(),
        batch_size: c["batch_size"].as_i64().unwrap(),
        lr: f("lr"),
        f_lr: f("f_lr"),
        beta1: f("beta1"),
        beta2: f("beta2"),
        weight_decay: f("weight_decay"),
        ema_beta: f("ema_beta"),
        ..TrainConfig::default()
    }
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * (1.0 + want.abs())
}

/// Compares every parameter summary in `expected` (keys `<net>.<param>`) with `modules`.
fn check_summaries(
    label: &str,
    modules: &[(&str, &dyn Module)],
    expected: &serde_json::Map<String, serde_json::Value>,
) -> usize {
    let mut ours = std::collections::HashMap::new();
    for (net, m) in modules {
        for t in m.named_tensors() {
            ours.insert(format!("{net}.{}", t.name), t.tensor);
        }
    }
    let mut worst = (0.0f64, String::new());
    for (key, summary) in expected {
        let t = ours.get(key).unwrap_or_else(|| panic!("{label}: no tensor {key}"));
        let shape: Vec<i64> = summary["shape"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(t.size(), shape, "{label}: {key} shape");
        let flat = t.to_kind(Kind::Double).reshape([-1]);
        let sum = flat.sum(Kind::Double).double_value(&[]);
        let sumsq = flat.square().sum(Kind::Double).double_value(&[]);
        let mut checks =
            vec![("sum", sum, summary["sum"].as_f64().unwrap()), ("sumsq", sumsq, summary["sumsq"].as_f64().unwrap())];
        let idx = summary["sample_index"].as_array().unwrap();
        for (i, v) in idx.iter().zip(summary["samples"].as_array().unwrap()) {
            checks.push(("sample", flat.double_value(&[i.as_i64().unwrap()]), v.as_f64().unwrap()));
        }
        for (what, got, want) in checks {
            let err = (got - want).abs() / (1.0 + want.abs());
            if err > worst.0 {
                worst = (err, format!("{key} {what}"));
            }
            assert!(close(got, want, PARAM_TOL), "{label}: {key} {what}: got {got:.15e}, expected {want:.15e}");
        }
    }
    eprintln!("{label}: {} tensors, worst scaled error {:.2e} ({})", expected.len(), worst.0, worst.1);
    expected.len()
}

#[test]
fn two_official_iterations_are_reproduced() {
    // The fused Adam kernel (the default) and the per-tensor reference both reproduce them.
    for kernel in [AdamKernel::Fused, AdamKernel::PerTensor] {
        two_official_iterations(kernel);
    }
}

fn two_official_iterations(kernel: AdamKernel) {
    for name in parity_configs() {
        let cfg = model_config(&name);
        let tcfg = train_config(&name);
        let init = Init::new(Device::Cpu, Kind::Double);
        let models = Models::new(&init, &cfg);
        let ckpt = Checkpoint::open(parity_dir().join(format!("{name}.init.safetensors"))).unwrap();
        for (net, m) in models.nets.modules() {
            load_module(m, net, ckpt.net(net).unwrap(), &ckpt.path, &cfg).unwrap();
        }
        load_module(&models.discriminator, DISCRIMINATOR, ckpt.net(DISCRIMINATOR).unwrap(), &ckpt.path, &cfg).unwrap();
        if let Some(fan) = &models.fan {
            load_module(fan, FAN, ckpt.net(FAN).unwrap(), &ckpt.path, &cfg).unwrap();
        }
        models.reset_ema();
        let mut opt = Optimizers::new(&models, &tcfg);
        opt.set_kernel(kernel);
        let mut lambda_ds = tcfg.lambda_ds;

        let inputs = fixture(&name, "train");
        let expected = expected_json(&name);
        for (it, exp) in expected["iterations"].as_array().unwrap().iter().enumerate() {
            let get = |k: &str| -> Tensor { inputs[&format!("iter{it}.{k}")].shallow_clone() };
            let batch = Batch {
                x_real: get("x_real"),
                y_org: get("y_org"),
                x_ref: get("x_ref"),
                x_ref2: get("x_ref2"),
                y_trg: get("y_trg"),
                z_trg: get("z_trg"),
                z_trg2: get("z_trg2"),
            };
            let losses = train_step(&models, &mut opt, &tcfg, &mut lambda_ds, &batch, None).unwrap();
            assert!(
                close(losses.lambda_ds_used, exp["lambda_ds_used"].as_f64().unwrap(), 1e-12),
                "{name}: lambda_ds_used"
            );
            assert!(close(lambda_ds, exp["lambda_ds_after"].as_f64().unwrap(), 1e-12), "{name}: lambda_ds_after");
            let values = losses.values();
            assert_eq!(values.len(), 14);
            for (term, got) in values {
                let want = exp[term].as_f64().unwrap_or_else(|| panic!("{name}: expected.{term} missing"));
                let rel = (got - want).abs() / want.abs().max(1e-300);
                assert!(
                    rel <= LOSS_RTOL,
                    "{name} iter {it}: {term} = {got:.15e}, expected {want:.15e} (relative {rel:.2e})"
                );
            }
            let mut online = models.nets.modules();
            online.push((DISCRIMINATOR, &models.discriminator));
            let n = check_summaries(&format!("{name} iter {it} online"), &online, exp["params"].as_object().unwrap());
            assert!(n > 0);
            check_summaries(
                &format!("{name} iter {it} ema"),
                &models.ema.modules(),
                exp["params_ema"].as_object().unwrap(),
            );
        }
    }
}
