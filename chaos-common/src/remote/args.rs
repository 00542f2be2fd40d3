//! The remote flag group every remote-capable tool flattens into its clap struct, and
//! its validation into a [`Selection`] plus [`Settings`].
//!
//! Every field is an `Option` (defaults are applied here, not by clap) so that "given on
//! the command line" is visible in the struct: a remote-only flag given in local mode is
//! bad input. `--image` is the exception: it also comes from `CHAOS_IMAGE`, which may be
//! set for every run.
//!
//! Per-tool spellings are adjusted with clap's `mut_arg` on the tool's struct
//! (net-partition's `-s, --source-service`, latency-injector's selector without `-l`).

use std::path::PathBuf;

use clap::Args;

use crate::error::{ChaosError, Result};
use crate::kube::selector;

/// The namespace of the originals, when nothing else names one
/// ([`crate::kube::namespace`]).
pub const DEFAULT_NAMESPACE: &str = crate::kube::namespace::DEFAULT_NAMESPACE;
/// The platform's writable emptyDir.
pub const DEFAULT_REMOTE_DIR: &str = "/tmp";
/// Pods worked on at once.
pub const DEFAULT_MAX_PARALLEL: usize = 10;
/// The debug image's repository (`scripts/build-image.sh`); the tag is the version.
pub const IMAGE_REPOSITORY: &str = "lomash-wood/chaos-tools";

/// Remote mode: run this tool inside the target pods (docs/remote.md).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Remote mode (run inside pods; docs/remote.md)")]
pub struct RemoteArgs {
    /// Remote mode: the Running pods labelled app=SERVICE.
    #[arg(short = 's', long = "service", value_name = "SERVICE")]
    pub service: Option<String>,

    /// Remote mode: this pod, NAME or pod/NAME as `kubectl get -o name` prints it
    /// (repeatable).
    #[arg(long = "pod", value_name = "NAME|pod/NAME")]
    pub pods: Vec<String>,

    /// Remote mode: the Running pods matching this label selector.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Remote mode: the Running pods of this Deployment.
    #[arg(long = "deployment", value_name = "NAME")]
    pub deployment: Option<String>,

    /// Namespace of the target pods [default: CHAOS_NAMESPACE, else the kubeconfig
    /// context's, else lomash-wood].
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,

    /// Kubeconfig context (default: the current one).
    #[arg(long = "context", value_name = "NAME")]
    pub context: Option<String>,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long = "kubeconfig", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Container to act in (default: the pod's kubectl.kubernetes.io/default-container
    /// annotation, else its first container).
    #[arg(long = "container", value_name = "NAME")]
    pub container: Option<String>,

    /// At most N pods: the first N matching pods by name (the whole match by default).
    #[arg(long = "max-pods", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pods: Option<u32>,

    /// Pods worked on at once [default: 10].
    #[arg(long = "max-parallel", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_parallel: Option<u32>,

    /// Writable, executable directory in the container the binary is copied to (exec
    /// delivery: cpu-hog, memory-leak) [default: /tmp].
    #[arg(long = "remote-dir", value_name = "DIR")]
    pub remote_dir: Option<String>,

    /// Debug image of the ephemeral container (net-partition, latency-injector)
    /// [default: lomash-wood/chaos-tools:VERSION].
    #[arg(long = "image", env = "CHAOS_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,

    /// Also refuse to start, and stop, while a ConfigMap chaos-freeze exists in this
    /// namespace (it is always checked in the target namespace).
    #[arg(long = "freeze-namespace", value_name = "NS")]
    pub freeze_namespace: Option<String>,
}

/// Which pods the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `-s NAME`: label `app=NAME`.
    Service(String),
    /// `--pod NAME` (repeatable), in the order given, without duplicates.
    Pods(Vec<String>),
    /// `--selector EXPR`.
    Selector(String),
    /// `--deployment NAME`: its own selector.
    Deployment(String),
    /// The pods behind a Service's selector (latency-injector's `-n NS --target NAME`).
    Backends(String),
}

impl Selection {
    /// How the plan names it.
    pub fn describe(&self) -> String {
        match self {
            Selection::Service(s) => format!("the Running pods labelled app={s}"),
            Selection::Pods(p) => format!("pod {}", p.join(", pod ")),
            Selection::Selector(s) => format!("the Running pods matching '{s}'"),
            Selection::Deployment(d) => format!("the Running pods of deployment/{d}"),
            Selection::Backends(s) => format!("the Running pods behind service/{s}"),
        }
    }
}

/// The remote flags, validated, with their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub selection: Selection,
    pub namespace: String,
    pub context: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub container: Option<String>,
    pub max_pods: Option<usize>,
    pub max_parallel: usize,
    pub remote_dir: String,
    /// `--image`, `CHAOS_IMAGE`, or `lomash-wood/chaos-tools:<version>`.
    pub image: String,
    /// Where the freeze switch is looked for: the target namespace, then
    /// `--freeze-namespace` if it differs.
    pub freeze_namespaces: Vec<String>,
}

/// A DNS-1123 label (Services, Deployments, containers).
pub fn check_label(flag: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ChaosError::bad_input(format!(
            "{flag} '{value}' is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)"
        )))
    }
}

/// `NAME`, `pod/NAME` or `pods/NAME` (what `kubectl get pod -o name` prints): the name,
/// a DNS-1123 subdomain.
pub fn pod_name(value: &str) -> Result<String> {
    let value = value.trim();
    let name = value
        .strip_prefix("pod/")
        .or_else(|| value.strip_prefix("pods/"))
        .unwrap_or(value);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ChaosError::bad_input(format!(
            "--pod '{value}' is not a pod name (NAME or pod/NAME, lowercase letters, digits, '-' and '.')"
        )))
    }
}

