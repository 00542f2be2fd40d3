//! latency-injector: see the library's documentation (`src/lib.rs`).

fn main() -> std::process::ExitCode {
    chaos_common::tool::main::<latency_injector::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
