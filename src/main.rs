use std::io::Write;

use clap::Parser;

fn main() {
    stargan::process::tune_allocator();
    let cli = stargan::cli::Cli::parse();
    let code = match stargan::cli::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    stargan::process::exit_now(code)
}
