//! The tool's shell completion script (`TOOL completions SHELL`) and man page
//! (`TOOL __man`, for scripts/build-static.sh), generated from its clap command.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::error::Exit;

use super::{Tool, command};

/// `TOOL completions bash|zsh|fish|elvish|powershell`: the shell completion script.
pub(super) const COMPLETIONS: &str = "completions";
/// `TOOL __man`: the man page (roff), for `scripts/build-static.sh`.
pub(super) const MAN_PAGE: &str = "__man";

pub(super) fn completions<T: Tool>(version: &'static str, args: &[OsString]) -> ExitCode {
    use clap::ValueEnum;
    let shell = match args {
        [one] => one
            .to_str()
            .and_then(|s| clap_complete::Shell::from_str(s, true).ok()),
        _ => None,
    };
    let Some(shell) = shell else {
        eprintln!(
            "{}: error: usage: {} completions bash|zsh|fish|elvish|powershell",
            T::NAME,
            T::NAME
        );
        return Exit::BadInput.into();
    };
    let mut cmd = command::<T>(version);
    clap_complete::generate(shell, &mut cmd, T::NAME, &mut std::io::stdout());
    ExitCode::SUCCESS
}

pub(super) fn man_page<T: Tool>(version: &'static str) -> ExitCode {
    let page = clap_mangen::Man::new(command::<T>(version));
    match page.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: cannot write the man page: {e}", T::NAME);
            Exit::Failed.into()
        }
    }
}
