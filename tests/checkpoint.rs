//! Checkpoint import and I/O: official files in both serialisations, our safetensors
//! format (round trip, atomic write), and clean errors on malformed input.

mod common;

use common::*;
use stargan::checkpoint::native::{metadata, save_modules, write_atomic};
use stargan::checkpoint::{load_module, Checkpoint, CheckpointError, Format};
use stargan::config::ModelConfig;
use stargan::model::{Init, TranslationNets, GENERATOR, MAPPING_NETWORK, STYLE_ENCODER};
use tch::{Device, Kind, Tensor};

/// Every official `.ckpt` fixture (legacy and zip) imports to exactly the float32
/// rounding of the float64 init tensors of its configuration.
#[test]
fn official_checkpoints_import_exactly() {
    let dir = parity_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let fname = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = fname.strip_suffix(".ckpt") else { continue };
        let config_name = stem.split('.').next().unwrap();
        let ckpt = Checkpoint::open(&path).unwrap();
        let expected_format = if stem.contains("legacy") { Format::OfficialLegacy } else { Format::OfficialZip };
        assert_eq!(ckpt.format, expected_format, "{fname}");
        let init = fixture(config_name, "init");
        for (net, sd) in &ckpt.nets {
            for (key, t) in sd {
                let want = &init[&format!("{net}.{key}")];
                assert_eq!(t.kind(), Kind::Float, "{fname}: {net}.{key}");
                assert_eq!(t.size(), want.size(), "{fname}: {net}.{key}");
                let diff = max_abs_diff(t, &want.to_kind(Kind::Float));
                assert_eq!(diff, 0.0, "{fname}: {net}.{key} differs by {diff}");
            }
        }
        // The whole dict loads into the networks of the fixture's configuration.
        let cfg = model_config(config_name);
        let nets = TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg);
        for (net, m) in nets.modules() {
            load_module(m, net, ckpt.net(net).unwrap(), &ckpt.path, &cfg).unwrap();
        }
        // Inferred configuration equals the fixture's.
        let inferred = ckpt.config_or_inferred().unwrap();
        assert_eq!(inferred, cfg, "{fname}: inferred config");
        checked += 1;
    }
    assert!(checked >= 2, "expected legacy and zip .ckpt fixtures in {}", dir.display());
}

/// Loading for inference takes the checkpoint's tensors over (no copy) from official
/// files in both serialisations and from our own format: every tensor of the loaded
/// networks equals the file's, and nothing is left uninitialised.
#[test]
fn inference_loading_takes_every_tensor_exactly() {
    use stargan::checkpoint::Checkpoint;
    use stargan::infer::load::{load_model, ModelSource};
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(parity_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    // Ours: the legacy file's networks written back in our format.
    let legacy = afhq_ckpt_path();
    let config_name = legacy.file_name().unwrap().to_str().unwrap().split('.').next().unwrap().to_string();
    let cfg = model_config(&config_name);
    let nets = TranslationNets::new(&Init::new(Device::Cpu, Kind::Float), &cfg);
    let ckpt = Checkpoint::open(&legacy).unwrap();
    for (net, m) in nets.modules() {
        load_module(m, net, ckpt.net(net).unwrap(), &ckpt.path, &cfg).unwrap();
    }
    let ours = dir.path().join("ours.safetensors");
    let domains: Vec<String> = (0..cfg.num_domains).map(|i| format!("d{i}")).collect();
    save_modules(&ours, &nets.modules(), metadata(&cfg, &domains, &[])).unwrap();
    files.push(ours);
    assert!(files.len() >= 3);
    for path in files {
        let file = Checkpoint::open(&path).unwrap();
        let model = load_model(&ModelSource { checkpoint: path.clone(), ..Default::default() }, Device::Cpu).unwrap();
        for (net, m) in model.nets.modules() {
            let ema = format!("{net}_ema");
            let sd = file.net(if file.has_net(&ema) { &ema } else { net }).unwrap();
            let loaded = m.named_tensors();
            assert_eq!(loaded.len(), sd.len(), "{}: {net}", path.display());
            for t in loaded {
                let want = &sd.iter().find(|(k, _)| *k == t.name).unwrap().1;
                assert!(t.tensor.equal(want), "{}: {net}.{} differs from the file", path.display(), t.name);
                assert!(!t.tensor.requires_grad());
            }
        }
    }
}

fn afhq_ckpt_path() -> std::path::PathBuf {
    let dir = parity_dir();
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("legacy_nets_ema.ckpt"))
        .expect("a legacy .ckpt fixture")
}

