//! The in-pod command line, built generically from clap's `ArgMatches`: every argument the
//! operator gave (on the command line, or through an environment variable such as
//! `CHAOS_ENVIRONMENT`, which the pod does not have) except the remote flags and the ones
//! the remote layer sets itself, each re-written as `--long=value` so that no value can
//! ever be read as a flag; then `--run-id RUNID -y --output json --log-format json`.
//! Defaults are not repeated: the in-pod tool applies its own. The result is an argument
//! vector for exec or an ephemeral container's `args`, never a shell string.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Command};

use super::args::RemoteArgs;

/// Ids (field names) of the shared flags the remote layer sets or handles itself.
/// `quiet` too: the in-pod run must log at info, since the remote layer waits for its
/// "fault applied" line (this tool's own level filters what is relayed).
const SET_BY_REMOTE: &[&str] = &[
    "quiet",
    "run_id",
    "yes",
    "output",
    "log_format",
    "dry_run",
    "stop",
    "cleanup",
];

/// What every in-pod run gets after the forwarded arguments.
pub fn fixed_tail(run_id: &str) -> Vec<OsString> {
    [
        "--run-id",
        run_id,
        "-y",
        "--output",
        "json",
        "--log-format",
        "json",
    ]
    .iter()
    .map(OsString::from)
    .collect()
}

/// The ids of the remote flag group in `cmd` (clap names the group after the struct).
fn remote_ids(cmd: &Command) -> Vec<String> {
    let Some(group) = RemoteArgs::group_id() else {
        return Vec::new();
    };
    cmd.get_groups()
        .filter(|g| *g.get_id() == group)
        .flat_map(|g| g.get_args().map(|a| a.as_str().to_owned()))
        .collect()
}

fn joined(flag: &str, value: &std::ffi::OsStr) -> OsString {
    let mut out = OsString::from(flag);
    if flag.starts_with("--") {
        out.push("=");
    }
    out.push(value);
    out
}

/// The arguments to forward: given by the operator (command line or environment), not
/// remote flags, not set by the remote layer, not in `skip` (a tool's own ids that it
/// translated, such as net-partition's `target_service`).
pub fn forwarded(cmd: &Command, matches: &ArgMatches, skip: &[&str]) -> Vec<OsString> {
    let remote = remote_ids(cmd);
    let mut out = Vec::new();
    let mut positional = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if remote.iter().any(|r| r == id) || SET_BY_REMOTE.contains(&id) || skip.contains(&id) {
            continue;
        }
        if !matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => {
                positional.extend(
                    matches
                        .get_raw(id)
                        .into_iter()
                        .flatten()
                        .map(std::ffi::OsStr::to_owned),
                );
                continue;
            }
        };
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => out.push(OsString::from(&flag)),
            ArgAction::Count => {
                for _ in 0..matches.get_count(id) {
                    out.push(OsString::from(&flag));
                }
            }
            ArgAction::Set | ArgAction::Append => {
                for occurrence in matches.get_raw_occurrences(id).into_iter().flatten() {
                    for value in occurrence {
                        out.push(joined(&flag, value));
                    }
                }
            }
            _ => {}
        }
    }
    if !positional.is_empty() {
        out.push("--".into());
        out.extend(positional);
    }
    out
}

/// The whole in-pod argument vector after the program: forwarded, the tool's `extra`
/// (what resolution found), then the fixed tail.
pub fn in_pod(
    cmd: &Command,
    matches: &ArgMatches,
    skip: &[&str],
    extra: &[String],
    run_id: &str,
) -> Vec<OsString> {
    let mut argv = forwarded(cmd, matches, skip);
    argv.extend(extra.iter().map(OsString::from));
    argv.extend(fixed_tail(run_id));
    argv
}

/// For plans and logs: the vector as text, each element quoted only when it needs it.
pub fn display(program: &str, argv: &[OsString]) -> String {
    std::iter::once(program.to_owned())
        .chain(argv.iter().map(|a| quote(&a.to_string_lossy())))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::CommonArgs;
    use clap::{CommandFactory, Parser};

    /// A tool's shape: its own flags, the shared ones, the remote group.
    #[derive(Debug, Parser)]
    struct Tool {
        #[arg(short = 'c', long, default_value = "80", allow_negative_numbers = true)]
        cpu_percent: f64,
        #[arg(long)]
        of_limit: bool,
        #[arg(short = 'H', long = "target-host")]
        hosts: Vec<String>,
        #[arg(short = 't', long = "target-service")]
        target_service: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    }

    fn argv(args: &[&str], skip: &[&str]) -> Vec<String> {
        let cmd = Tool::command();
        let matches = cmd
            .clone()
            .try_get_matches_from(std::iter::once("tool").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        in_pod(
            &cmd,
            &matches,
            skip,
            &["-H".into(), "203.0.113.9".into()],
            "r1",
        )
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
    }

    #[test]
    fn the_local_command_line_minus_remote_flags_plus_the_tail() {
        let got = argv(
            &[
                "-s",
                "product-service",
                "-n",
                "lomash-wood",
                "-c",
                "-5",
                "--of-limit",
                "-d",
                "180",
                "-vv",
                "-y",
                "--output",
                "text",
                "--run-id",
                "mine",
                "--dry-run",
                "-H",
                "a",
                "-H=--b",
                "-t",
                "auth-service",
                "--image",
                "x:1",
            ],
            &["target_service"],
        );
        assert_eq!(
            got,
            [
                "--cpu-percent=-5",
                "--of-limit",
                "--target-host=a",
                "--target-host=--b",
                "--duration=180",
                "--verbose",
                "--verbose",
                "-H",
                "203.0.113.9",
                "--run-id",
                "r1",
                "-y",
                "--output",
                "json",
                "--log-format",
                "json",
            ]
        );
    }

    #[test]
    fn defaults_are_not_repeated() {
        // (Values from the environment are forwarded: tests/tests/remote_plan.rs runs the
        // binaries with CHAOS_ENVIRONMENT set.)
        let cmd = Tool::command();
        let matches = cmd
            .clone()
            .try_get_matches_from(["tool", "--pod", "p"])
            .unwrap_or_else(|e| panic!("{e}"));
        let got = forwarded(&cmd, &matches, &[]);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let argv: Vec<OsString> = ["--endpoint=/v1/webhooks/stripe", "it's", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            display("latency-injector", &argv),
            r"latency-injector --endpoint=/v1/webhooks/stripe 'it'\''s' ''"
        );
    }
}
