//! memory-leak: grows resident memory at a set rate in a supervised child process.
//!
//! The same binary is both the supervising tool and the allocator child: the child is
//! started as `memory-leak __allocate ...`, which is dispatched before any flag parsing.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == memory_leak::allocator::ARG)
    {
        return memory_leak::allocator::main();
    }
    chaos_common::tool::main::<memory_leak::cli::Cli>(env!("CARGO_PKG_VERSION"))
}
