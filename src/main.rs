use std::process::ExitCode;

use clap::Parser;

/// Keeps freed blocks of up to 32 MB in the heap instead of returning them to the OS.
/// libtorch allocates and frees activations of many megabytes per layer; with glibc's
/// defaults most of them are fresh mmaps, and the page faults of touching them cost ~20 %
/// of CPU inference time (measured with `stargan bench infer`; docs/performance.md).
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = stargan::cli::Cli::parse();
    match stargan::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
