use std::process::ExitCode;

use clap::Parser;

/// A panic is a bug of ours, not a user's mistake: say so in one line (libtorch's
/// messages carry a C++ backtrace, which is left out), and exit like a panic (101).
fn report_panics_in_one_line() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        let first = msg.split("\nException raised from").next().unwrap_or(msg).lines().next().unwrap_or(msg);
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error in stargan{place}: {first}");
        eprintln!("This is a bug, not a problem with your input: please report it with the command you ran.");
    }));
}

fn main() -> ExitCode {
    stargan::process::tune_allocator();
    let cli = stargan::cli::Cli::parse();
    report_panics_in_one_line();
    match stargan::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
