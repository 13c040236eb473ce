//! The GPU device script (scripts/device-check.sh) in its CPU smoke mode: every step runs
//! at a tiny size and the one JSON it writes has every figure.

mod common;

use std::path::PathBuf;

use common::*;

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
