//! pod-killer: see the crate documentation (`src/lib.rs`) and docs/pod-killer.md.

fn main() -> std::process::ExitCode {
    chaos_common::tool::main::<pod_killer::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
