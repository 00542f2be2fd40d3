//! Driving one exec over a websocket: the server side of the upgrade, then stdin from
//! the client into the process, its stdout and stderr out on their channels, and the
//! exit Status on the error channel before the websocket closes.
//!
//! A client that goes away (kubectl interrupted) closes the process's stdin and stops
//! reading its output, but does not kill it, as on a node: the process ends by itself
//! (or on SIGPIPE when it writes).

use futures_util::{SinkExt, StreamExt};
use hyper::HeaderMap;
use hyper::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::protocol::{self, FromClient, Protocol};
use crate::lab::exec::ExecProcess;

/// The 101 answer's headers for an upgrade request, or why it cannot be upgraded.
pub fn handshake(
    headers: &HeaderMap,
) -> Result<(Protocol, Vec<(hyper::header::HeaderName, String)>), String> {
    let upgrade = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err("this lab serves exec, attach and ephemeral streams over websockets only (kubectl 1.30+ does by default)".into());
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or("the websocket upgrade has no Sec-WebSocket-Key")?;
    let offered = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let protocol = protocol::negotiate(offered).ok_or(
        "no supported subprotocol: the lab speaks v5.channel.k8s.io and v4.channel.k8s.io",
    )?;
    Ok((
        protocol,
        vec![
            (UPGRADE, "websocket".to_owned()),
            (CONNECTION, "Upgrade".to_owned()),
            (SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes())),
            (SEC_WEBSOCKET_PROTOCOL, protocol.name().to_owned()),
        ],
    ))
}

/// A close frame with status 1000: client-go reads any other (1005 too) as an error
/// of every stream ("error reading from error stream").
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// The websocket on an upgraded connection.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(io: S) -> WebSocketStream<S> {
    WebSocketStream::from_raw_socket(io, Role::Server, None).await
}

/// Copies `pipe` to `channel` until it closes.
async fn forward(mut pipe: impl AsyncRead + Unpin, channel: u8, out: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.send(protocol::frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs `exec` (started with piped stdio) over `ws` until it ends.
pub async fn run_exec<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    mut exec: ExecProcess,
    argv: Vec<String>,
    stdin: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let mut outputs = Vec::new();
    if let Some(out) = exec.child.stdout.take() {
        outputs.push(tokio::spawn(forward(out, protocol::STDOUT, tx.clone())));
    }
    if let Some(err) = exec.child.stderr.take() {
        outputs.push(tokio::spawn(forward(err, protocol::STDERR, tx.clone())));
    }
    let mut child_stdin = exec.child.stdin.take().filter(|_| stdin);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                return None;
            }
        }
        Some(sink)
    });
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = incoming.next().await {
            let data = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            match protocol::decode(protocol, &data) {
                FromClient::Stdin(bytes) => {
                    if let Some(pipe) = child_stdin.as_mut() {
                        if pipe.write_all(&bytes).await.is_err() {
                            child_stdin = None;
                        }
                    }
                }
                FromClient::Close(protocol::STDIN) => child_stdin = None,
                _ => {}
            }
        }
        // The client is gone (or sent close): stdin ends.
        drop(child_stdin);
    });
    let code = exec
        .child
        .wait()
        .await
        .ok()
        .and_then(|s| s.code())
        .unwrap_or(255);
    for o in outputs {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), o).await;
    }
    let status = protocol::exit_status(&argv, code).to_string();
    let _ = tx
        .send(protocol::frame(protocol::ERROR, status.as_bytes()))
        .await;
    drop(tx);
    reader.abort();
    if let Ok(Some(mut sink)) = writer.await {
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    }
}
