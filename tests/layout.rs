//! The full-size official networks: every tensor's name, shape and order, and the
//! parameter counts, equal the official state dicts (`official_256_layout.json`).

mod common;

use common::*;
use stargan::config::ModelConfig;
use stargan::model::{Discriminator, Fan, Init, Module, TranslationNets};
use tch::{Device, Kind};

fn check(label: &str, net: &str, module: &dyn Module, spec: &serde_json::Value) {
    let state = spec["state"].as_array().unwrap();
    let ours = module.named_tensors();
    let ours: Vec<(String, Vec<i64>, Kind)> =
        ours.iter().map(|t| (t.name.clone(), t.tensor.size(), t.tensor.kind())).collect();
    assert_eq!(ours.len(), state.len(), "{label}.{net}: tensor count");
    for (i, (entry, (name, shape, kind))) in state.iter().zip(&ours).enumerate() {
        let want_name = entry[0].as_str().unwrap();
        let want_shape: Vec<i64> = entry[1].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let want_kind = if entry[2] == "int64" { Kind::Int64 } else { Kind::Float };
        assert_eq!(name, want_name, "{label}.{net}: entry {i}");
        assert_eq!(shape, &want_shape, "{label}.{net}: {name}");
        assert_eq!(*kind, want_kind, "{label}.{net}: {name}");
    }
    assert_eq!(module.num_params(), spec["params"].as_i64().unwrap(), "{label}.{net}: parameter count");
}

#[test]
fn full_size_networks_match_the_official_layout() {
    let path = parity_dir().join("official_256_layout.json");
    let layout: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let init = Init::new(Device::Cpu, Kind::Float);
    for (label, cfg) in [("celeba_hq_256", ModelConfig::celeba_hq()), ("afhq_256", ModelConfig::afhq())] {
        let spec = &layout[label];
        let nets = TranslationNets::new(&init, &cfg);
        for (net, m) in nets.modules() {
            check(label, net, m, &spec[net]);
        }
        check(label, "discriminator", &Discriminator::new(&init, &cfg), &spec["discriminator"]);
        if spec.get("fan").is_some() {
            check(label, "fan", &Fan::new(&init), &spec["fan"]);
        }
    }
}
