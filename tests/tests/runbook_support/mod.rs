//! Support for the runbooks' end-to-end tests on the lab (docs/runbooks.md, "Tests"): a
//! lab of the test's own, the EXP runbooks run against it with real k6 and windows of
//! seconds, their results read back, and what must hold after every run: nothing of the
//! run still running, the platform as it was.
#![allow(dead_code)]

pub mod lab;
pub mod remote;
pub mod run;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;

pub use lab::Lab;
pub use run::Run;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's debug binaries (the tools, chaos-verdict, lab-stripe).
pub fn bin_dir() -> PathBuf {
    let dir = super::common::bin_dir();
    for tool in ["chaos-verdict", "pod-killer", "lab-stripe"] {
        assert!(
            dir.join(tool).is_file(),
            "{tool} is not built in {}: run `cargo build --workspace --bins` first (scripts/test.sh does)",
            dir.display()
        );
    }
    dir
}

/// Against the badly-behaved stand-ins the abort guard would stop most runs (their error
/// rates are far above 10%) and the result would be ABORTED; these flags keep it out of
/// the way so that the run reaches its verdict (600 breaches in a row: ten minutes, longer
/// than any of these runs; the most chaos-verdict accepts).
pub const GUARD_AWAY: [&str; 2] = ["--guard-breaches", "600"];

/// The seed's result log, as a team starts it: one placeholder row per experiment.
pub const SEED_LOG: &str = "# Chaos Test Result Log\n\n\
| Date | Experiment | Environment | Result | Notes |\n\
|------|-----------|-------------|--------|-------|\n\
| — | EXP-001 | Staging | — | Pending first run |\n\
| — | EXP-002 | Staging | — | Pending first run |\n\
| — | EXP-003 | Staging | — | Pending first run |\n\
| — | EXP-004 | Staging | — | Pending first run |\n\
| — | EXP-005 | Staging | — | Pending first run |\n\
| — | EXP-006 | Staging | — | Pending first run |\n\
| — | EXP-007 | Staging | — | Pending first run |\n\
| — | EXP-008 | Production | — | Scheduled post-launch |\n\
| — | EXP-009 | Staging | — | Scheduled post-launch |\n";

/// Where a test's runbook runs go: a result log and a results directory of its own.
pub struct Runs<'a> {
    pub lab: &'a Lab,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub results: PathBuf,
    /// Set on every run after the defaults (stand-ins on PATH, their settings).
    pub env: Vec<(String, String)>,
}

impl<'a> Runs<'a> {
    pub fn new(lab: &'a Lab) -> Runs<'a> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("chaos-results.md");
        std::fs::write(&log, SEED_LOG).unwrap();
        Runs {
            lab,
            log,
            results: dir.path().join("results"),
            dir,
            env: Vec::new(),
        }
    }