impl RemoteArgs {
    /// True when a flag that selects pods is given: the run is remote.
    pub fn selects_pods(&self) -> bool {
        self.service.is_some()
            || !self.pods.is_empty()
            || self.selector.is_some()
            || self.deployment.is_some()
    }

    /// The remote-only flags given (for the local-mode refusal), by their long names.
    pub fn given_flags(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        let flags: [(&'static str, bool); 8] = [
            ("--namespace", self.namespace.is_some()),
            ("--context", self.context.is_some()),
            ("--kubeconfig", self.kubeconfig.is_some()),
            ("--container", self.container.is_some()),
            ("--max-pods", self.max_pods.is_some()),
            ("--max-parallel", self.max_parallel.is_some()),
            ("--remote-dir", self.remote_dir.is_some()),
            ("--freeze-namespace", self.freeze_namespace.is_some()),
        ];
        for (flag, is_given) in flags {
            if is_given {
                given.push(flag);
            }
        }
        given
    }

    /// Local mode: refuses remote-only flags given without a pod selection.
    pub fn check_local(&self, tool: &str) -> Result<()> {
        match self.given_flags().as_slice() {
            [] => Ok(()),
            flags => Err(ChaosError::bad_input(format!(
                "{} only apply in remote mode: add -s/--service, --pod, --selector or --deployment \
                 to run {tool} inside pods (docs/remote.md)",
                flags.join(", ")
            ))),
        }
    }

    /// The selection the flags make (exactly one kind), validated.
    pub fn selection(&self) -> Result<Option<Selection>> {
        let kinds = [
            self.service.is_some(),
            !self.pods.is_empty(),
            self.selector.is_some(),
            self.deployment.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(ChaosError::bad_input(
                "choose the pods one way: -s/--service, --pod, --selector or --deployment",
            ));
        }
        if let Some(s) = &self.service {
            check_label("--service", s)?;
            return Ok(Some(Selection::Service(s.clone())));
        }
        if let Some(d) = &self.deployment {
            check_label("--deployment", d)?;
            return Ok(Some(Selection::Deployment(d.clone())));
        }
        if let Some(l) = &self.selector {
            let l = l.trim();
            selector::validate(l).map_err(|why| {
                ChaosError::bad_input(format!(
                    "--selector '{l}' is not a valid label selector: {why} (e.g. app=product-service)"
                ))
            })?;
            return Ok(Some(Selection::Selector(l.to_owned())));
        }
        if !self.pods.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for p in &self.pods {
                let name = pod_name(p)?;
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            return Ok(Some(Selection::Pods(names)));
        }
        Ok(None)
    }

    /// Validates every remote flag for `selection`; `version` names the default image.
    pub fn settings(&self, selection: Selection, version: &str) -> Result<Settings> {
        if let Some(path) = self.kubeconfig.as_ref().filter(|p| !p.is_file()) {
            return Err(ChaosError::bad_input(format!(
                "--kubeconfig {}: no such file",
                path.display()
            )));
        }
        // The same choice as every tool that reaches the cluster (pod-killer): -n, else
        // CHAOS_NAMESPACE, else the kubeconfig context's, else in-cluster, else lomash-wood.
        let client = crate::kube::ClientOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        };
        let (namespace, _) = crate::kube::namespace::choose(self.namespace.as_deref(), &client)?;
        if let Some(c) = &self.container {
            check_label("--container", c)?;
        }
        let remote_dir = self
            .remote_dir
            .clone()
            .unwrap_or_else(|| DEFAULT_REMOTE_DIR.to_owned());
        check_remote_dir(&remote_dir)?;
        let image = match &self.image {
            Some(i) => check_image(i)?,
            None => default_image(version),
        };
        let freeze_namespaces =
            crate::kube::freeze::namespaces(&namespace, self.freeze_namespace.as_deref())?;
        Ok(Settings {
            selection,
            namespace,
            context: self.context.clone(),
            kubeconfig: self.kubeconfig.clone(),
            container: self.container.clone(),
            max_pods: self.max_pods.and_then(|n| usize::try_from(n).ok()),
            max_parallel: self
                .max_parallel
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(DEFAULT_MAX_PARALLEL),
            remote_dir,
            image,
            freeze_namespaces,
        })
    }
}

/// `lomash-wood/chaos-tools:<version>` (the version without build metadata).
pub fn default_image(version: &str) -> String {
    let tag = version.split('+').next().unwrap_or(version);
    format!("{IMAGE_REPOSITORY}:{tag}")
}

/// An absolute, normalised path without anything a shell or tar could read differently.
fn check_remote_dir(dir: &str) -> Result<()> {
    let ok = dir.starts_with('/')
        && dir.len() <= 200
        && !dir.split('/').any(|part| part == "." || part == "..")
        && dir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ChaosError::bad_input(format!(
            "--remote-dir '{dir}' must be an absolute path of letters, digits, '/', '-', '_' and '.' \
             (no '..'), e.g. /tmp"
        )))
    }
}

/// An image reference: no spaces or control characters, at most 512 characters.
fn check_image(image: &str) -> Result<String> {
    let image = image.trim();
    let ok = !image.is_empty()
        && image.len() <= 512
        && image.bytes().all(|b| b.is_ascii_graphic())
        && !image.starts_with('-');
    if ok {
        Ok(image.to_owned())
    } else {
        Err(ChaosError::bad_input(format!(
            "--image / CHAOS_IMAGE '{image}' is not an image reference (e.g. registry.example/lomash-wood/chaos-tools:0.1.0)"
        )))
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
