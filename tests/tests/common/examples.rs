//! Running the command examples a person reads (in `--help`, README.md and docs/) the
//! way they would, with `--dry-run`, in the setting the examples are written for:
//! product-service's pod (limits cpu 500m, memory 512Mi, as deployed) as
//! cgroups the test makes; a pod network namespace whose /etc/hosts knows the services
//! the examples name; the Lomash Wood cluster (the Kubernetes API test server).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use chaos_tests::kube_lab::KubeLab;
use serde_json::Value;

use super::cgroup::TestCgroup;
use super::netlab::Lab;

/// The service names the examples use, as a pod in the cluster resolves them.
const SERVICES: [(&str, Ipv4Addr); 3] = [
    ("auth-service", Ipv4Addr::new(198, 51, 100, 30)),
    (
        "auth-service.lomash-wood.svc.cluster.local",
        Ipv4Addr::new(198, 51, 100, 30),
    ),
    ("redis", Ipv4Addr::new(198, 51, 100, 31)),
];

/// The commands of a text (`\` at a line's end continues the command on the next line,
/// `# ...` after a command is a comment); `tool` commands only. An error for a line of
/// `strict` text that is neither a comment nor a command (a wrapped `--help` line).
pub fn commands_in(tool: &str, lines: &[&str], strict: bool) -> Result<Vec<String>, String> {
    let mut commands = Vec::new();
    let mut pending: Option<String> = None;
    for line in lines {
        let text = line.split(" #").next().unwrap_or_default().trim();
        let joined = match pending.take() {
            Some(start) => format!("{start} {text}"),
            None if text.is_empty() || line.trim().starts_with('#') => continue,
            None if text.starts_with(&format!("{tool} ")) || text == tool => text.to_owned(),
            None if strict => {
                return Err(format!(
                    "an example line that is neither a comment nor a command (wrapped?): {line:?}"
                ));
            }
            None => continue,
        };
        match joined.strip_suffix('\\') {
            Some(start) => pending = Some(start.trim_end().to_owned()),
            None => commands.push(joined),
        }
    }
    if pending.is_some() {
        return Err("the last example ends with '\\'".into());
    }
    if let Some(c) = commands
        .iter()
        .find(|c| c.contains(['"', '\'', '$', '|', ';', '<', '>', '`']))
    {
        return Err(format!("an example needs a shell to read: {c}"));
    }
    Ok(commands)
}

/// /etc/netns/NS/hosts, which `ip netns exec NS` mounts over /etc/hosts. Removed on drop.
struct Hosts {
    dir: PathBuf,
}

