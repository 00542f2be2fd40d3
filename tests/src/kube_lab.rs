//! A test server plus a kubeconfig on disk, and helpers to run kubectl against it.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::kube_server::{BackgroundServer, Fixture};

pub struct KubeLab {
    pub server: BackgroundServer,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

impl KubeLab {
    /// Starts a server for `fixture` and writes its kubeconfig (context namespace lomash-wood).
    pub fn start(fixture: Fixture) -> anyhow::Result<KubeLab> {
        let server = BackgroundServer::start(fixture)?;
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

    /// The platform fixture, or a YAML fixture given inline.
    pub fn lomash_wood() -> anyhow::Result<KubeLab> {
        KubeLab::start(Fixture::lomash_wood()?)
    }

    pub fn from_yaml(yaml: &str) -> anyhow::Result<KubeLab> {
        KubeLab::start(Fixture::from_yaml(yaml)?)
    }

    /// A kubectl command with this lab's kubeconfig.
    pub fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST");
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        let mut cmd = self.kubectl_command();
        cmd.args(args);
        cmd.output().unwrap_or_else(|e| panic!("cannot run kubectl {args:?} (install kubectl, Debian package kubernetes-client): {e}"))
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
}

impl Drop for KubeLab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
