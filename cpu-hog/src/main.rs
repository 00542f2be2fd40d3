//! cpu-hog's binary: everything happens in [`chaos_common::tool::main`], which parses
//! the flags of [`cpu_hog::cli::Cli`], runs the fault and prints the report.

fn main() -> std::process::ExitCode {
    chaos_common::tool::main::<cpu_hog::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
