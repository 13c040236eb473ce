//! Stop requests: SIGINT or SIGTERM asks a training run to stop cleanly.
//!
//! The handlers go in at the very start of `stargan train` (before a rank of `--nproc`
//! meets the others, before the metric weights are fetched), so that a request at any
//! moment is a clean stop: during the set-up the run ends before its first step, during
//! training it finishes its step and saves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;

/// Set by the `--nproc` launcher in its ranks' environment: its process id.
pub const LAUNCHER_PID_ENV: &str = "STARGAN_LAUNCHER_PID";

/// A flag raised by SIGINT or SIGTERM. A signal more than two seconds after the first
/// ends the process at once (the default action), for a run that must not wait; one that
/// comes sooner is the same request delivered twice (the terminal's Ctrl-C and a launcher
/// passing it on, say) and changes nothing. The handlers go when this is dropped.
pub struct StopRequests {
    flag: Arc<AtomicBool>,
    setting_up: Arc<AtomicBool>,
    handlers: Vec<signal_hook::SigId>,
}

impl StopRequests {
    /// Installs the handlers, then lets through a request that came before them: a rank
    /// started by `--nproc` begins with SIGINT and SIGTERM blocked (so that a request while
    /// it loads libtorch waits for these handlers instead of killing it); they are
    /// unblocked here, for this thread and for every process it starts from now on.
    ///
    /// One case is not a clean stop: a rank whose launcher has died, asked to stop while it
    /// still sets up. It may be waiting for a rank that will never come (the meeting of the
    /// ranks cannot be interrupted and waits `--dist-timeout`), it has trained nothing,
    /// and nobody reads what it prints: it ends at once, by the signal.
    pub fn install() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let setting_up = Arc::new(AtomicBool::new(true));
        let first = Arc::new(AtomicU64::new(0));
        let launcher: Option<libc::pid_t> =
            std::env::var(LAUNCHER_PID_ENV).ok().and_then(|v| v.parse().ok()).filter(|&p| p > 0);
        let mut handlers = Vec::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let (flag, first, setting_up) = (flag.clone(), first.clone(), setting_up.clone());
            // SAFETY: the handler only does async-signal-safe things: atomics, getppid,
            // clock_gettime, and signal-hook's emulation of the default action.
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    let orphan = launcher.is_some_and(|l| libc::getppid() != l);
                    if orphan && setting_up.load(Ordering::SeqCst) {
                        let _ = signal_hook::low_level::emulate_default_handler(sig);
                        return;
                    }
                    let now = monotonic_ns();
                    let at = first.load(Ordering::SeqCst);
                    if at == 0 {
                        first.store(now, Ordering::SeqCst);
                        flag.store(true, Ordering::SeqCst);
                    } else if now.saturating_sub(at) > 2_000_000_000 {
                        let _ = signal_hook::low_level::emulate_default_handler(sig);
                    }
                })
            }?;
            handlers.push(id);
        }
        // SAFETY: pthread_sigmask on this thread's mask, with a set we own.
        unsafe {
            let mut stops: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut stops);
            libc::sigaddset(&mut stops, libc::SIGINT);
            libc::sigaddset(&mut stops, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &stops, std::ptr::null_mut());
        }
        Ok(StopRequests { flag, setting_up, handlers })
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The run has set up and trains: from now on every request is a clean stop.
    pub fn set_up_done(&self) {
        self.setting_up.store(false, Ordering::SeqCst);
    }
}

impl Drop for StopRequests {
    fn drop(&mut self) {
        for id in self.handlers.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Nanoseconds of the monotonic clock (async-signal-safe).
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own; it is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
