//! latency-injector: see the library's documentation (`src/lib.rs`).

use std::ffi::OsString;
use std::process::ExitCode;

use latency_injector::{guard, watchdog};

fn main() -> ExitCode {
    // The watchdog and the routes guard are this same binary started with a hidden first
    // argument; they are dispatched before clap, which would reject it. `args_os`: a
    // non-UTF-8 argument must reach clap (exit 2), not panic here.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some(watchdog::WATCHDOG_ARG) => {
            let rest: Vec<String> = args[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
            watchdog::main("latency-injector", &rest)
        }
        Some(guard::GUARD_ARG) => guard::main(&args[1..]),
        _ => chaos_common::tool::main::<latency_injector::cli::Cli>(env!("CARGO_PKG_VERSION")),
    }
}
