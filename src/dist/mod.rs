//! Data-parallel training on libtorch's own c10d: a process group of N processes (Gloo
//! for CPU tensors, NCCL for CUDA tensors), created from the environment that
//! `torchrun` (or `stargan train --nproc`) gives each process.
//!
//! What the training step needs from it: the gradients averaged over the processes
//! (flattened into buckets, one all-reduce each), the parameters broadcast from rank 0
//! at start, the loss values averaged so that every rank takes the same decisions, and
//! errors — a dead peer, a timeout — as `Result`s, never aborts.

pub mod launch;

use std::ffi::CString;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

use crate::torch_ext::{check, ffi, ptrs, TorchError};

/// Largest bucket of gradients all-reduced at once (elements, float32: 100 MB).
const BUCKET_ELEMENTS: i64 = 25 << 20;

/// Which collective library carries the tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Gloo,
    Nccl,
}

/// Where the processes meet.
#[derive(Clone, Debug)]
pub enum Rendezvous {
    /// A TCP store at host:port; `serve` for the process that hosts it.
    Tcp { host: String, port: u16, serve: bool },
    /// A file on a shared file system (tests, single machines).
    File(std::path::PathBuf),
}

/// This process's place in the job, as torchrun describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub local_world: usize,
}

/// The process group of a multi-process run.
pub struct ProcessGroup {
    raw: *mut ffi::CGroup,
    pub placement: Placement,
    pub backend: Backend,
}

// SAFETY: the c10d group is used from the training thread only; it is created there and
// moved, not shared. Send lets it live in structures that are built on one thread.
unsafe impl Send for ProcessGroup {}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from stargan_group_new and is freed once.
        unsafe { ffi::stargan_group_free(self.raw) }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_usize(name: &str) -> Result<Option<usize>> {
    env(name).map(|v| v.parse().with_context(|| format!("{name}={v} is not a whole number"))).transpose()
}

/// This process's placement from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE), or None for a single-process run.
pub fn placement_from_env() -> Result<Option<Placement>> {
    let Some(world) = env_usize("WORLD_SIZE")? else { return Ok(None) };
    if world <= 1 {
        return Ok(None);
    }
    let rank = env_usize("RANK")?.context("WORLD_SIZE is set but RANK is not: start the processes with torchrun")?;
    if rank >= world {
        bail!("RANK={rank} is not below WORLD_SIZE={world}");
    }
    let local_rank = env_usize("LOCAL_RANK")?.unwrap_or(rank);
    let local_world = env_usize("LOCAL_WORLD_SIZE")?.unwrap_or(world);
    Ok(Some(Placement { rank, world, local_rank, local_world }))
}

