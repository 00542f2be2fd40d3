//! memory-leak: grows resident memory at a set rate in a supervised child process.
//!
//! The same binary is both the supervising tool and the allocator child: the child is
//! started as `memory-leak __allocate ...`, which `chaos_common::tool::main` dispatches
//! through `Tool::HIDDEN` before any flag parsing.

use std::process::ExitCode;

fn main() -> ExitCode {
    chaos_common::tool::main::<memory_leak::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