#[test]
fn wrong_configuration_names_the_tensor_shapes_and_flag() {
    let path = afhq_ckpt_path();
    let config_name = path.file_name().unwrap().to_str().unwrap().split('.').next().unwrap().to_string();
    let cfg = model_config(&config_name);
    let ckpt = Checkpoint::open(&path).unwrap();
    let init = Init::new(Device::Cpu, Kind::Float);

    // More domains than the checkpoint has: the mapping network's heads are missing.
    let more = ModelConfig { num_domains: cfg.num_domains + 1, ..cfg.clone() };
    let nets = TranslationNets::new(&init, &more);
    let err = load_module(&nets.style_encoder, STYLE_ENCODER, ckpt.net(STYLE_ENCODER).unwrap(), &ckpt.path, &more)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--num-domains"), "{err}");
    let err =
        load_module(&nets.mapping_network, MAPPING_NETWORK, ckpt.net(MAPPING_NETWORK).unwrap(), &ckpt.path, &more)
            .unwrap_err()
            .to_string();
    assert!(err.contains("unshared") && err.contains("--num-domains"), "{err}");

    // The high-pass variant has one more encoder block: G has tensors that do not fit.
    let hpf = ModelConfig { w_hpf: 1.0, ..cfg.clone() };
    let nets = TranslationNets::new(&init, &hpf);
    let err = load_module(&nets.generator, GENERATOR, ckpt.net(GENERATOR).unwrap(), &ckpt.path, &hpf).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("--w-hpf") && msg.contains("generator."), "{msg}");

    // A wider first layer: the shape mismatch names both shapes.
    let wide = ModelConfig { dim_in: cfg.dim_in * 2, max_conv_dim: cfg.max_conv_dim * 2, ..cfg.clone() };
    let nets = TranslationNets::new(&init, &wide);
    match load_module(&nets.generator, GENERATOR, ckpt.net(GENERATOR).unwrap(), &ckpt.path, &wide) {
        Err(CheckpointError::ShapeMismatch { name, expected, found, .. }) => {
            assert_eq!(name, "from_rgb.weight");
            assert_eq!(expected[0], 2 * found[0]);
        }
        other => panic!("expected a shape mismatch, got {:?}", other.err()),
    }
}

#[test]
fn truncated_and_garbage_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for src in std::fs::read_dir(parity_dir()).unwrap().map(|e| e.unwrap().path()) {
        let name = src.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".ckpt") && !name.ends_with("init.safetensors") {
            continue;
        }
        let bytes = std::fs::read(&src).unwrap();
        // Cut at many points, including inside the header, the pickle and the storages.
        for frac in [0.001, 0.01, 0.1, 0.3, 0.5, 0.8, 0.95, 0.999] {
            let cut = ((bytes.len() as f64) * frac) as usize;
            let p = dir.path().join(format!("cut-{frac}-{name}"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(Checkpoint::open(&p).is_err(), "{name} cut at {cut} bytes opened without error");
        }
    }
    // Random bytes, an empty file, text, and a missing file.
    let mut state = 0x2545F4914F6CDD1Du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for (n, content) in [("noise.ckpt", noise.as_slice()), ("empty.ckpt", b"" as &[u8]), ("text.ckpt", b"hello")] {
        let p = dir.path().join(n);
        std::fs::write(&p, content).unwrap();
        let err = Checkpoint::open(&p).err().expect("garbage must not open");
        assert!(err.to_string().contains(n), "error names the file: {err}");
    }
    // Legacy magic followed by garbage.
    let mut fake = vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];
    fake.extend_from_slice(&noise[..64]);
    let p = dir.path().join("fake-legacy.ckpt");
    std::fs::write(&p, fake).unwrap();
    assert!(Checkpoint::open(&p).is_err());
    let err = Checkpoint::open(dir.path().join("does-not-exist.ckpt")).err().unwrap();
    assert!(matches!(err, CheckpointError::Io { .. }));
}

