//! The GPU device scripts in their CPU smoke mode: scripts/device-check.sh runs every step
//! at a tiny size and the one JSON it writes has every figure; scripts/device-train.sh trains
//! its candidate configurations side by side, stops them at the budget and exports them.

mod common;

use std::path::PathBuf;

use common::*;
use stargan::infer::load::{load_model, ModelSource};

#[test]
fn device_script_smoke_mode_passes_and_writes_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("check");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_stargan"));
    // The test binaries of this build live beside the binary, in deps/.
    let tests = bin.parent().unwrap().join("deps");
    let o = std::process::Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/device-check.sh"))
        .arg("--smoke")
        .arg(&out)
        .env("BIN", &bin)
        .env("TEST_DIR", &tests)
        .env("STARGAN_CACHE", test_cache())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("device-check.json")).unwrap()).unwrap();
    assert_eq!(report["failed"], serde_json::json!([]), "{report:#}");
    let steps = &report["steps"];
    for (step, key) in [
        ("train_afhq_fp32", "s_per_iter"),
        ("train_afhq_bf16", "s_per_iter"),
        ("infer_afhq_batch1", "latent_ms"),
        ("infer_afhq_batch2", "reference_ms"),
        ("devices_afhq", "latent_fp32"),
        ("allreduce_afhq", "ms_per_iteration"),
    ] {
        let v = steps[step]["result"][key].as_f64().unwrap_or_else(|| panic!("{step}.{key} missing: {report:#}"));
        assert!(v.is_finite() && v >= 0.0, "{step}.{key} = {v}");
    }
    assert_eq!(steps["train_afhq_bf16"]["result"]["precision"], "bf16");
    // CPU against CPU: identical outputs.
    assert_eq!(steps["devices_afhq"]["result"]["latent_fp32"].as_f64(), Some(0.0));
    assert_eq!(steps["cuda_parity_tests"]["rc"], 0, "the CUDA tests run (and find no GPU)");
}

#[test]
fn device_train_script_smoke_mode_trains_stops_and_exports_every_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // The bundled examples stand in for the emoji set: four domains, train and val alike.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for split in ["train", "val"] {
        std::os::unix::fs::symlink(example_emoji(), data.join(split)).unwrap();
    }
    let out = dir.path().join("out");
    let o = std::process::Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/device-train.sh"))
        .arg("--smoke")
        .arg(&out)
        .env("BIN", env!("CARGO_BIN_EXE_stargan"))
        .env("DATA", &data)
        .env("BUDGET", "12")
        .env("STARGAN_CACHE", test_cache())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("device-train.json")).unwrap()).unwrap();
    assert_eq!(report["failed"], serde_json::json!([]), "{report:#}");
    let mut widths = Vec::new();
    for name in ["a8", "b8"] {
        let c = &report["configs"][name];
        let (planned, done) = (c["iterations_planned"].as_i64().unwrap(), c["iterations_done"].as_i64().unwrap());
        // Smoke mode plans far more than the budget allows: the budget stops the run cleanly.
        assert!(done >= 1 && done < planned, "{name}: {done} of {planned} iterations: {report:#}");
        assert!(c["s_per_iter_together"].as_f64().unwrap() > 0.0);
        let model = load_model(
            &ModelSource { checkpoint: out.join(c["model"].as_str().unwrap()), ..Default::default() },
            tch::Device::Cpu,
        )
        .unwrap();
        assert_eq!(model.domains, ["fluent3d", "noto", "openmoji", "twemoji"]);
        widths.push(model.cfg.dim_in);
    }
    assert_eq!(widths, [8, 16], "each configuration trained with its own widths");
    // The logs come back in one archive, the run's stop among them.
    let logs = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(out.join("logs.tar.gz"))
        .arg("a8.train.log")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("as asked; checkpoint"),
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );
}
