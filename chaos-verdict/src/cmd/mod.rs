//! The sub-commands: each reads its inputs, calls the pure modules, writes its outputs.

mod guard;
mod log;
mod safety;
mod util;
mod verdict;

use crate::cli::{Cli, Command};
use crate::error::{Exit, Result};

pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Verdict(args) => verdict::verdict(&args),
        Command::Gate(args) => verdict::gate(&args),
        Command::Guard(args) => guard::guard(&args),
        Command::Log(args) => log::log(&args),
        Command::Stats(args) => util::stats(&args),
        Command::Get(args) => util::get(&args),
        Command::Find(args) => util::find(&args),
        Command::Manifest(args) => util::manifest(&args),
        Command::Safety(args) => safety::safety(&args),
        Command::Validate(args) => util::validate(&args),
    }
}

/// Writes `text` to `path`, naming the file on failure.
fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| crate::error::VerdictError::io("cannot write", path, e))
}
