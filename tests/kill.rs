//! Kill anywhere: a real `stargan train` saving every iteration is SIGKILLed at random
//! moments and while it writes a checkpoint, then resumed with the same command, again
//! and again; every resume succeeds and the final parameters equal those of an
//! uninterrupted run. And a full disk (a file-size limit in the child) stops the run
//! with the file and the cause, leaving the previous checkpoint loadable.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use stargan::checkpoint::Checkpoint;

const TOTAL: i64 = 30;

fn train(out: &Path, total: i64, extra: &[&str]) -> Command {
    let data = data_dir().join("representative/afhq/ref");
    let mut c = stargan_bin();
    c.args(["train", "--resume", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--img-size", "32", "--dim-in", "32", "--max-conv-dim", "64", "--latent-dim", "8"])
        .args(["--style-dim", "16", "--hidden-dim", "32", "--batch-size", "2", "--device", "cpu", "--threads", "1"])
        .args(["--keep-last", "2", "--no-progress", "--seed", "4"])
        .args(["--total-iters", &total.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
        .collect()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigkill_anywhere_then_resume_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let every_step = ["--save-every", "1", "--sample-every", "0"];
    let o = train(&straight, TOTAL, &every_step).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let run = dir.path().join("killed");
    let ckpts = run.join("checkpoints");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut during_writes, mut attempts) = (0, 0, 0);
    loop {
        attempts += 1;
        assert!(attempts < 200, "the run never finished");
        let mut child = train(&run, TOTAL, &every_step).spawn().unwrap();
        // The first kill lands before any checkpoint exists; after ten, it may finish.
        let target_write = kills % 2 == 1 && kills < 30;
        let deadline = Instant::now() + Duration::from_millis(rng.random_range(200..2500));
        let mut killed = false;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(status.success(), "a resume failed: {err}");
                break;
            }
            let writing = !temp_files(&ckpts).is_empty();
            if (target_write && writing)
                || (!target_write && Instant::now() > deadline)
                || (kills < 10 && kills == 0 && Instant::now() > deadline)
            {
                kill(&mut child);
                killed = true;
                kills += 1;
                // A temporary file left behind means the kill hit a checkpoint write.
                if !temp_files(&ckpts).is_empty() {
                    during_writes += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if !killed && kills >= 10 {
            break;
        }
    }
    eprintln!("{kills} kills, {during_writes} during a checkpoint write, {attempts} starts");
    assert!(kills >= 10);
    assert!(during_writes >= 1, "no kill landed inside a checkpoint write");
    let name = format!("checkpoints/{TOTAL:06}.safetensors");
    let (a, b) = (read_safetensors(&straight.join(&name)), read_safetensors(&run.join(&name)));
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert!(t.equal(&b[k]), "{k} differs from the uninterrupted run");
    }
    assert!(temp_files(&ckpts).is_empty(), "temporary files left: {:?}", temp_files(&ckpts));
}

/// `stargan train` with writes limited to files of `max_bytes` (a full disk, as far as
/// the process can tell: writes beyond it fail with EFBIG instead of killing it).
fn with_file_size_limit(mut c: Command, max_bytes: u64) -> Command {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: max_bytes, rlim_max: max_bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    c
}

#[test]
fn a_full_disk_stops_the_run_with_the_file_and_the_cause_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = train(&run, 2, &["--save-every", "2", "--sample-every", "0"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let good = run.join("checkpoints/000002.safetensors");
    let before = std::fs::read(&good).unwrap();
    // Checkpoints no longer fit (they are megabytes); logs and config do.
    let o = with_file_size_limit(train(&run, 4, &["--save-every", "2", "--sample-every", "0"]), 256 * 1024)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("cannot write") && err.contains("000004.safetensors") && err.contains("File too large"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(&good).unwrap(), before, "the last checkpoint is untouched");
    assert!(Checkpoint::open(&good).is_ok());
    assert!(!run.join("checkpoints/000004.safetensors").exists());
    assert!(temp_files(&run.join("checkpoints")).is_empty(), "no partial file left");
    // Sample grids that do not fit: the same, for the image.
    let o = with_file_size_limit(
        train(&run, 4, &["--save-every", "2", "--sample-every", "3", "--sample-size", "3"]),
        4 * 1024,
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("cannot write") && err.contains("samples/000003_"), "{err}");
    assert!(temp_files(&run.join("samples")).is_empty(), "no partial image left");
    // With space again, the run continues from its last checkpoint.
    let o = train(&run, 4, &["--save-every", "2", "--sample-every", "0"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("checkpoints/000004.safetensors").exists());
}
