//! chaos-verdict's binary: parse, run the sub-command, map the outcome to an exit code.
//! Errors are one line on stderr.

use std::process::ExitCode;

use chaos_verdict::cli::Cli;

fn main() -> ExitCode {
    let cli = match chaos_common::tool::parse_or_exit::<Cli>("chaos-verdict") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match chaos_verdict::cmd::run(cli) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("chaos-verdict: error: {e}");
            e.exit().into()
        }
    }
}