#[test]
fn native_format_round_trips_config_domains_and_values() {
    let cfg = model_config(&parity_configs()[0]);
    let init = Init::new(Device::Cpu, Kind::Float);
    let a = TranslationNets::new(&init, &cfg);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/model.safetensors");
    let domains: Vec<String> = (0..cfg.num_domains).map(|i| format!("d{i}")).collect();
    save_modules(&path, &a.modules(), metadata(&cfg, &domains, &[("note", "x".into())])).unwrap();

    let ckpt = Checkpoint::open(&path).unwrap();
    assert_eq!(ckpt.format, Format::Native);
    assert_eq!(ckpt.config.as_ref(), Some(&cfg));
    assert_eq!(ckpt.domains.as_ref(), Some(&domains));
    assert_eq!(ckpt.metadata["note"], "x");
    let b = TranslationNets::new(&init, &cfg);
    for (net, m) in b.modules() {
        load_module(m, net, ckpt.net(net).unwrap(), &ckpt.path, &cfg).unwrap();
    }
    for ((_, ma), (_, mb)) in a.modules().iter().zip(b.modules().iter()) {
        for (ta, tb) in ma.named_tensors().iter().zip(mb.named_tensors().iter()) {
            assert_eq!(ta.name, tb.name);
            assert_eq!(max_abs_diff(&ta.tensor, &tb.tensor), 0.0, "{}", ta.name);
        }
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn an_interrupted_write_leaves_the_previous_checkpoint_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let cfg = model_config(&parity_configs()[0]);
    let t = Tensor::arange(10, (Kind::Float, Device::Cpu));
    write_atomic(&path, &[("generator.x".into(), t.shallow_clone())], metadata(&cfg, &[], &[])).unwrap();
    let before = std::fs::read(&path).unwrap();

    // A write that fails before the rename (here: an unsupported tensor kind, detected
    // after serialisation starts) must leave the file untouched.
    let bad = Tensor::zeros([2], (Kind::ComplexFloat, Device::Cpu));
    assert!(write_atomic(&path, &[("generator.x".into(), bad)], metadata(&cfg, &[], &[])).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A crash between writing the temporary file and renaming it leaves a stray
    // temporary file and the previous checkpoint, which still opens.
    std::fs::write(dir.path().join(".ckpt.safetensors.tmp-1-0"), &before[..before.len() / 2]).unwrap();
    let ckpt = Checkpoint::open(&path).unwrap();
    assert_eq!(max_abs_diff(&ckpt.net("generator").unwrap()[0].1, &t), 0.0);

    // The next run removes the temporary files of processes that are gone, and only those:
    // a live process (pid 1 here, or this one) may be in the middle of its own write.
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let stray = |pid: u32| dir.path().join(format!(".ckpt.safetensors.tmp-{pid}-0"));
    for pid in [dead, std::process::id()] {
        std::fs::write(stray(pid), b"partial").unwrap();
    }
    stargan::checkpoint::native::remove_stale_temp_files(dir.path());
    assert!(!stray(dead).exists(), "the dead writer's file is removed");
    assert!(stray(1).exists() && stray(std::process::id()).exists(), "live writers' files are kept");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// The released CelebA-HQ file predates the `hpf.filter` buffer: a generator state dict
/// without it loads, with the buffer recreated from w_hpf.
#[test]
fn missing_hpf_filter_is_recreated() {
    for name in parity_configs() {
        let cfg = model_config(&name);
        if !cfg.uses_masks() {
            continue;
        }
        let ckpt = Checkpoint::open(parity_dir().join(format!("{name}.init.safetensors"))).unwrap();
        let full = ckpt.net(GENERATOR).unwrap();
        let without: Vec<(String, Tensor)> =
            full.iter().filter(|(k, _)| k != "hpf.filter").map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
        assert_eq!(without.len() + 1, full.len());
        let nets = TranslationNets::new(&Init::new(Device::Cpu, Kind::Double), &cfg);
        // Scramble the buffer first so the test sees it being set.
        tch::no_grad(|| {
            let _ = nets.generator.hpf.as_ref().unwrap().filter.shallow_clone().fill_(7.0);
        });
        load_module(&nets.generator, GENERATOR, &without, "test", &cfg).unwrap();
        let filter = &nets.generator.hpf.as_ref().unwrap().filter;
        let want = full.iter().find(|(k, _)| k == "hpf.filter").unwrap().1.to_kind(Kind::Double);
        assert_eq!(max_abs_diff(filter, &want), 0.0);
    }
}

/// Entries a model does not use (the discriminator, the FAN of an AFHQ file) are skipped
/// when translation networks load, and `inspect` lists every network.
#[test]
fn unused_entries_are_skipped_and_inspect_reports_them() {
    for name in parity_configs() {
        let path = parity_dir().join(format!("{name}.init.safetensors"));
        let m = stargan::infer::load::load_model(
            &stargan::infer::load::ModelSource { checkpoint: path.clone(), ..Default::default() },
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(m.cfg, model_config(&name));
        assert_eq!(m.fan.is_some(), m.cfg.uses_masks(), "the FAN comes from the checkpoint's own `fan` entry");
        let out = stargan_bin().arg("inspect").arg(&path).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for net in ["generator", "mapping_network", "style_encoder", "discriminator"] {
            assert!(text.contains(net), "{text}");
        }
        assert!(text.contains("config"), "{text}");
    }
    let legacy = afhq_ckpt_path();
    let out = stargan_bin().arg("inspect").arg(&legacy).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("legacy serialisation") && text.contains("inferred"), "{text}");
}

/// A quick property test beside the fuzzing (docs/reliability.md): the real checkpoints of
/// the fixtures with bytes flipped, cut short or padded are refused with an error or read
/// (a flipped byte inside tensor data is still a valid file), never a panic.
#[test]
fn mutated_checkpoints_are_errors_not_panics() {
    use rand::{Rng, SeedableRng};
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(parity_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".ckpt") || n.ends_with(".init.safetensors")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "legacy, zip and safetensors fixtures: {files:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (mut cases, mut errors) = (0, 0);
    for f in &files {
        let original = std::fs::read(f).unwrap();
        for round in 0..60 {
            let mut bytes = original.clone();
            match round % 3 {
                0 => {
                    // Flip bytes, mostly near the start where headers and pickles live.
                    for _ in 0..rng.random_range(1..16) {
                        let limit = if rng.random_bool(0.8) { bytes.len().min(4096) } else { bytes.len() };
                        let i = rng.random_range(0..limit);
                        bytes[i] ^= rng.random_range(1..=255u8);
                    }
                }
                1 => bytes.truncate(rng.random_range(0..bytes.len())),
                _ => {
                    let at = rng.random_range(0..bytes.len().min(4096));
                    let junk: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                    bytes.splice(at..at, junk);
                }
            }
            let path = dir.path().join(format!(
                "m{cases}{}",
                if f.to_string_lossy().ends_with(".ckpt") { ".ckpt" } else { ".safetensors" }
            ));
            std::fs::write(&path, &bytes).unwrap();
            // Errors as their messages: the test only counts them.
            let outcome = std::panic::catch_unwind(|| match Checkpoint::open(&path) {
                Ok(c) => c.config_or_inferred().map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            });
            let result =
                outcome.unwrap_or_else(|_| panic!("a mutated {} made the reader panic (round {round})", f.display()));
            if result.is_err() {
                errors += 1;
            }
            let _ = std::fs::remove_file(&path);
            cases += 1;
        }
    }
    assert_eq!(cases, files.len() * 60);
    assert!(errors * 2 > cases, "most mutations are refused ({errors} of {cases})");
}
