//! Every tool's `--help` ends with an Examples section (issue 14): each example command,
//! read from the help text a person sees (not from the source), is run with `--dry-run`
//! in the setting its comment names (see `common::examples`) and must plan without error;
//! `--stop RUN_ID` cannot be a dry run and must be answered as a run id that never ran.
//! A wrapped or stray line in the section fails, since a person copying it would run a
//! broken command; the help must point to the man page and to a doc page that exists.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::examples::{Setting, commands_in};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example commands of a `--help` text, without the tool's name.
fn example_commands(tool: &str, help: &str) -> Result<Vec<String>, String> {
    let section = help
        .split_once("\nExamples:\n")
        .ok_or("no Examples section")?
        .1;
    let lines: Vec<&str> = section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let commands = commands_in(tool, &lines, true)?;
    if commands.is_empty() {
        return Err("no example commands".into());
    }
    Ok(commands)
}

/// Runs every example of `tool --help` in its setting; returns how many ran.
fn run_help_examples(tool: &'static str) -> usize {
    let out = common::run(Command::new(common::bin(tool)).arg("--help"));
    assert!(out.status.success(), "{tool} --help: {out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    let commands =
        example_commands(tool, &help).unwrap_or_else(|e| panic!("{tool} --help: {e}\n{help}"));
    let documentation = help
        .split_once("Documentation: ")
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("{tool} --help: no pointer to its docs"));
    assert!(
        documentation.contains(&format!("man {tool}"))
            && documentation.contains(&format!("docs/{tool}.md"))
            && repo().join("docs").join(format!("{tool}.md")).is_file(),
        "{tool} --help points to docs that are not there: {documentation}"
    );
    let setting = Setting::for_tool(tool);
    for command in &commands {
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect();
        setting.check(&format!("{tool} --help"), &args);
    }
    commands.len()
}

#[test]
fn root_cpu_hog_examples_plan_in_a_container_with_a_cpu_limit() {
    common::require_root("a cpu cgroup with a quota, as a container's CPU limit");
    assert!(run_help_examples("cpu-hog") >= 4);
}

#[test]
fn root_memory_leak_examples_plan_in_a_container_with_a_memory_limit() {
    common::require_root("a memory cgroup with a limit, as a container's memory limit");
    assert!(run_help_examples("memory-leak") >= 4);
}

#[test]
fn root_net_partition_examples_plan_in_a_pod_that_resolves_the_services() {
    common::require_root("a network namespace with its own /etc/hosts; nft for --cleanup");
    assert!(run_help_examples("net-partition") >= 3);
}

#[test]
fn root_latency_injector_examples_plan_in_a_pod_that_resolves_the_services() {
    common::require_root("a network namespace with its own /etc/hosts; nft for --cleanup");
    assert!(run_help_examples("latency-injector") >= 4);
}

#[test]
fn pod_killer_examples_plan_against_the_lomash_wood_cluster() {
    assert!(run_help_examples("pod-killer") >= 4);
}

#[test]
fn the_reader_joins_continued_lines_and_refuses_wrapped_ones() {
    let help = |body: &str| format!("Usage: cpu-hog\n\nExamples:\n{body}\nDocumentation: x\n");
    let ok = help("  # a comment\n  cpu-hog -c 50 \\\n    -d 10\n  cpu-hog --cleanup\n");
    assert_eq!(
        example_commands("cpu-hog", &ok).unwrap(),
        ["cpu-hog -c 50 -d 10", "cpu-hog --cleanup"]
    );
    let wrapped = help("  cpu-hog -c 50 -k 2\n  --probability 30\n");
    let e = example_commands("cpu-hog", &wrapped).unwrap_err();
    assert!(e.contains("--probability 30"), "{e}");
    assert!(example_commands("cpu-hog", &help("  cpu-hog -c 50 \\\n")).is_err());
    assert!(example_commands("cpu-hog", &help("  cpu-hog -c \"50\"\n")).is_err());
    assert!(example_commands("cpu-hog", "Usage: cpu-hog\n").is_err());
}
