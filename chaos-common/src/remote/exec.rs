//! Exec in a pod's container through the API (`pods/exec` over websockets, the
//! v5.channel.k8s.io protocol when the server speaks it, so that closing stdin reaches
//! the process: `tar -x` needs its end of file). Argument vectors only.
//!
//! [`run`] runs a command to completion and returns its exit code and output (the tar
//! copy, probes, `--stop`, `rm`); [`start`] opens a long exec whose output the session
//! reads as it comes (the in-pod run).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, AttachedProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{ChaosError, Result};
use crate::kube::Connection;

/// Output buffers per channel between the websocket task and our readers.
const BUFFER: usize = 64 * 1024;

/// Where an exec goes.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub conn: &'a Connection,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
}

impl Place<'_> {
    pub fn describe(&self) -> String {
        format!(
            "pod {}/{} (container {})",
            self.namespace, self.pod, self.container
        )
    }
}

/// An exec as a command an operator can type.
pub fn kubectl_exec(namespace: &str, pod: &str, container: &str, argv: &[String]) -> String {
    let words: Vec<std::ffi::OsString> = argv.iter().skip(1).map(Into::into).collect();
    format!(
        "kubectl exec -n {namespace} {pod} -c {container} -- {}",
        super::argv::display(argv.first().map_or("", String::as_str), &words)
    )
}

/// A finished exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The exit code the final Status carries, or what went wrong instead.
pub fn exit_code(status: Option<&Status>) -> std::result::Result<i32, String> {
    let Some(status) = status else {
        return Err("the exec stream ended without an exit status".into());
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let cause = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse::<i32>().ok());
    match (status.reason.as_deref(), cause) {
        (Some("NonZeroExitCode"), Some(code)) => Ok(code),
        _ => Err(status
            .message
            .clone()
            .unwrap_or_else(|| "exec failed without a message".into())),
    }
}

fn params(container: &str, stdin: bool) -> AttachParams {
    let mut ap = AttachParams::default()
        .container(container)
        .stdin(stdin)
        .stdout(true)
        .stderr(true);
    ap.max_stdin_buf_size = Some(BUFFER);
    ap.max_stdout_buf_size = Some(BUFFER);
    ap.max_stderr_buf_size = Some(BUFFER);
    ap
}

/// Opens an exec of `argv` (stdin attached when `stdin`).
pub async fn start(place: Place<'_>, argv: &[String], stdin: bool) -> Result<AttachedProcess> {
    let api: Api<Pod> = Api::namespaced(place.conn.client.clone(), place.namespace);
    api.exec(place.pod, argv.to_vec(), &params(place.container, stdin))
        .await
        .map_err(|e| {
            ChaosError::fault(format!(
                "cannot exec {:?} in {}: {e} (is the container running? does this user have create/get \
                 on pods/exec, docs/rbac.yaml?)",
                argv.first().map_or("", String::as_str),
                place.describe()
            ))
        })
}

/// Everything `reader` gives until it ends (an output channel of an exec).
async fn read_all<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut r) = reader {
        let _ = r.read_to_end(&mut buf).await;
    }
    buf
}

/// Runs `argv` to completion within `limit`, writing `input` to its stdin first.
pub async fn run(
    place: Place<'_>,
    argv: &[String],
    input: Option<&[u8]>,
    limit: Duration,
) -> Result<Output> {
    let what = || {
        format!(
            "{:?} in {}",
            argv.first().map_or("", String::as_str),
            place.describe()
        )
    };
    let work = async {
        let mut process = start(place, argv, input.is_some()).await?;
        let status = process.take_status();
        let mut out = process.stdout();
        let mut err = process.stderr();
        let writer = input.map(|bytes| {
            let stdin = process.stdin();
            async move {
                if let Some(mut stdin) = stdin {
                    stdin.write_all(bytes).await?;
                    stdin.shutdown().await?;
                }
                std::io::Result::Ok(())
            }
        });
        let write = async {
            match writer {
                Some(w) => w.await,
                None => Ok(()),
            }
        };
        let (written, stdout, stderr) =
            tokio::join!(write, read_all(out.take()), read_all(err.take()));
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = process.join().await;
        let code = exit_code(status.as_ref())
            .map_err(|e| ChaosError::fault(format!("{}: {e}", what())))?;
        if let Err(e) = written {
            // A command that exits before reading all of stdin closes the pipe: its
            // exit code says what happened; a zero code with a short write is not fine.
            if code == 0 {
                return Err(ChaosError::fault(format!(
                    "{}: writing stdin failed: {e}",
                    what()
                )));
            }
        }
        Ok(Output {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    };
    tokio::time::timeout(limit, work).await.map_err(|_| {
        ChaosError::fault(format!(
            "{} did not finish within {} s",
            what(),
            limit.as_secs()
        ))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn failure(reason: &str, cause: Option<&str>, message: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            details: cause.map(|c| StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(c.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        let ok = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code(Some(&ok)), Ok(0));
        assert_eq!(
            exit_code(Some(&failure(
                "NonZeroExitCode",
                Some("127"),
                "exit code 127"
            ))),
            Ok(127)
        );
        assert_eq!(
            exit_code(Some(&failure(
                "InternalError",
                None,
                "container not running"
            ))),
            Err("container not running".into())
        );
        assert!(exit_code(None).is_err());
    }

    #[test]
    fn the_kubectl_form_is_typeable() {
        let argv: Vec<String> = ["/tmp/chaos-cpu-hog-r1/cpu-hog", "--stop", "r1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            kubectl_exec("lomash-wood", "p-1", "app", &argv),
            "kubectl exec -n lomash-wood p-1 -c app -- /tmp/chaos-cpu-hog-r1/cpu-hog --stop r1"
        );
    }
}
