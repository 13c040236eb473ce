use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    stargan::process::tune_allocator();
    let cli = stargan::cli::Cli::parse();
    match stargan::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
