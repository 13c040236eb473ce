//! `stargan train --share-cpu`: a CPU run that shares the machine with other work.
//!
//! Measured on the 2-core reference machine (`scripts/background-load.sh`, docs/performance.md):
//! on an idle machine two threads are fastest (1.9 it/s for the shipped model's configuration
//! with libgomp's default bounded spin, 1.25 with one thread, 1.15 with two threads and
//! `OMP_WAIT_POLICY=PASSIVE`), but beside a process that keeps the cores busy two threads fall
//! to about 0.5 it/s whatever the wait policy, while one thread keeps about 1.0. No fixed
//! setting wins both, so every few seconds this measures how much CPU the rest of the machine
//! used (the machine's busy time in `/proc/stat` minus this process's own in `/proc/self/stat`)
//! and gives the tensor work the cores that are left, at least one and at most the starting
//! thread count. Linux only (elsewhere `--share-cpu` is an error).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long each measurement lasts: long enough to average out a step (about 0.5 s here).
const WINDOW: Duration = Duration::from_secs(5);

/// A thread-count change, for the run's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub threads: i32,
    /// Cores the rest of the machine used during the last window.
    pub others: f64,
}

pub struct CpuShare {
    max_threads: i32,
    current: i32,
    /// A proposed count seen once: it is applied when the next window proposes it again,
    /// so one short burst of other work (a compiler invocation) does not flip the count.
    pending: Option<i32>,
    last: Times,
    last_at: Instant,
    ticks_per_s: f64,
}

/// Cumulative CPU times in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Times {
    machine_busy: u64,
    own: u64,
}

impl CpuShare {
    /// Starts sharing with `max_threads` (the thread count the run started with) as the
    /// ceiling. Fails when `/proc` cannot be read (not Linux).
    pub fn new(max_threads: i32) -> Result<Self> {
        // SAFETY: sysconf only reads a constant of the system.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if tck <= 0 {
            bail!("--share-cpu: the clock tick rate (sysconf _SC_CLK_TCK) is unknown on this system");
        }
        let max_threads = max_threads.max(1);
        Ok(CpuShare {
            max_threads,
            current: max_threads,
            pending: None,
            last: read_times()?,
            last_at: Instant::now(),
            ticks_per_s: tck as f64,
        })
    }

    /// Called after every step; measures at most once per window and returns the new
    /// thread count when it changed (already applied to libtorch on this thread, the one
    /// that runs the tensor work: OpenMP's thread count is per calling thread).
    pub fn tick(&mut self) -> Option<Change> {
        let elapsed = self.last_at.elapsed();
        if elapsed < WINDOW {
            return None;
        }
        // A failed read (unlikely once the first succeeded) keeps the current count.
        let now = read_times().ok()?;
        let others = others_cores(self.last, now, elapsed.as_secs_f64() * self.ticks_per_s);
        self.last = now;
        self.last_at = Instant::now();
        let proposed = threads_for(self.max_threads, others);
        let (next, pending) = settle(self.current, self.pending, proposed);
        self.pending = pending;
        if next == self.current {
            return None;
        }
        self.current = next;
        tch::set_num_threads(next);
        Some(Change { threads: next, others })
    }
}

/// Threads to use when the rest of the machine keeps `others` cores busy.
pub fn threads_for(max_threads: i32, others: f64) -> i32 {
    ((max_threads as f64 - others).round() as i32).clamp(1, max_threads)
}

/// The count after a window that proposed `proposed`: a change needs two windows in a row.
fn settle(current: i32, pending: Option<i32>, proposed: i32) -> (i32, Option<i32>) {
    if proposed == current {
        (current, None)
    } else if pending == Some(proposed) {
        (proposed, None)
    } else {
        (current, Some(proposed))
    }
}

/// Cores used by other processes between two readings `wall_ticks` apart.
fn others_cores(before: Times, after: Times, wall_ticks: f64) -> f64 {
    let machine = after.machine_busy.saturating_sub(before.machine_busy) as f64;
    let own = after.own.saturating_sub(before.own) as f64;
    ((machine - own) / wall_ticks.max(1.0)).max(0.0)
}

