//! Streams between clients and containers: the remote-command websocket protocol
//! (`protocol.rs`, pure) and the exec/attach sessions that run it (`session.rs`).

pub mod protocol;
pub mod session;
