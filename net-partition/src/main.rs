//! net-partition: see the library's documentation (`src/lib.rs`).

fn main() -> std::process::ExitCode {
    chaos_common::tool::main::<net_partition::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
