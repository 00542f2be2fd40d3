//! cgroup v1 directories created by a test and removed when it ends, even on failure
//! (processes still inside are killed first).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const MIB: f64 = 1_048_576.0;

pub struct TestCgroup {
    pub dir: PathBuf,
}

impl TestCgroup {
    /// A fresh `/sys/fs/cgroup/<controller>/chaos-test-<pid>-<n>`.
    pub fn create(controller: &str) -> TestCgroup {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "chaos-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = Path::new("/sys/fs/cgroup").join(controller).join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TestCgroup { dir }
    }

    pub fn path(&self) -> &str {
        self.dir
            .to_str()
            .unwrap_or_else(|| panic!("non-UTF-8 path {}", self.dir.display()))
    }

    pub fn write(&self, file: &str, value: &str) {
        let path = self.dir.join(file);
        fs::write(&path, value)
            .unwrap_or_else(|e| panic!("write {value} to {}: {e}", path.display()));
    }

    pub fn read(&self, file: &str) -> String {
        let path = self.dir.join(file);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    pub fn read_u64(&self, file: &str) -> u64 {
        let text = self.read(file);
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{file} is not a number ({e}): {text}"))
    }

    pub fn pids(&self) -> Vec<i32> {
        self.read("cgroup.procs")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// memory controller: current usage in MiB.
    pub fn usage_mb(&self) -> f64 {
        self.read_u64("memory.usage_in_bytes") as f64 / MIB
    }

    /// memory controller: the kernel's OOM-kill counter for this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let text = self.read("memory.oom_control");
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no oom_kill counter in {text:?}"))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let procs = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() || Instant::now() > deadline
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
