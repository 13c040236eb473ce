//! `stargan train --nproc N`: starts N copies of the same command on this machine with
//! the environment torchrun would give them (RANK, WORLD_SIZE, LOCAL_RANK,
//! LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and waits for them. When one fails the
//! others are stopped; SIGINT/SIGTERM are passed on, so the run stops cleanly with a
//! checkpoint.

use std::ffi::OsString;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Set in the environment of the processes the launcher starts.
pub const LAUNCHED_ENV: &str = "STARGAN_LAUNCHED";

/// The command line without `--nproc N` / `--nproc=N`.
pub fn strip_nproc(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--nproc" {
            skip = true;
        } else if !s.starts_with("--nproc=") {
            out.push(a.clone());
        }
    }
    out
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we started (and have not reaped).
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Runs `args` (the program's own arguments, without `--nproc`) as `nproc` ranks and
/// waits for all of them.
pub fn launch(nproc: usize, args: &[OsString]) -> Result<()> {
    if nproc < 2 {
        bail!("--nproc must be at least 2 (1 is a plain run)");
    }
    let exe = std::env::current_exe().context("cannot find the stargan executable")?;
    let port = free_port()?;
    let mut children: Vec<Child> = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let child = Command::new(&exe)
            .args(&args[1..])
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env(LAUNCHED_ENV, "1")
            .spawn()
            .with_context(|| format!("cannot start rank {rank}"))?;
        children.push(child);
    }
    eprintln!("started {nproc} processes (ranks 0–{}), rendezvous at 127.0.0.1:{port}", nproc - 1);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handlers = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        handlers.push(signal_hook::flag::register(sig, stop.clone())?);
    }
    let result = supervise(&mut children, &stop);
    for h in handlers {
        signal_hook::low_level::unregister(h);
    }
    result
}

fn supervise(children: &mut [Child], stop: &AtomicBool) -> Result<()> {
    let mut status: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    let mut forwarded = false;
    let mut failed: Option<(usize, std::process::ExitStatus)> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) && !forwarded {
            for (c, s) in children.iter().zip(&status) {
                if s.is_none() {
                    signal(c, libc::SIGTERM);
                }
            }
            forwarded = true;
        }
        let mut newly_failed = false;
        for (rank, c) in children.iter_mut().enumerate() {
            if status[rank].is_none() {
                if let Some(s) = c.try_wait()? {
                    status[rank] = Some(s);
                    if !s.success() && failed.is_none() {
                        failed = Some((rank, s));
                        newly_failed = true;
                    }
                }
            }
        }
        if newly_failed {
            // The others cannot finish without it: stop them, and kill them if they have
            // not stopped within a grace period.
            for (other, s) in children.iter().zip(&status) {
                if s.is_none() {
                    signal(other, libc::SIGTERM);
                }
            }
            deadline = Some(Instant::now() + Duration::from_secs(30));
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            for (c, s) in children.iter().zip(&status) {
                if s.is_none() {
                    signal(c, libc::SIGKILL);
                }
            }
            deadline = None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some((rank, s)) = failed {
        bail!("rank {rank} failed ({s}); the other ranks were stopped");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nproc_is_removed_in_both_spellings() {
        let args: Vec<OsString> =
            ["stargan", "train", "--nproc", "2", "--data", "d", "--nproc=3"].iter().map(OsString::from).collect();
        let out: Vec<String> = strip_nproc(&args).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(out, ["stargan", "train", "--data", "d"]);
    }
}
