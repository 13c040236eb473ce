//! Links libtorch the way every binary needs it and compiles our C++ shim.
//!
//! 1. Nothing in our Rust code calls into `libtorch_cuda.so` directly, so with the
//!    default `--as-needed` the linker would drop it and the binary would silently run
//!    without CUDA. We force it in with `--no-as-needed`, and add an rpath to the
//!    libtorch directory the build used, so the binary runs without `LD_LIBRARY_PATH` on
//!    the machine that built it.
//! 2. `src/shim/` holds the C++ for what tch does not bind (the fused Adam and foreach
//!    kernels, CPU autocast, c10d process groups), compiled here with the `cc` crate
//!    against the headers of the same libtorch (C++17, the C++11 ABI). ProcessGroupNCCL
//!    is compiled in when the CUDA headers it needs are installed beside torch
//!    (`nvidia-cuda-crt` and `nvidia-cuda-cccl`, which the Makefile installs).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/shim");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = Path::new(&lib_dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    let has_cuda = lib.join("libtorch_cuda.so").exists();
    if has_cuda {
        println!("cargo:rustc-link-search=native={lib_dir}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    build_shim(lib, has_cuda);
}

fn build_shim(lib: &Path, has_cuda: bool) {
    let torch = lib.parent().expect("libtorch lib dir has a parent");
    let include = torch.join("include");
    if !include.join("ATen").join("ATen.h").exists() {
        panic!(
            "the libtorch at {} has no C++ headers ({}); the shim needs them (use the PyPI torch wheel, as the Makefile does)",
            torch.display(),
            include.display()
        );
    }
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_DISTRIBUTED", None)
        .define("USE_C10D_GLOO", None)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include("src/shim/gloo_stub")
        .include("src/shim")
        // The libtorch headers warn a lot; our two files are small and reviewed.
        .flag_if_supported("-w")
        .file("src/shim/ops.cpp")
        .file("src/shim/dist.cpp")
        .file("src/shim/cuda.cpp");
    let with_cuda = nccl_includes(torch).filter(|_| has_cuda);
    if let Some(cuda_includes) = &with_cuda {
        b.define("USE_C10D_NCCL", None).define("STARGAN_NCCL", None).define("STARGAN_CUDA", None);
        for dir in cuda_includes {
            b.include(dir);
        }
    } else {
        println!(
            "cargo:warning=building without NCCL: the CUDA headers (pip install nvidia-cuda-crt nvidia-cuda-cccl) \
             were not found beside torch; multi-GPU training will use Gloo"
        );
    }
    b.compile("stargan_shim");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if with_cuda.is_some() {
        // The CUDA allocator statistics (src/shim/cuda.cpp).
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
}

/// Include folders for ProcessGroupNCCL.hpp, from the `nvidia` packages beside torch.
fn nccl_includes(torch: &Path) -> Option<Vec<PathBuf>> {
    let nvidia = torch.parent()?.join("nvidia");
    let cuda = std::fs::read_dir(&nvidia)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("include")))
        .find(|p| p.join("crt").join("host_config.h").exists() && p.join("cuda_runtime_api.h").exists())?;
    let nccl = nvidia.join("nccl").join("include");
    let target = [cuda.join("nv"), cuda.join("cccl").join("nv")].into_iter().find(|p| p.join("target").exists())?;
    if !nccl.join("nccl.h").exists() {
        return None;
    }
    Some(vec![cuda.clone(), target.parent()?.to_path_buf(), nccl])
}
