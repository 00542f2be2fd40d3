//! Which namespace a run acts in, as kubectl users expect: `-n/--namespace`, else
//! `CHAOS_NAMESPACE`, else the namespace of the kubeconfig context in use (`--context`,
//! else the current context; `--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`),
//! else, with no kubeconfig inside a pod, the pod's own namespace (its service account's
//! `namespace` file, as kubectl does), else `lomash-wood` (the originals' default).
//!
//! Only local files are read (no API call): the namespace is known before the safety
//! rules, which must judge it before anything talks to the cluster.

use std::path::Path;

use kube::config::Kubeconfig;

use super::ClientOptions;
use crate::error::{ChaosError, Result};
use crate::safety::validate_namespace;

/// The originals' namespace.
pub const DEFAULT_NAMESPACE: &str = "lomash-wood";
/// The environment variable that sets the namespace when `-n` is not given.
pub const ENV: &str = "CHAOS_NAMESPACE";
const IN_CLUSTER_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Where the namespace came from, for messages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    /// The named kubeconfig context.
    Context(String),
    InCluster,
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "-n/--namespace"),
            Source::Env => write!(f, "{ENV}"),
            Source::Context(name) => write!(f, "the kubeconfig context {name}"),
            Source::InCluster => write!(f, "this pod's service account"),
            Source::Default => write!(f, "the default"),
        }
    }
}

/// The kubeconfig the client will read, if any can be read.
fn kubeconfig(options: &ClientOptions) -> Option<Kubeconfig> {
    match &options.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).ok(),
        None => Kubeconfig::read().ok(),
    }
}

/// The namespace of the context in use: `--context`, else the current context.
fn context_namespace(config: &Kubeconfig, context: Option<&str>) -> Option<(String, String)> {
    let name = context.or(config.current_context.as_deref())?;
    let named = config.contexts.iter().find(|c| c.name == name)?;
    let namespace = named.context.as_ref()?.namespace.clone()?;
    (!namespace.trim().is_empty()).then(|| (namespace, name.to_owned()))
}

/// Chooses the namespace (see the module docs) and validates it; bad input names where
/// the bad value came from.
pub fn choose(flag: Option<&str>, options: &ClientOptions) -> Result<(String, Source)> {
    choose_from(flag, std::env::var(ENV).ok(), options)
}

/// [`choose`] with the value of `CHAOS_NAMESPACE` given.
fn choose_from(
    flag: Option<&str>,
    env: Option<String>,
    options: &ClientOptions,
) -> Result<(String, Source)> {
    let env = env.filter(|v| !v.trim().is_empty());
    let (raw, source) = if let Some(ns) = flag {
        (ns.to_owned(), Source::Flag)
    } else if let Some(ns) = env {
        (ns, Source::Env)
    } else if let Some((ns, context)) = kubeconfig(options)
        .as_ref()
        .and_then(|c| context_namespace(c, options.context.as_deref()))
    {
        (ns, Source::Context(context))
    } else if let Some(ns) = in_cluster(options, Path::new(IN_CLUSTER_FILE)) {
        (ns, Source::InCluster)
    } else {
        (DEFAULT_NAMESPACE.to_owned(), Source::Default)
    };
    let namespace = validate_namespace(&raw)
        .map_err(|e| ChaosError::bad_input(format!("namespace from {source}: {e}")))?;
    Ok((namespace, source))
}

/// Inside a pod without a kubeconfig, the pod's namespace.
fn in_cluster(options: &ClientOptions, file: &Path) -> Option<String> {
    if options.kubeconfig.is_some() || std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let ns = text.trim();
    (!ns.is_empty()).then(|| ns.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: staging
contexts:
- name: staging
  context: {cluster: c, user: u, namespace: lomash-staging}
- name: bare
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
"#;

    fn config() -> Kubeconfig {
        Kubeconfig::from_yaml(CONFIG).unwrap()
    }

    #[test]
    fn the_context_in_use_gives_its_namespace() {
        assert_eq!(
            context_namespace(&config(), None),
            Some(("lomash-staging".into(), "staging".into()))
        );
        assert_eq!(context_namespace(&config(), Some("bare")), None);
        assert_eq!(context_namespace(&config(), Some("missing")), None);
    }

    /// The flag beats the environment, which beats the kubeconfig file, which beats the
    /// default.
    #[test]
    fn flag_then_env_then_context_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, CONFIG).unwrap();
        let with_file = ClientOptions {
            kubeconfig: Some(path.clone()),
            context: None,
        };
        assert_eq!(
            choose_from(None, None, &with_file).unwrap(),
            ("lomash-staging".into(), Source::Context("staging".into()))
        );
        let bare = ClientOptions {
            kubeconfig: Some(path),
            context: Some("bare".into()),
        };
        assert_eq!(
            choose_from(None, Some(" ".into()), &bare).unwrap(),
            (DEFAULT_NAMESPACE.into(), Source::Default)
        );
        let env = || Some("from-env".to_owned());
        assert_eq!(
            choose_from(None, env(), &with_file).unwrap(),
            ("from-env".into(), Source::Env)
        );
        assert_eq!(
            choose_from(Some("from-flag"), env(), &with_file).unwrap(),
            ("from-flag".into(), Source::Flag)
        );
        let e = choose_from(None, Some("Not Valid".into()), &with_file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CHAOS_NAMESPACE"), "{e}");
    }
}
