//! chaos-verdict's binary: parse, run the sub-command, map the outcome to an exit code.
//! Errors are one line on stderr (exit 2 for a bad command line, as the tools do).

use std::process::ExitCode;

use chaos_verdict::cli::Cli;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

const NAME: &str = "chaos-verdict";

fn main() -> ExitCode {
    let version = chaos_common::tool::long_version(env!("CARGO_PKG_VERSION"));
    let parsed = Cli::command()
        .version(version.clone())
        .long_version(version)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{NAME}: error: {first} (see {NAME} --help)");
            return ExitCode::from(2);
        }
    };
    match chaos_verdict::cmd::run(cli) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("{NAME}: error: {e}");
            e.exit().into()
        }
    }
}
