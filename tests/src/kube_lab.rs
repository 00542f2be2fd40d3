//! A test server plus kubeconfigs on disk, and helpers to run the real kubectl against
//! it, as the admin (client certificate, system:masters) or as a ServiceAccount whose
//! RBAC was applied with `kubectl apply` and whose token came from `kubectl create token`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::kube_server::{BackgroundServer, Builder, Control, Fixture};

pub struct KubeLab {
    pub server: BackgroundServer,
    pub dir: PathBuf,
    /// The admin kubeconfig (context namespace lomash-wood).
    pub kubeconfig: PathBuf,
}

/// The repository's `docs/rbac.yaml`.
pub fn rbac_yaml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rbac.yaml")
}

impl KubeLab {
    /// Starts a server for `fixture` and writes its admin kubeconfig.
    pub fn start(fixture: Fixture) -> anyhow::Result<KubeLab> {
        KubeLab::start_built(Builder::new(fixture))
    }

    pub fn start_built(builder: Builder) -> anyhow::Result<KubeLab> {
        let server = BackgroundServer::start_built(builder)?;
        let dir = std::env::temp_dir().join(format!(
            "kube-lab-{}-{}",
            std::process::id(),
            server.addr.port()
        ));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, "lomash-wood")?;
        Ok(KubeLab {
            server,
            dir,
            kubeconfig,
        })
    }

    /// The platform fixture.
    pub fn lomash_wood() -> anyhow::Result<KubeLab> {
        KubeLab::start(Fixture::lomash_wood()?)
    }

    /// A fixture given inline (YAML).
    pub fn from_yaml(yaml: &str) -> anyhow::Result<KubeLab> {
        KubeLab::start(Fixture::from_yaml(yaml)?)
    }

    pub fn control(&self) -> &Control {
        &self.server.control
    }

    /// kubectl with `kubeconfig` and a discovery cache of this lab's own.
    pub fn kubectl_with(&self, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env_remove("KUBERNETES_SERVICE_HOST");
        cmd
    }

    /// kubectl as the admin.
    pub fn kubectl_command(&self) -> Command {
        self.kubectl_with(&self.kubeconfig)
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        let mut cmd = self.kubectl_command();
        cmd.args(args);
        run(cmd, args)
    }

    /// kubectl as the user of `kubeconfig`.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut cmd = self.kubectl_with(kubeconfig);
        cmd.args(args);
        run(cmd, args)
    }

    /// `kubectl ARGS -o json`, parsed; panics with stderr when kubectl fails.
    pub fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all);
        assert!(
            out.status.success(),
            "kubectl {all:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("kubectl {all:?} printed no JSON: {e}"))
    }

    /// Names of the pods selected by `selector` in lomash-wood.
    pub fn pod_names(&self, selector: &str) -> Vec<String> {
        let list = self.kubectl_json(&["get", "pods", "-l", selector]);
        list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applies `rbac` with `kubectl apply`, asks `kubectl create token SA -n NS` for a
    /// token and writes a kubeconfig that uses it; returns the kubeconfig's path.
    pub fn service_account_kubeconfig(
        &self,
        rbac: &Path,
        namespace: &str,
        account: &str,
    ) -> PathBuf {
        let file = rbac.to_string_lossy().into_owned();
        let out = self.kubectl(&["apply", "-f", &file]);
        assert!(
            out.status.success(),
            "kubectl apply -f {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.kubectl(&["create", "token", account, "-n", namespace, "--duration=1h"]);
        assert!(
            out.status.success(),
            "kubectl create token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(!token.is_empty(), "kubectl create token printed no token");
        let user = format!("system:serviceaccount:{namespace}:{account}");
        let path = self.dir.join(format!("kubeconfig-{namespace}-{account}"));
        let text = self
            .control()
            .token_kubeconfig(self.server.addr, namespace, &user, &token);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run kubectl {args:?} (install kubectl, Debian package kubernetes-client): {e}"
        )
    })
}

/// Polls `check` every 20 ms until it returns Some, at most `timeout`; panics naming
/// `what` otherwise.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for KubeLab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