impl Hosts {
    fn for_namespace(ns: &str) -> Hosts {
        let dir = Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = Hosts { dir };
        let mut text = String::from("127.0.0.1 localhost\n");
        for (name, ip) in SERVICES {
            text.push_str(&format!("{} {name}\n", IpAddr::V4(ip)));
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

enum Place {
    /// Inside these cgroups (a tiny sh joins them, then execs the tool).
    Cgroups(Vec<TestCgroup>),
    Pod {
        lab: Lab,
        ns: String,
        _hosts: Hosts,
    },
    Cluster(KubeLab),
}

/// Where one tool's examples run, and their state directory; all removed on drop.
pub struct Setting {
    tool: &'static str,
    place: Place,
    state: tempfile::TempDir,
    /// Paths an example names that the test stands in for (the doc's cgroup).
    substitutes: Vec<(String, String)>,
}

impl Setting {
    /// The setting the tool's examples are written for. Needs root except pod-killer's.
    pub fn for_tool(tool: &'static str) -> Setting {
        let place = match tool {
            "cpu-hog" => {
                let cpu = TestCgroup::create("cpu");
                cpu.write("cpu.cfs_period_us", "100000");
                cpu.write("cpu.cfs_quota_us", "50000");
                Place::Cgroups(vec![cpu])
            }
            "memory-leak" => {
                let memory = TestCgroup::create("memory");
                memory.write("memory.limit_in_bytes", &(512u64 << 20).to_string());
                Place::Cgroups(vec![memory])
            }
            "net-partition" | "latency-injector" => {
                let mut lab = Lab::new("ex");
                let ns = lab.namespace("p");
                // An interface up beside loopback, as a pod's eth0 (latency-injector's
                // no-target form delays what leaves through it).
                let peer = lab.namespace("q");
                lab.link(&ns, &peer);
                let hosts = Hosts::for_namespace(&ns);
                Place::Pod {
                    lab,
                    ns,
                    _hosts: hosts,
                }
            }
            "pod-killer" => Place::Cluster(KubeLab::lomash_wood().unwrap()),
            other => panic!("no setting for {other}"),
        };
        let mut setting = Setting {
            tool,
            place,
            state: tempfile::tempdir().unwrap(),
            substitutes: Vec::new(),
        };
        if tool == "memory-leak" {
            // docs/memory-leak.md's EXP-006 cgroup, made by the operator beforehand.
            let exp006 = TestCgroup::create("memory");
            exp006.write("memory.limit_in_bytes", &(512u64 << 20).to_string());
            setting.substitutes.push((
                "/sys/fs/cgroup/memory/exp006".into(),
                exp006.path().to_owned(),
            ));
            if let Place::Cgroups(cgroups) = &mut setting.place {
                cgroups.push(exp006);
            }
        }
        setting
    }

    fn command(&self, args: &[String]) -> Command {
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                self.substitutes
                    .iter()
                    .find(|(from, _)| a == from)
                    .map_or_else(|| a.clone(), |(_, to)| to.clone())
            })
            .collect();
        let mut cmd = match &self.place {
            Place::Cgroups(cgroups) => {
                let script = r#"echo $$ > "$1/cgroup.procs" || exit 97; shift; exec "$@""#;
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(script).arg("sh").arg(&cgroups[0].dir);
                cmd.arg(super::bin(self.tool)).args(args);
                cmd
            }
            Place::Pod { lab, ns, .. } => {
                let mut cmd = lab.command(ns, super::bin(self.tool));
                cmd.args(args);
                cmd
            }
            Place::Cluster(kube) => {
                let mut cmd = Command::new(super::bin(self.tool));
                cmd.arg("--kubeconfig").arg(&kube.kubeconfig).args(args);
                cmd.env_remove("CHAOS_NAMESPACE");
                cmd
            }
        };
        cmd.env("CHAOS_STATE_DIR", self.state.path())
            .env("NO_COLOR", "1")
            .current_dir(self.state.path());
        cmd
    }

    /// Runs one example (`args`: without the tool's name) and checks its answer: a dry
    /// run plans (exit 0, a valid `dry-run` report); `--stop RUN_ID` answers that the id
    /// never ran here (exit 2, with its report); `--version` and `summary FILE` (of a
    /// dry run's report saved as FILE) print and exit 0. `source` names the example.
    pub fn check(&self, source: &str, args: &[String]) {
        let first = args.first().map(String::as_str);
        if first == Some("--version") || first == Some("summary") {
            if let (Some("summary"), Some(file)) = (first, args.get(1)) {
                let plan = self.run(source, &[], false);
                std::fs::write(self.state.path().join(file), plan.to_string()).unwrap();
            }
            let out = super::run(&mut self.command(args));
            assert!(out.status.success(), "{source}: {args:?}: {out:?}");
            assert!(!out.stdout.is_empty(), "{source}: {args:?} printed nothing");
            return;
        }
        let stop = args.iter().any(|a| a == "--stop");
        let report = self.run(source, args, stop);
        if stop {
            assert_eq!(report["action"], "stop", "{source}: {report:#}");
            let message = report["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("none ended here"), "{source}: {message}");
        }
    }

    /// Whether `report` is latency-injector's refusal of the netem engine on a kernel
    /// without sch_netem, and `tc` confirms that this kernel cannot add a netem qdisc.
    fn netem_missing(&self, report: &Value) -> bool {
        let refused = self.tool == "latency-injector"
            && report["result"] == "bad-input"
            && report["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("the kernel has no sch_netem"));
        let Place::Pod { lab, ns, .. } = &self.place else {
            return false;
        };
        if !refused {
            return false;
        }
        let tried = lab.exec(
            ns,
            &[
                "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "netem", "delay", "1ms",
            ],
        );
        if tried.status.success() {
            lab.exec(ns, &["tc", "qdisc", "del", "dev", "lo", "root"]);
            panic!(
                "latency-injector said the kernel has no sch_netem, but tc added one: {report:#}"
            );
        }
        String::from_utf8_lossy(&tried.stderr).contains("kind is unknown")
    }

    /// Runs `args` (plus `--dry-run` unless `live`, and `--output json` unless given);
    /// returns the valid report after checking the exit code (2 for a live `--stop`).
    fn run(&self, source: &str, args: &[String], live: bool) -> Value {
        let mut argv = args.to_vec();
        if !live && !args.iter().any(|a| a == "--dry-run") {
            argv.push("--dry-run".into());
        }
        if !args
            .iter()
            .any(|a| a == "--output" || a.starts_with("--output="))
        {
            argv.extend(["--output".into(), "json".into()]);
        }
        let out = super::run(&mut self.command(&argv));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tool = self.tool;
        let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("{source}: {tool} {argv:?}: no JSON report ({e}):\n{stdout}\nstderr:\n{stderr}")
        });
        super::assert_valid_report(&report);
        if !live && self.netem_missing(&report) {
            // The kernel has no sch_netem (this CI host): an example that needs the netem
            // engine ends with exactly this refusal, exit 2, and plans on a kernel with it.
            assert_eq!(out.status.code(), Some(2), "{source}: {argv:?}: {report:#}");
            return report;
        }
        let expected = if live { 2 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{source}: {tool} {argv:?}:\n{stderr}\n{report:#}"
        );
        if !live {
            assert_eq!(
                report["result"], "dry-run",
                "{source}: {argv:?}: {report:#}"
            );
        }
        report
    }
}
