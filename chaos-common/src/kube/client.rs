//! Client setup: an explicit `--kubeconfig` and/or `--context`, else the usual
//! inference (`$KUBECONFIG`, `~/.kube/config`, then the in-cluster service account,
//! as `Client::try_default()` does).

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::{ChaosError, Result};

/// Where the client configuration comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A connected client and what it is connected to (for error messages and reports).
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    /// The API server URL.
    pub server: String,
    /// The kubeconfig path used, or "in-cluster service account".
    pub source: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("source", &self.source)
            .finish()
    }
}

/// The kubeconfig that inference will read, described for messages.
pub fn describe_source(options: &ClientOptions) -> String {
    if let Some(path) = &options.kubeconfig {
        return path.display().to_string();
    }
    if let Some(env) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(env).display().to_string();
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
    match home {
        Some(path) if path.is_file() => path.display().to_string(),
        _ if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            "in-cluster service account".into()
        }
        _ => "none found ($KUBECONFIG unset, no ~/.kube/config, not in a pod)".into(),
    }
}

async fn config(options: &ClientOptions, source: &str) -> Result<Config> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let config = match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                ChaosError::bad_input(format!(
                    "--kubeconfig {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            Config::from_custom_kubeconfig(file, &kube_options)
                .await
                .map_err(|e| {
                    ChaosError::bad_input(format!(
                        "--kubeconfig {} / --context: {e}",
                        path.display()
                    ))
                })?
        }
        (None, Some(_)) => Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| ChaosError::bad_input(format!("--context (kubeconfig {source}): {e}")))?,
        (None, None) => Config::infer().await.map_err(|e| {
            ChaosError::Precondition(format!(
                "no Kubernetes configuration (kubeconfig: {source}): {e}; pass --kubeconfig PATH"
            ))
        })?,
    };
    Ok(config)
}

/// Builds the client and checks that the API server answers (GET /version).
pub async fn connect(options: &ClientOptions) -> Result<Connection> {
    let source = describe_source(options);
    let config = config(options, &source).await?;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let client = Client::try_from(config).map_err(|e| {
        ChaosError::Precondition(format!(
            "cannot build a client for {server} (kubeconfig: {source}): {e}"
        ))
    })?;
    let connection = Connection {
        client,
        server,
        source,
    };
    let count = super::retry::ThrottleCount::default();
    let what = format!("get /version from {}", connection.server);
    super::retry::retry(
        &what,
        std::time::Duration::from_secs(30),
        &count,
        || async {
            connection
                .client
                .apiserver_version()
                .await
                .map_err(|e| super::retry::classify(e, "get", "version", "", &connection))
        },
    )
    .await?;
    Ok(connection)
}