fn read_times() -> Result<Times> {
    let stat = std::fs::read_to_string("/proc/stat").context("--share-cpu: cannot read /proc/stat")?;
    let own = std::fs::read_to_string("/proc/self/stat").context("--share-cpu: cannot read /proc/self/stat")?;
    Ok(Times { machine_busy: parse_machine_busy(&stat)?, own: parse_own_ticks(&own)? })
}

/// Busy ticks of all CPUs from `/proc/stat`'s `cpu` line: user, nice, system, irq and
/// softirq (not idle, iowait or steal; guest time is already inside user).
fn parse_machine_busy(stat: &str) -> Result<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu ")).context("--share-cpu: /proc/stat has no `cpu` line")?;
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    if f.len() < 7 {
        bail!("--share-cpu: /proc/stat's `cpu` line has {} fields, expected at least 7", f.len());
    }
    Ok(f[0] + f[1] + f[2] + f[5] + f[6])
}

/// This process's user + system ticks (all threads) from `/proc/self/stat`, fields 14 and
/// 15. The command name (field 2) may hold spaces and parentheses, so fields are counted
/// from its last `)`.
fn parse_own_ticks(stat: &str) -> Result<u64> {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("--share-cpu: /proc/self/stat has no `)`")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    let field = |n: usize| -> Result<u64> {
        f.get(n - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("--share-cpu: /proc/self/stat field {n} is missing or not a number"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_the_cores_the_rest_of_the_machine_leaves() {
        assert_eq!(threads_for(2, 0.0), 2);
        assert_eq!(threads_for(2, 0.4), 2);
        assert_eq!(threads_for(2, 0.6), 1);
        assert_eq!(threads_for(2, 1.9), 1, "never below one thread");
        assert_eq!(threads_for(2, 7.0), 1);
        assert_eq!(threads_for(8, 3.2), 5);
        assert_eq!(threads_for(1, 0.0), 1);
    }

    #[test]
    fn a_change_needs_two_windows_in_a_row() {
        // One busy window proposes 1: nothing changes yet.
        assert_eq!(settle(2, None, 1), (2, Some(1)));
        // The next window agrees: applied.
        assert_eq!(settle(2, Some(1), 1), (1, None));
        // A burst followed by an idle window: the proposal is dropped.
        assert_eq!(settle(2, Some(1), 2), (2, None));
        // A different proposal replaces the pending one.
        assert_eq!(settle(4, Some(2), 3), (4, Some(3)));
    }

    #[test]
    fn others_are_the_machine_minus_this_process() {
        let a = Times { machine_busy: 1000, own: 400 };
        let b = Times { machine_busy: 1900, own: 900 };
        // 900 busy ticks in 500 wall ticks, 500 of them ours: others used 0.8 cores.
        assert!((others_cores(a, b, 500.0) - 0.8).abs() < 1e-12);
        // Rounding between the two files can make ours exceed the machine's: never negative.
        assert_eq!(others_cores(a, Times { machine_busy: 1100, own: 600 }, 500.0), 0.0);
    }

    #[test]
    fn parses_proc_stat_and_a_command_name_with_parentheses() {
        let stat = "cpu  100 5 30 9000 7 2 3 11 0 0\ncpu0 50 2 15 4500 3 1 1 5 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy(stat).unwrap(), 100 + 5 + 30 + 2 + 3);
        let own = "4242 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 8 0 99";
        assert_eq!(parse_own_ticks(own).unwrap(), 123 + 45);
        assert!(parse_machine_busy("intr 1\n").is_err());
        assert!(parse_own_ticks("4242 (x) S 1 2").is_err());
    }

    #[test]
    fn reads_this_machine() {
        let t = read_times().unwrap();
        assert!(t.machine_busy > 0 && t.machine_busy >= t.own, "{t:?}");
        let mut share = CpuShare::new(2).unwrap();
        assert_eq!(share.tick(), None, "no measurement before a window has passed");
    }
}