/// The rendezvous torchrun set up: the agent's TCP store (TORCHELASTIC_USE_AGENT_STORE)
/// that every worker joins as a client, else a store that rank 0 serves at
/// MASTER_ADDR:MASTER_PORT; `STARGAN_DIST_FILE` names a file store instead.
pub fn rendezvous_from_env(p: &Placement) -> Result<Rendezvous> {
    if let Some(file) = env("STARGAN_DIST_FILE") {
        return Ok(Rendezvous::File(file.into()));
    }
    let host = env("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = env("MASTER_PORT")
        .context("MASTER_PORT is not set: start the processes with torchrun or stargan train --nproc")?
        .parse()
        .context("MASTER_PORT is not a port number")?;
    let agent = env("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(Rendezvous::Tcp { host, port, serve: !agent && p.rank == 0 })
}

impl ProcessGroup {
    /// Joins the group. Every rank must call this with the same rendezvous and size.
    pub fn new(placement: Placement, rendezvous: &Rendezvous, backend: Backend, timeout: Duration) -> Result<Self> {
        if backend == Backend::Nccl && !nccl_built() {
            bail!("this stargan was built without NCCL (the CUDA headers were missing at build time); use Gloo");
        }
        // A failed or timed-out NCCL collective is caught by NCCL's watchdog thread, which
        // ends the process (the launcher then stops the other ranks). TORCH_NCCL_BLOCKING_WAIT=1
        // would make the wait itself fail with the error instead, but it also blocks the CPU
        // on every all-reduce, so GPU work no longer overlaps communication: not set here
        // (users may set it to debug a hang).
        // Keys of a restarted torchrun attempt must not meet the old ones.
        let prefix = format!("stargan/attempt_{}", env("TORCHELASTIC_RESTART_COUNT").unwrap_or_else(|| "0".into()));
        let prefix = CString::new(prefix)?;
        let (kind, where_, port, serve) = match rendezvous {
            Rendezvous::Tcp { host, port, serve } => (0, host.clone(), *port as i32, *serve),
            Rendezvous::File(p) => (1, p.display().to_string(), 0, false),
        };
        let where_c = CString::new(where_.clone())?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid C strings for the call; `raw` receives an owned group on success.
        check(unsafe {
            ffi::stargan_group_new(
                matches!(backend, Backend::Nccl) as i32,
                kind,
                where_c.as_ptr(),
                port,
                serve,
                placement.rank as i32,
                placement.world as i32,
                timeout.as_millis() as i64,
                prefix.as_ptr(),
                &mut raw,
            )
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "rank {} of {} could not join the process group at {where_}: {} (are all {} processes started, with \
                 the same MASTER_ADDR/MASTER_PORT?)",
                placement.rank,
                placement.world,
                e.0,
                placement.world
            )
        })?;
        if raw.is_null() {
            bail!("rank {} could not join the process group (no group was returned)", placement.rank);
        }
        Ok(ProcessGroup { raw, placement, backend })
    }

    pub fn rank(&self) -> usize {
        self.placement.rank
    }

    pub fn world(&self) -> usize {
        self.placement.world
    }

    fn lost(&self, what: &str, e: TorchError) -> anyhow::Error {
        anyhow::anyhow!(
            "rank {} of {}: {what} failed ({}); another process probably stopped or crashed, see its output",
            self.placement.rank,
            self.placement.world,
            e.0
        )
    }

    /// Sums `t` over the ranks in place. (One tensor: in c10d a list means one tensor per
    /// local device.)
    fn all_reduce_sum(&self, t: &Tensor) -> Result<()> {
        let p = ptrs(&[t]);
        // SAFETY: valid tensor pointers borrowed for the call; `raw` is live.
        check(unsafe { ffi::stargan_group_allreduce_sum(self.raw, p.as_ptr(), p.len()) })
            .map_err(|e| self.lost("all-reduce", e))
    }

    /// Replaces every tensor with its mean over the ranks. The tensors are flattened into
    /// buckets of at most 100 MB (one all-reduce each) and copied back.
    pub fn all_reduce_mean(&self, ts: &[&Tensor]) -> Result<()> {
        let scale = 1.0 / self.world() as f64;
        tch::no_grad(|| -> Result<()> {
            let mut start = 0;
            while start < ts.len() {
                let kind = ts[start].kind();
                let device = ts[start].device();
                let mut end = start;
                let mut elements = 0;
                while end < ts.len()
                    && ts[end].kind() == kind
                    && ts[end].device() == device
                    && (end == start || elements + ts[end].numel() as i64 <= BUCKET_ELEMENTS)
                {
                    elements += ts[end].numel() as i64;
                    end += 1;
                }
                let group = &ts[start..end];
                let flat = Tensor::cat(&group.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0);
                self.all_reduce_sum(&flat)?;
                let mut offset = 0;
                for t in group {
                    let n = t.numel() as i64;
                    let mut dst = (*t).shallow_clone();
                    dst.copy_(&(flat.narrow(0, offset, n) * scale).view_as(t));
                    offset += n;
                }
                start = end;
            }
            Ok(())
        })
    }

    /// Overwrites `ts` with rank 0's values.
    pub fn broadcast_from_rank0(&self, ts: &[&Tensor]) -> Result<()> {
        let p = ptrs(ts);
        // SAFETY: valid tensor pointers borrowed for the call; `raw` is live.
        check(unsafe { ffi::stargan_group_broadcast(self.raw, p.as_ptr(), p.len(), 0) })
            .map_err(|e| self.lost("broadcast", e))
    }

    /// Fails on every rank unless all ranks hold rank 0's `values` (the iteration and λ_ds
    /// they resume from, say: ranks that read different checkpoints would otherwise run
    /// different numbers of steps and wait for each other forever).
    pub fn check_agreement(&self, what: &str, values: &[f64]) -> Result<()> {
        let mine = Tensor::from_slice(values).to_kind(Kind::Double);
        let mine =
            if self.backend == Backend::Nccl { mine.to_device(Device::Cuda(self.placement.local_rank)) } else { mine };
        let theirs = mine.copy();
        self.broadcast_from_rank0(&[&theirs])?;
        let diff = crate::train::step::read_to_host(&(&theirs - &mine).abs().max());
        let differs = diff.first().is_some_and(|d| *d != 0.0);
        // Every rank learns whether any rank differs, so that all stop together.
        let any = Tensor::from_slice(&[if differs { 1.0f64 } else { 0.0 }]);
        let any =
            if self.backend == Backend::Nccl { any.to_device(Device::Cuda(self.placement.local_rank)) } else { any };
        self.all_reduce_sum(&any)?;
        if crate::train::step::read_to_host(&any).first().is_some_and(|v| *v > 0.0) {
            bail!(
                "the processes disagree on {what} (this one has {values:?}): give every machine the same run folder \
                 (a shared file system) or the same checkpoint"
            );
        }
        Ok(())
    }

    pub fn barrier(&self) -> Result<()> {
        // SAFETY: `raw` is live.
        check(unsafe { ffi::stargan_group_barrier(self.raw) }).map_err(|e| self.lost("barrier", e))
    }

    /// The mean over the ranks of a few scalars, read back to the host (one all-reduce):
    /// the loss values, so that every rank logs and decides on the same numbers.
    pub fn mean_of(&self, values: &Tensor) -> Result<Vec<f64>> {
        let v = values.to_kind(Kind::Double).reshape([-1]).contiguous();
        let v = if self.backend == Backend::Gloo { v.to_device(Device::Cpu) } else { v };
        self.all_reduce_sum(&v)?;
        Ok(crate::train::step::read_to_host(&(v / self.world() as f64)))
    }
}

/// Whether ProcessGroupNCCL was compiled in.
pub fn nccl_built() -> bool {
    // SAFETY: no arguments.
    unsafe { ffi::stargan_nccl_built() }
}
