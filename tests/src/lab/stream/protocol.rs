//! The Kubernetes remote-command websocket protocol (what the kubelet and API server
//! speak for `pods/exec` and `pods/attach`), the parts kubectl 1.32 and kube-rs use:
//!
//! - subprotocols `v5.channel.k8s.io` (preferred) and `v4.channel.k8s.io`, chosen from
//!   the client's `Sec-WebSocket-Protocol` list;
//! - binary messages whose first byte is the channel: 0 stdin, 1 stdout, 2 stderr,
//!   3 error (a `metav1.Status` JSON, sent once at the end), 4 resize (`{"Width","Height"}`),
//!   and in v5 255 = close (second byte: the channel the client closes, stdin);
//! - the exit code travels in the final Status: `Success`, or `Failure` with reason
//!   `NonZeroExitCode` and a cause `{"reason": "ExitCode", "message": "<code>"}`, which
//!   kubectl turns into its own exit code.

use serde_json::{Value, json};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V4,
    V5,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }
}

/// The protocol to answer for a `Sec-WebSocket-Protocol` header (a comma-separated list,
/// possibly in several headers): v5 when offered, else v4.
pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Protocol> {
    let all: Vec<String> = offered
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(|p| p.trim().to_owned())
        .collect();
    if all.iter().any(|p| p == Protocol::V5.name()) {
        Some(Protocol::V5)
    } else if all.iter().any(|p| p == Protocol::V4.name()) {
        Some(Protocol::V4)
    } else {
        None
    }
}

/// A client message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient {
    Stdin(Vec<u8>),
    /// v5: the client closed this channel (stdin: EOF).
    Close(u8),
    Resize {
        width: u16,
        height: u16,
    },
    Ignored,
}

pub fn decode(protocol: Protocol, message: &[u8]) -> FromClient {
    let Some((&channel, data)) = message.split_first() else {
        return FromClient::Ignored;
    };
    match channel {
        STDIN => FromClient::Stdin(data.to_vec()),
        CLOSE if protocol == Protocol::V5 => data
            .first()
            .map_or(FromClient::Ignored, |c| FromClient::Close(*c)),
        RESIZE => {
            let v: Value = serde_json::from_slice(data).unwrap_or_default();
            let dim = |k: &str| {
                v[k].as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(0)
            };
            FromClient::Resize {
                width: dim("Width"),
                height: dim("Height"),
            }
        }
        _ => FromClient::Ignored,
    }
}

/// A message for the client on `channel`.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// The final Status for an exec of `argv` that exited with `code`.
pub fn exit_status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
    })
}

/// A Status for an error inside the stream (the process could not be started).
pub fn failure(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_is_preferred_in_any_header_form() {
        assert_eq!(
            negotiate(["v4.channel.k8s.io, v5.channel.k8s.io"]),
            Some(Protocol::V5)
        );
        assert_eq!(
            negotiate(["v4.channel.k8s.io", "channel.k8s.io"]),
            Some(Protocol::V4)
        );
        assert_eq!(negotiate(["base64.channel.k8s.io"]), None);
    }

    #[test]
    fn client_messages() {
        assert_eq!(
            decode(Protocol::V5, &[0, b'h', b'i']),
            FromClient::Stdin(b"hi".to_vec())
        );
        assert_eq!(decode(Protocol::V5, &[255, 0]), FromClient::Close(0));
        assert_eq!(decode(Protocol::V4, &[255, 0]), FromClient::Ignored);
        assert_eq!(
            decode(Protocol::V4, b"\x04{\"Width\":80,\"Height\":24}"),
            FromClient::Resize {
                width: 80,
                height: 24
            }
        );
        assert_eq!(decode(Protocol::V4, &[]), FromClient::Ignored);
    }

    #[test]
    fn exit_codes_travel_as_kubectl_reads_them() {
        assert_eq!(exit_status(&[], 0)["status"], "Success");
        let s = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(frame(STDOUT, b"x"), vec![1, b'x']);
    }
}
