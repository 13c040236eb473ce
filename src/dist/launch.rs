//! `stargan train --nproc N`: starts N copies of the same command on this machine with
//! the environment torchrun would give them (RANK, WORLD_SIZE, LOCAL_RANK,
//! LOCAL_WORLD_SIZE) and waits for them.
//!
//! - The processes meet through a file store in a private temporary folder: nothing
//!   listens on the network, and no port can be taken in between.
//! - They run in their own process group, so the terminal's Ctrl-C reaches only this
//!   launcher, which passes SIGTERM on once: the run stops cleanly, with a checkpoint,
//!   however long the step, evaluation or save in progress takes; during the ranks'
//!   start-up it stops them cleanly before their first step. A second Ctrl-C kills
//!   them. SIGHUP (a closed terminal) is a stop request too.
//! - When one fails the others are stopped (SIGTERM, then SIGKILL after a grace period).
//! - Should the launcher itself die, the kernel sends its ranks SIGTERM
//!   (`PR_SET_PDEATHSIG`): no rank trains on unsupervised. Those that train stop cleanly,
//!   with a checkpoint; one still setting up ends at once (it may be waiting for a rank
//!   that will never come; see `train::stop`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Set in the environment of the processes the launcher starts.
pub const LAUNCHED_ENV: &str = "STARGAN_LAUNCHED";

/// How long stopped processes get before they are killed.
const GRACE: Duration = Duration::from_secs(30);

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

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we started and have not reaped.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// A folder only this user can enter, removed when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("stargan-rendezvous-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create the rendezvous folder {}", dir.display()))?;
        Ok(PrivateDir(dir))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The processes of a run: stopped and reaped whatever happens to the launcher.
struct Ranks {
    children: Vec<Child>,
    exited: Vec<Option<std::process::ExitStatus>>,
}

impl Ranks {
    fn signal_running(&self, sig: i32) {
        for (c, s) in self.children.iter().zip(&self.exited) {
            if s.is_none() {
                signal(c, sig);
            }
        }
    }
}

impl Drop for Ranks {
    fn drop(&mut self) {
        if self.exited.iter().any(Option::is_none) {
            self.signal_running(libc::SIGKILL);
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// Runs `args` (the program's own arguments, without `--nproc`) as `nproc` ranks and
/// waits for all of them.
pub fn launch(nproc: usize, args: &[OsString]) -> Result<()> {
    if nproc < 2 {
        bail!("--nproc must be at least 2 (1 is a plain run)");
    }
    let exe = std::env::current_exe().context("cannot find the stargan executable")?;
    // Signals first: a Ctrl-C while the ranks start must not leave them running.
    let signals = Arc::new(AtomicUsize::new(0));
    let mut handlers = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        let n = signals.clone();
        // SAFETY: the handler only increments an atomic.
        handlers.push(unsafe {
            signal_hook::low_level::register(sig, move || {
                n.fetch_add(1, Ordering::SeqCst);
            })
        }?);
    }
    let result = (|| {
        let dir = PrivateDir::new()?;
        let store = dir.0.join("store");
        let mut ranks = Ranks { children: Vec::with_capacity(nproc), exited: vec![None; nproc] };
        // SAFETY: getpid is async-signal-safe.
        let launcher = unsafe { libc::getpid() };
        for rank in 0..nproc {
            let mut command = Command::new(&exe);
            // SAFETY: between fork and exec the closure calls only prctl, the sigset
            // functions, sigprocmask and getppid, which are async-signal-safe, and allocates
            // nothing.
            unsafe {
                command.pre_exec(move || {
                    // A stop request while the rank starts (loading libtorch, meeting the
                    // others, reading its checkpoint) stays pending until the rank's stop
                    // handlers are in place (`train::stop::StopRequests::install` unblocks it): it is then a
                    // clean stop, not death by the signal.
                    let mut stops: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut stops);
                    libc::sigaddset(&mut stops, libc::SIGINT);
                    libc::sigaddset(&mut stops, libc::SIGTERM);
                    if libc::sigprocmask(libc::SIG_BLOCK, &stops, std::ptr::null_mut()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The launcher may have died before prctl took effect.
                    if libc::getppid() != launcher {
                        return Err(std::io::Error::other("the launcher is gone"));
                    }
                    Ok(())
                });
            }
            let child = command
                .args(&args[1..])
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", nproc.to_string())
                .env("LOCAL_WORLD_SIZE", nproc.to_string())
                .env("STARGAN_DIST_FILE", &store)
                .env(LAUNCHED_ENV, "1")
                .env(crate::train::stop::LAUNCHER_PID_ENV, launcher.to_string())
                .process_group(0)
                .spawn()
                .with_context(|| format!("cannot start rank {rank}"))?;
            ranks.children.push(child);
        }
        ranks.exited.truncate(ranks.children.len());
        eprintln!("started {nproc} processes (ranks 0–{})", nproc - 1);
        supervise(&mut ranks, &signals)
    })();
    for h in handlers {
        signal_hook::low_level::unregister(h);
    }
    result
}

fn supervise(ranks: &mut Ranks, signals: &AtomicUsize) -> Result<()> {
    let mut forwarded = 0;
    let mut failed: Option<(usize, std::process::ExitStatus)> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let asked = signals.load(Ordering::SeqCst);
        if asked > forwarded {
            // The first request stops the ranks cleanly, with no time limit (they agree on
            // the step to stop after, then save); another kills them.
            ranks.signal_running(if forwarded == 0 { libc::SIGTERM } else { libc::SIGKILL });
            forwarded = asked;
        }
        for rank in 0..ranks.children.len() {
            if ranks.exited[rank].is_some() {
                continue;
            }
            if let Some(s) = ranks.children[rank].try_wait()? {
                ranks.exited[rank] = Some(s);
                if !s.success() {
                    if failed.is_none() && forwarded == 0 {
                        failed = Some((rank, s));
                    }
                    // The others cannot finish without it (nor save: rank 0 may be the one).
                    ranks.signal_running(libc::SIGTERM);
                    deadline.get_or_insert(Instant::now() + GRACE);
                }
            }
        }
        if ranks.exited.iter().all(Option::is_some) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            ranks.signal_running(libc::SIGKILL);
            deadline = None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some((rank, s)) = failed {
        bail!("rank {rank} failed ({s}); the other ranks were stopped");
    }
    if let Some((rank, s)) =
        ranks.exited.iter().enumerate().find_map(|(r, s)| s.filter(|s| !s.success()).map(|s| (r, s)))
    {
        bail!("rank {rank} ended with {s} after the stop request");
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
