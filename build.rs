//! Keeps libtorch's CUDA library linked into every binary.
//!
//! Nothing in our code calls into `libtorch_cuda.so` directly, so with the default
//! `--as-needed` the linker drops it and the binary silently runs without CUDA. We
//! force it in with `--no-as-needed`, and add an rpath to the libtorch directory the
//! build used, so the binary runs without `LD_LIBRARY_PATH` on the machine that built it.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = Path::new(&lib_dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={lib_dir}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
