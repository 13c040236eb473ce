//! The `stargan` command line: argument parsing and reporting only; the work is done by
//! the library.

pub(crate) mod bench;
mod data;
mod demo;
mod eval;
mod export;
mod inspect;
mod model_args;
mod sample;
mod serve;
mod train;
mod translate;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "stargan", version, about = "StarGAN v2: multi-domain image-to-image translation on libtorch")]
pub struct Cli {
    /// CPU threads for tensor work (default: one per core). Beside other work, one thread
    /// (or `train --share-cpu`) degrades more gracefully (docs/performance.md).
    #[arg(long, global = true, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub threads: Option<i32>,
    /// On a machine without a usable GPU, give back the ~120 MiB of memory that the CUDA
    /// libraries keep resident after loading (they are never executed there; measured in
    /// docs/performance.md). Off by default.
    #[arg(long, global = true)]
    pub trim_gpu_libraries: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print what a checkpoint holds: format, networks, configuration, parameter counts.
    ///
    /// Works on our .safetensors checkpoints and on official PyTorch .ckpt files (legacy
    /// and zip), e.g. `stargan inspect expr/checkpoints/afhq/100000_nets_ema.ckpt`.
    Inspect(inspect::Args),
    /// Translate images into a domain with random or reference styles.
    Translate(Box<translate::Args>),
    /// Official sample mode: reference grid, latent grids, interpolation animation.
    Sample(Box<sample::Args>),
    /// Evaluate a model: FID and LPIPS with the StarGAN v2 protocol.
    Eval(Box<eval::Args>),
    /// FID between two folders of images.
    Fid(eval::FidArgs),
    /// LPIPS between two images.
    Lpips(eval::LpipsArgs),
    /// Benchmarks: inference and training speed and memory, devices, all-reduce.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Build data sets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train a model on image folders (one sub-folder per domain).
    Train(Box<train::Args>),
    /// Translate the bundled example emoji into every style and write one HTML page.
    Demo(Box<demo::Args>),
    /// Serve a local web page to translate images (127.0.0.1 by default).
    Serve(Box<serve::Args>),
    /// Export the inference networks of a checkpoint to a small file (optionally float16).
    Export(export::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = cli.threads {
        tch::set_num_threads(n);
    }
    if cli.trim_gpu_libraries && !tch::Cuda::is_available() {
        crate::process::release_gpu_library_pages();
    }
    match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Train(a) => train::run(*a),
        Command::Data(c) => data::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Eval(a) => eval::run(*a),
        Command::Fid(a) => eval::fid(a),
        Command::Lpips(a) => eval::lpips(a),
        Command::Translate(a) => translate::run(*a),
        Command::Sample(a) => sample::run(*a),
        Command::Demo(a) => demo::run(*a),
        Command::Serve(a) => serve::run(*a),
        Command::Export(a) => export::run(a),
    }
}
