//! Data-parallel training with real processes on c10d (Gloo over 127.0.0.1), in float64:
//! two processes give the parameters of one with the same global batch, the ranks agree
//! bit for bit, a run resumes across world sizes, torchrun can launch it, a rank that
//! dies stops the others with a clear error, and stop requests stop every rank cleanly.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn data() -> PathBuf {
    data_dir().join("representative/afhq/ref")
}

/// `stargan train` on the tiny model in float64, saving only at the end.
fn train(out: &Path, total: i64, extra: &[&str]) -> Command {
    let mut c = stargan_bin();
    c.args(["train", "--data", data().to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(TINY_MODEL_ARGS)
        .args(["--batch-size", "4", "--device", "cpu"])
        .args(["--precision", "fp64", "--sample-every", "0", "--no-progress", "--seed", "9"])
        .args(["--total-iters", &total.to_string(), "--save-every", "2", "--keep-last", "10"])
        .args(extra);
    c
}

fn ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Largest difference between two checkpoints' tensors, relative to max(1, |value|).
fn max_diff(a: &Path, b: &Path) -> f64 {
    let (a, b) = (read_safetensors(a), read_safetensors(b));
    assert_eq!(a.len(), b.len(), "same tensors");
    let mut worst = 0.0f64;
    for (k, t) in &a {
        let u = &b[k];
        let (t, u) = (t.to_kind(tch::Kind::Double), u.to_kind(tch::Kind::Double));
        let scale = t.abs().max().double_value(&[]).max(1.0);
        worst = worst.max((&t - &u).abs().max().double_value(&[]) / scale);
    }
    worst
}

/// `stargan train --nproc 2` for as long as it is let run, stdout dropped.
fn launch_two(out: &Path, stderr: Stdio) -> std::process::Child {
    train(out, 100_000, &["--nproc", "2", "--print-every", "1"]).stdout(Stdio::null()).stderr(stderr).spawn().unwrap()
}

/// One rank of two, started as the `--nproc` launcher would start it, the launcher being
/// the process `launcher`; the ranks meet through the file `store`.
fn rank_of_two(out: &Path, rank: usize, store: &Path, launcher: u32) -> Command {
    let mut c = train(out, 100_000, &["--print-every", "1", "--dist-timeout", "600"]);
    c.env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", "2")
        .env("LOCAL_WORLD_SIZE", "2")
        .env("STARGAN_DIST_FILE", store)
        .env("STARGAN_LAUNCHED", "1")
        .env(stargan::train::stop::LAUNCHER_PID_ENV, launcher.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Waits until `path` exists.
fn wait_for_file(path: &Path, what: &str) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    err
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

#[test]
fn two_processes_train_like_one_with_the_same_global_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    ok(&mut train(&one, 3, &[]));
    ok(&mut train(&two, 3, &["--nproc", "2", "--save-all-ranks", "--print-every", "1"]));
    let ckpt = "checkpoints/000003.safetensors";
    let d = max_diff(&one.join(ckpt), &two.join(ckpt));
    eprintln!("one process vs two: largest relative difference {d:.2e}");
    assert!(d < 1e-10, "{d:e}");
    // Both ranks hold exactly the same networks, EMA and Adam state.
    assert_eq!(max_diff(&two.join("rank0.safetensors"), &two.join("rank1.safetensors")), 0.0);
    // Only rank 0 writes the run's files.
    let log = std::fs::read_to_string(two.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3, "one log line per iteration, from rank 0 only");
}

#[test]
fn a_run_resumes_across_world_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    ok(&mut train(&straight, 4, &[]));
    // Two processes, then one.
    let a = dir.path().join("two-then-one");
    ok(&mut train(&a, 2, &["--nproc", "2"]));
    ok(&mut train(&a, 4, &["--resume"]));
    // One process, then two.
    let b = dir.path().join("one-then-two");
    ok(&mut train(&b, 2, &[]));
    ok(&mut train(&b, 4, &["--resume", "--nproc", "2"]));
    let ckpt = "checkpoints/000004.safetensors";
    for run in [&a, &b] {
        let d = max_diff(&straight.join(ckpt), &run.join(ckpt));
        assert!(d < 1e-10, "{}: {d:e}", run.display());
    }
}

#[test]
fn torchrun_launches_it() {
    let torchrun = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/torchrun");
    let torchrun = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/torchrun")).unwrap_or(torchrun);
    assert!(torchrun.exists(), "{} (installed with torch by the Makefile)", torchrun.display());
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("torchrun"));
    ok(&mut train(&one, 2, &[]));
    let bin = env!("CARGO_BIN_EXE_stargan");
    let mut c = Command::new(&torchrun);
    c.env("STARGAN_CACHE", test_cache()).args([
        "--nproc-per-node",
        "2",
        "--master-port",
        &free_port().to_string(),
        "--no-python",
        bin,
    ]);
    let inner = train(&two, 2, &[]);
    c.args(inner.get_args());
    ok(&mut c);
    let ckpt = "checkpoints/000002.safetensors";
    assert!(max_diff(&one.join(ckpt), &two.join(ckpt)) < 1e-10);
}

#[test]
fn a_dead_rank_stops_the_other_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let port = free_port().to_string();
    let rank = |r: &str| {
        let mut c = train(&out, 100_000, &["--dist-timeout", "60", "--print-every", "1"]);
        c.envs([("RANK", r), ("LOCAL_RANK", r), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1")])
            .env("MASTER_PORT", &port)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let mut r0 = rank("0");
    let mut r1 = rank("1");
    let start = Instant::now();
    while std::fs::read_to_string(out.join("log.jsonl")).map(|s| s.lines().count()).unwrap_or(0) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "the two ranks did not start training");
        std::thread::sleep(Duration::from_millis(50));
    }
    r1.kill().unwrap();
    r1.wait().unwrap();
    let killed = Instant::now();
    let status = loop {
        if let Some(s) = r0.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(90) {
            let _ = r0.kill();
            panic!("rank 0 still runs 90 s after rank 1 died");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(r0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "rank 0 must fail: {err}");
    assert!(err.contains("another process probably stopped or crashed"), "{err}");
    eprintln!("rank 0 stopped {:.1} s after rank 1 died", killed.elapsed().as_secs_f64());
}

#[test]
fn channels_last_training_gives_the_same_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, last) = (dir.path().join("plain"), dir.path().join("channels-last"));
    ok(&mut train(&plain, 2, &["--channels-last", "off"]));
    ok(&mut train(&last, 2, &["--channels-last", "on"]));
    let ckpt = "checkpoints/000002.safetensors";
    let d = max_diff(&plain.join(ckpt), &last.join(ckpt));
    assert!(d < 1e-10, "{d:e}");
}

#[test]
fn ctrl_c_on_the_launcher_stops_every_rank_cleanly_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut launcher = launch_two(&out, Stdio::piped());
    let start = Instant::now();
    while std::fs::read_to_string(out.join("log.jsonl")).map(|s| s.lines().count()).unwrap_or(0) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "the ranks did not start training");
        std::thread::sleep(Duration::from_millis(50));
    }
    // As a terminal's Ctrl-C would reach the launcher (the ranks have their own group).
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(launcher.id() as i32, libc::SIGINT) };
    let status = launcher.wait().unwrap();
    let err = stderr_of(&mut launcher);
    assert!(status.success(), "a clean stop: {err}");
    assert!(err.contains("stopped at iteration"), "{err}");
    // The newest checkpoint is the step every rank stopped after (the last logged one).
    let newest = stargan::train::checkpoint::list(&out.join("checkpoints")).last().unwrap().0;
    let logged = std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().count() as i64;
    assert_eq!(newest, logged);
}

