//! The toy experiment (fixtures/toy-runbook.sh) against a stand-in service: how the
//! runbook tests start it and read what it left.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::standin::StandIn;

pub const PLACEHOLDER_LOG: &str = "# Results\n\n| Date | Experiment | Environment | Result | Notes |\n|------|-----------|-------------|--------|-------|\n| — | TOY-001 | Development | — | Pending first run |\n";

pub struct Toy {
    pub dir: tempfile::TempDir,
    pub standin: StandIn,
    pub mode_file: PathBuf,
    pub log: PathBuf,
    pub results: PathBuf,
    /// Extra directory put first on PATH (stand-in commands such as kubectl).
    pub path_dir: PathBuf,
}

impl Toy {
    pub fn new(latch: bool) -> Toy {
        let dir = tempfile::tempdir().unwrap();
        let mode_file = dir.path().join("mode");
        let standin = StandIn::start(Some(mode_file.clone()), latch);
        let log = dir.path().join("results.md");
        std::fs::write(&log, PLACEHOLDER_LOG).unwrap();
        let path_dir = dir.path().join("bin");
        std::fs::create_dir(&path_dir).unwrap();
        Toy {
            results: dir.path().join("results"),
            dir,
            standin,
            mode_file,
            log,
            path_dir,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let script = super::repo().join("chaos-verdict/tests/fixtures/toy-runbook.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .args(["--mode-file", self.mode_file.to_str().unwrap()])
            .args(["--result-log", self.log.to_str().unwrap()])
            .args(["--results-dir", self.results.to_str().unwrap()])
            .args(["--environment", "development"])
            .args(args)
            .env("BASE_URL", &self.standin.url)
            .env("CHAOS_VERDICT", super::bin())
            .env(
                "CHAOS_BIN_DIR",
                super::repo().join("chaos-verdict/tests/fixtures/bin"),
            )
            .env("TOY_STATE_DIR", self.dir.path().join("toy-state"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.path_dir.display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env_remove("CHAOS_ENVIRONMENT")
            .env_remove("CHAOS_RESULT_LOG")
            .env_remove("CHAOS_PROTECTED_NAMESPACES")
            .current_dir(self.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Started in its own process group, as a terminal would run it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn mode(&self) -> String {
        std::fs::read_to_string(&self.mode_file)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Waits (polling, bounded) until the mode file says `prefix...`.
    pub fn wait_for_mode(&self, prefix: &str, within: Duration) {
        let start = Instant::now();
        while !self.mode().starts_with(prefix) {
            assert!(
                start.elapsed() < within,
                "the fault never applied (mode '{}')",
                self.mode()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The one run directory the run created.
    pub fn run_dir(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(&self.results)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }

    pub fn result(&self) -> serde_json::Value {
        super::result_json(&self.run_dir())
    }

    pub fn timeline(&self) -> String {
        std::fs::read_to_string(self.run_dir().join("timeline.tsv")).unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Writes an executable stand-in command into the PATH directory.
    pub fn stand_in_command(&self, name: &str, script: &str) -> PathBuf {
        let path = self.path_dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        path
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