    /// `scripts/runbooks/SCRIPT --run-id ID ARGS` against the lab.
    pub fn command(&self, script: &str, run_id: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(root().join("scripts/runbooks").join(script));
        cmd.args(["--run-id", run_id])
            .args(["--result-log", self.log.to_str().unwrap()])
            .args(["--results-dir", self.results.to_str().unwrap()])
            .args(args)
            .env("KUBECONFIG", &self.lab.kubeconfig)
            .env("BASE_URL", &self.lab.base_url)
            .env("CHAOS_BIN_DIR", bin_dir())
            .env("CHAOS_VERDICT", bin_dir().join("chaos-verdict"))
            .env_remove("CHAOS_ENVIRONMENT")
            .env_remove("CHAOS_RESULT_LOG")
            .env_remove("CHAOS_PROTECTED_NAMESPACES")
            .env_remove("RATE")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn run(&self, script: &str, run_id: &str, args: &[&str]) -> Run {
        let t0 = Instant::now();
        let out = self.command(script, run_id, args).output().unwrap();
        eprintln!(
            "{script} {run_id}: exit {:?} after {:.1} s",
            out.status.code(),
            t0.elapsed().as_secs_f64()
        );
        self.finished(run_id, &out)
    }

    /// A run whose stdin is `input` (an operator's answers to a guided procedure).
    pub fn run_input(&self, script: &str, run_id: &str, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(script, run_id, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_owned();
        let writer = std::thread::spawn(move || {
            // The runbook may stop reading early (a halted procedure): a broken pipe is fine.
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        eprintln!("{script} {run_id}: exit {:?}", out.status.code());
        self.finished(run_id, &out)
    }

    /// Started in its own process group, as from a terminal (Ctrl-C reaches the group).
    pub fn spawn(&self, script: &str, run_id: &str, args: &[&str]) -> Child {
        self.command(script, run_id, args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Ctrl-C (SIGINT to the process group) once `applied` says the fault is in place;
    /// the run must end ABORTED by the operator with every process of the run gone.
    pub fn interrupt(
        &self,
        script: &str,
        run_id: &str,
        args: &[&str],
        applied: impl Fn() -> bool,
    ) -> Run {
        let child = self.spawn(script, run_id, args);
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        let deadline = Instant::now() + Duration::from_secs(120);
        while !applied() {
            assert!(
                Instant::now() < deadline,
                "{script}: the fault never applied"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{script} {run_id}: fault in place, Ctrl-C");
        killpg(pid, Signal::SIGINT).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            killpg(pid, None).is_err(),
            "{script}: a process of the run outlived it"
        );
        let run = self.finished(run_id, &out);
        run.expect("ABORTED");
        assert_eq!(run.result["abort"]["by"], "operator", "{}", run.out);
        run
    }

    fn finished(&self, run_id: &str, out: &Output) -> Run {
        let text = format!(
            "--- stdout\n{}--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = self
            .run_dir(run_id)
            .unwrap_or_else(|| panic!("no run directory for {run_id}:\n{text}"));
        let result = result_json(&dir, &text);
        assert_nothing_of_the_run_left(run_id);
        Run {
            code: out.status.code(),
            out: text,
            dir,
            result,
        }
    }

    pub fn run_dir(&self, run_id: &str) -> Option<PathBuf> {
        std::fs::read_dir(&self.results)
            .ok()?
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(&format!("-{run_id}")))
    }

    /// The timeline of a run still going (empty before it exists).
    pub fn timeline(&self, run_id: &str) -> String {
        self.run_dir(run_id)
            .and_then(|d| std::fs::read_to_string(d.join("timeline.tsv")).ok())
            .unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// The result log's row of this run.
    pub fn row(&self, run_id: &str) -> String {
        let log = self.log_text();
        log.lines()
            .find(|l| l.contains(&format!("run {run_id}")))
            .unwrap_or_else(|| panic!("no row of {run_id} in the result log:\n{log}"))
            .to_owned()
    }
}

/// No process of the run is left: none whose command line names its run id (the tools
/// get `--run-id RUNID-NAME`, k6 writes into the run's directory).
pub fn assert_nothing_of_the_run_left(run_id: &str) {
    let me = std::process::id().to_string();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(run_id) {
            left.push(format!("{name}: {cmdline}"));
        }
    }
    assert!(left.is_empty(), "processes of run {run_id} left: {left:#?}");
}

/// result.json of a run directory, validated against docs/verdict.schema.json.
pub fn result_json(dir: &Path, context: &str) -> Value {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let text = std::fs::read_to_string(dir.join("result.json"))
        .unwrap_or_else(|e| panic!("{}: no result.json ({e}):\n{context}", dir.display()));
    let value: Value = serde_json::from_str(&text).unwrap();
    let schema = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("docs/verdict.schema.json")).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap())
            .unwrap_or_else(|e| panic!("docs/verdict.schema.json is invalid: {e}"))
    });
    let errors: Vec<String> = schema
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result.json does not match docs/verdict.schema.json:\n{}",
        errors.join("\n")
    );
    value
}

pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}