#[test]
fn a_stop_request_while_the_ranks_start_stops_them_cleanly_before_their_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut launcher = launch_two(&out, Stdio::piped());
    let mut err = std::io::BufReader::new(launcher.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("started 2 processes") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0, "the launcher ended early");
    }
    // The ranks were only just spawned: they are loading libtorch, far from their first step.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(launcher.id() as i32, libc::SIGINT) };
    let status = launcher.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "a clean stop, not ranks killed by the signal: {rest}");
    assert!(rest.contains("stopped as asked while setting up, at iteration 0"), "{rest}");
    assert!(!rest.contains("error"), "{rest}");
    assert!(stargan::train::checkpoint::list(&out.join("checkpoints")).is_empty());
    let logged = std::fs::read_to_string(out.join("log.jsonl")).map(|s| s.lines().count()).unwrap_or(0);
    assert_eq!(logged, 0, "no step ran");
}

#[test]
fn a_stop_request_while_a_rank_waits_for_the_others_stops_them_all_before_their_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let (out, store) = (dir.path().join("run"), dir.path().join("store"));
    let us = std::process::id();
    let mut first = rank_of_two(&out, 0, &store, us).spawn().unwrap();
    // The store appears when rank 0 starts waiting for rank 1: its handlers are in place.
    wait_for_file(&store, "rank 0 did not reach the meeting");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_secs(1));
    if first.try_wait().unwrap().is_some() {
        panic!("a rank with its launcher alive waits for the others: {}", stderr_of(&mut first));
    }
    // Rank 1 was not asked; it learns of the request from rank 0 and stops too.
    let second = rank_of_two(&out, 1, &store, us).output().unwrap();
    let status = first.wait().unwrap();
    let err = stderr_of(&mut first);
    assert!(status.success(), "{err}");
    assert!(err.contains("stopped as asked while setting up, at iteration 0"), "{err}");
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(stargan::train::checkpoint::list(&out.join("checkpoints")).is_empty());
    let logged = std::fs::read_to_string(out.join("log.jsonl")).map(|s| s.lines().count()).unwrap_or(0);
    assert_eq!(logged, 0, "no step ran");
}

