//! net-partition: see the library's documentation (`src/lib.rs`).

use std::process::ExitCode;

use net_partition::watchdog;

fn main() -> ExitCode {
    // The watchdog is this same binary started with a hidden first argument; it must be
    // dispatched before clap, which would reject it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(watchdog::WATCHDOG_ARG) {
        return watchdog::main("net-partition", &args[1..]);
    }
    chaos_common::tool::main::<net_partition::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
