//! Every tool's `--help` ends with an Examples section (issue 14): each example command,
//! read from the help text a person sees (not from the source), is run with `--dry-run`
//! and must plan without error, in the setting its comment names: a container with a CPU
//! quota or a memory limit (a cgroup the test makes), a pod whose DNS knows `auth-service`
//! and `redis` (a network namespace with its own /etc/hosts), the Lomash Wood cluster (the
//! Kubernetes API test server). `--stop RUN_ID` cannot be a dry run: it must be answered
//! as a run id that never ran (exit 2, with its report). A wrapped or stray line in the
//! section fails, since a person copying it would run a broken command.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use chaos_tests::kube_lab::KubeLab;
use common::cgroup::TestCgroup;
use common::netlab::Lab;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example commands of a `--help` text (`\` at a line's end continues the command
/// on the next line); an error for a line that is neither a comment nor a command.
fn example_commands(tool: &str, help: &str) -> Result<Vec<String>, String> {
    let section = help
        .split_once("\nExamples:\n")
        .ok_or("no Examples section")?
        .1;
    let mut commands = Vec::new();
    let mut pending: Option<String> = None;
    for line in section.lines().take_while(|l| !l.trim().is_empty()) {
        let text = line.trim();
        let joined = match pending.take() {
            Some(start) => format!("{start} {text}"),
            None if text.starts_with('#') => continue,
            None if text.starts_with(&format!("{tool} ")) => text.to_owned(),
            None => {
                return Err(format!(
                    "an example line that is neither a comment nor a command (wrapped?): {line:?}"
                ));
            }
        };
        match joined.strip_suffix('\\') {
            Some(start) => pending = Some(start.trim_end().to_owned()),
            None => commands.push(joined),
        }
    }
    if pending.is_some() {
        return Err("the last example ends with '\\'".into());
    }
    if commands.is_empty() {
        return Err("no example commands".into());
    }
    if let Some(c) = commands
        .iter()
        .find(|c| c.contains(['"', '\'', '$', '|', ';', '<', '>']))
    {
        return Err(format!("an example needs a shell to read: {c}"));
    }
    Ok(commands)
}

/// The example commands of `tool --help` as argument lists without the tool's name; the
/// help must point to the man page and to a doc page that exists.
fn examples(tool: &str) -> Vec<Vec<String>> {
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
    commands
        .iter()
        .map(|c| c.split_whitespace().skip(1).map(str::to_owned).collect())
        .collect()
}

/// What a dry run of `args` is run as: the tool (`program`) with `args`, plus
/// `--dry-run` and `--output json` when the example does not say them already.
fn dry_args(args: &[String]) -> Vec<String> {
    let mut all = args.to_vec();
    if !args.iter().any(|a| a == "--dry-run") {
        all.push("--dry-run".into());
    }
    if !args.iter().any(|a| a == "--output") {
        all.extend(["--output".into(), "json".into()]);
    }
    all
}

/// Runs every example of `tool` through `setting` (which returns the command to run
/// `tool` with those arguments) and checks each answer; returns how many ran.
fn run_examples(
    tool: &str,
    state: &Path,
    mut setting: impl FnMut(Vec<String>) -> Command,
) -> usize {
    let all = examples(tool);
    for args in &all {
        let stop = args.iter().any(|a| a == "--stop");
        let argv = if stop {
            let mut a = args.clone();
            a.extend(["--output".into(), "json".into()]);
            a
        } else {
            dry_args(args)
        };
        let mut cmd = setting(argv.clone());
        cmd.env("CHAOS_STATE_DIR", state).env("NO_COLOR", "1");
        let out = common::run(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("{tool} {argv:?}: no JSON report ({e}):\n{stdout}\nstderr:\n{stderr}")
        });
        common::assert_valid_report(&report);
        if stop {
            assert_eq!(out.status.code(), Some(2), "{tool} {argv:?}: {stderr}");
            assert_eq!(report["action"], "stop", "{report:#}");
            let message = report["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("none ended here"), "{message}");
        } else {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{tool} {argv:?}:\n{stderr}\n{report:#}"
            );
            assert_eq!(report["result"], "dry-run", "{tool} {argv:?}: {report:#}");
        }
    }
    all.len()
}

/// A tiny sh (script fixed, paths and argv as arguments) joins `cgroups`, then execs.
fn in_cgroups(cgroups: &[&TestCgroup], program: PathBuf, args: Vec<String>) -> Command {
    let script = r#"while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; done; shift; exec "$@""#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh");
    for cgroup in cgroups {
        cmd.arg(&cgroup.dir);
    }
    cmd.arg("--").arg(program).args(args);
    cmd
}

#[test]
fn root_cpu_hog_examples_plan_in_a_container_with_a_cpu_limit() {
    common::require_root("a cpu cgroup with a quota, as a container's CPU limit");
    let cpu = TestCgroup::create("cpu");
    cpu.write("cpu.cfs_period_us", "100000");
    // product-service's limit (docs: the target cluster): cpu 500m.
    cpu.write("cpu.cfs_quota_us", "50000");
    let state = tempfile::tempdir().unwrap();
    let ran = run_examples("cpu-hog", state.path(), |args| {
        in_cgroups(&[&cpu], common::bin("cpu-hog"), args)
    });
    assert!(ran >= 4, "{ran} examples");
}

#[test]
fn root_memory_leak_examples_plan_in_a_container_with_a_memory_limit() {
    common::require_root("a memory cgroup with a limit, as a container's memory limit");
    let memory = TestCgroup::create("memory");
    // product-service's limit (docs: the target cluster): memory 512Mi.
    memory.write("memory.limit_in_bytes", &(512u64 << 20).to_string());
    let state = tempfile::tempdir().unwrap();
    let ran = run_examples("memory-leak", state.path(), |args| {
        in_cgroups(&[&memory], common::bin("memory-leak"), args)
    });
    assert!(ran >= 4, "{ran} examples");
}

/// /etc/netns/NS/hosts, which `ip netns exec NS` mounts over /etc/hosts: the pod's DNS
/// for the examples' service names. Removed on drop.
struct Hosts {
    dir: PathBuf,
}

impl Hosts {
    fn for_namespace(ns: &str, names: &[(&str, IpAddr)]) -> Hosts {
        let dir = Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = Hosts { dir };
        let mut text = String::from("127.0.0.1 localhost\n");
        for (name, ip) in names {
            text.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(hosts.dir.join("hosts"), text).unwrap();
        hosts
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The network tools' examples, in a namespace standing for the pod they run in.
fn network_examples(tool: &str) -> usize {
    let mut lab = Lab::new("he");
    let pod = lab.namespace("p");
    let _hosts = Hosts::for_namespace(
        &pod,
        &[
            ("auth-service", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 30))),
            ("redis", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 31))),
        ],
    );
    let state = tempfile::tempdir().unwrap();
    run_examples(tool, state.path(), |args| {
        let mut cmd = lab.command(&pod, common::bin(tool));
        cmd.args(args);
        cmd
    })
}

#[test]
fn root_net_partition_examples_plan_in_a_pod_that_resolves_the_services() {
    common::require_root("a network namespace with its own /etc/hosts; nft for --cleanup");
    assert!(network_examples("net-partition") >= 3);
}

#[test]
fn root_latency_injector_examples_plan_in_a_pod_that_resolves_the_services() {
    common::require_root("a network namespace with its own /etc/hosts; nft for --cleanup");
    assert!(network_examples("latency-injector") >= 4);
}

#[test]
fn pod_killer_examples_plan_against_the_lomash_wood_cluster() {
    let lab = KubeLab::lomash_wood().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ran = run_examples("pod-killer", state.path(), |args| {
        let mut cmd = Command::new(common::bin("pod-killer"));
        cmd.arg("--kubeconfig").arg(&lab.kubeconfig).args(args);
        cmd.env_remove("CHAOS_NAMESPACE");
        cmd
    });
    assert!(ran >= 4, "{ran} examples");
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