#[test]
fn a_rank_whose_launcher_is_gone_ends_at_a_stop_request_instead_of_waiting_for_the_others() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let (out, store) = (dir.path().join("run"), dir.path().join("store"));
    // A launcher that has died: the rank's parent is no longer that process.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let mut rank = rank_of_two(&out, 0, &store, gone.id()).spawn().unwrap();
    wait_for_file(&store, "the rank did not reach the meeting");
    let start = Instant::now();
    // As PR_SET_PDEATHSIG delivers it. Rank 1 never comes: without this rule the rank
    // would wait out --dist-timeout (600 s).
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(rank.id() as i32, libc::SIGTERM) };
    while rank.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            rank.kill().unwrap();
            panic!("the orphaned rank went on waiting");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rank.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert!(stargan::train::checkpoint::list(&out.join("checkpoints")).is_empty());
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

#[test]
fn ranks_whose_launcher_dies_stop_cleanly_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut launcher = launch_two(&out, Stdio::null());
    let start = Instant::now();
    while std::fs::read_to_string(out.join("log.jsonl")).map(|s| s.lines().count()).unwrap_or(0) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "the ranks did not start training");
        std::thread::sleep(Duration::from_millis(50));
    }
    let needle = out.to_str().unwrap();
    assert_eq!(processes_mentioning(needle).len(), 3, "the launcher and two ranks");
    // SIGKILL: the launcher cannot pass anything on; the kernel sends the ranks SIGTERM.
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    while !processes_mentioning(needle).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(180), "ranks outlived their launcher");
        std::thread::sleep(Duration::from_millis(50));
    }
    let newest = stargan::train::checkpoint::list(&out.join("checkpoints")).last().unwrap().0;
    let logged = std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().count() as i64;
    assert_eq!(newest, logged, "they agreed on a step, saved it, and exited");
}
