//! Process-wide memory settings: how the C allocator treats libtorch's large blocks, and
//! (on request, `--trim-gpu-libraries`) giving back the pages of GPU libraries that a
//! CPU-only machine never executes.
//!
//! Both matter for CPU inference, where the whole process is a few hundred MB and these
//! two effects are a large part of it (measured with `stargan bench infer`; see
//! docs/performance.md).

/// Keeps freed blocks of up to 32 MB in the heap instead of returning them to the OS.
///
/// libtorch allocates and frees activations of many megabytes per layer; with glibc's
/// defaults most of them are fresh mmaps, and the page faults of touching them cost
/// ~20 % of CPU inference time. Call before any thread starts.
pub fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// `madvise` advice asking the kernel to reclaim the pages of a range now (Linux ≥ 5.4;
/// not in every `libc` crate release, so spelled out).
const MADV_PAGEOUT: libc::c_int = 21;

/// File-name prefixes of the CUDA libraries that libtorch_cuda pulls in, as pip's
/// `nvidia-*` wheels and libtorch's own bundles name them. Matching a library by mistake
/// would only cost re-reading its pages.
const GPU_LIBRARY_PREFIXES: [&str; 18] = [
    "libtorch_cuda",
    "libtorch_nvshmem",
    "libc10_cuda",
    "libcublas",
    "libcudart",
    "libcudnn",
    "libcufft",
    "libcufile",
    "libcupti",
    "libcurand",
    "libcusolver",
    "libcusparse",
    "libnccl",
    "libnvJitLink",
    "libnvrtc",
    "libnvshmem",
    "libnvToolsExt",
    "libcuda.so",
];

/// Asks the kernel to reclaim the resident pages of the CUDA libraries' mappings and
/// returns how many mappings it accepted. Opt-in (`stargan --trim-gpu-libraries`).
///
/// The binary links libtorch_cuda unconditionally (so one binary uses a GPU when there is
/// one), and loading it runs the static initialisers of cuBLASLt and friends, which
/// leaves ≈100 MB of their code and read-only data resident even on a machine without a
/// GPU. A CPU run never executes that code again. Reclaiming is safe whatever happens
/// next: clean file-backed pages are re-read from the library on the next touch, and
/// pages the process has written (relocations, static data) are anonymous and simply not
/// reclaimed without swap. Best effort: errors (an old kernel, no /proc) are ignored.
pub fn release_gpu_library_pages() -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut accepted = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(path)) = (fields.next(), fields.nth(4)) else {
            continue;
        };
        let file = path.rsplit('/').next().unwrap_or(path);
        if !GPU_LIBRARY_PREFIXES.iter().any(|p| file.starts_with(p)) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this process taken from /proc/self/maps;
        // MADV_PAGEOUT only changes residency, never contents or protections.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, MADV_PAGEOUT) } == 0 {
            accepted += 1;
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident kB of clean pages of GPU libraries mapped by this process alone, from
    /// /proc/self/smaps: what MADV_PAGEOUT can reclaim (pages that another process maps
    /// too are left alone by the kernel).
    fn gpu_library_rss_kb() -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut in_gpu_lib = false;
        let mut total = 0;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                let file = line.split_whitespace().nth(5).unwrap_or("").rsplit('/').next().unwrap_or("");
                in_gpu_lib = GPU_LIBRARY_PREFIXES.iter().any(|p| file.starts_with(p));
            } else if in_gpu_lib && first == "Private_Clean:" {
                total += line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
            }
        }
        total
    }

    #[test]
    fn gpu_library_pages_are_given_back_and_torch_still_works() {
        let x = tch::Tensor::ones([4], (tch::Kind::Float, tch::Device::Cpu));
        let before = gpu_library_rss_kb();
        if before < 1024 {
            eprintln!(
                "{before} kB of private GPU-library pages: none mapped (CPU-only libtorch), or all shared with another \
                 process using the same libraries; nothing to give back"
            );
            return;
        }
        assert!(release_gpu_library_pages() > 0);
        let after = gpu_library_rss_kb();
        assert!(after * 2 < before, "private GPU-library pages went from {before} kB to {after} kB only");
        assert_eq!((&x + 1.0).sum(tch::Kind::Float).double_value(&[]), 8.0);
    }
}
