//! Stop signals: SIGINT, SIGTERM and SIGHUP end the observe phase; none of them can
//! interrupt a revert.
//!
//! The handlers are installed once, up front, and stay installed for the life of the
//! process, so a second Ctrl-C during revert is caught (and logged) rather than killing
//! the process halfway through undoing the fault.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};
use tracing::warn;

/// Installs the handlers now and returns a future that resolves with
/// `signal:SIGINT|SIGTERM|SIGHUP` at the first of them. Must be called inside a runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = String> + Send + 'static> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(async move {
        let first = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
            _ = hangup.recv() => "SIGHUP",
        };
        tokio::spawn(async move {
            loop {
                let again = tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                    _ = hangup.recv() => "SIGHUP",
                };
                warn!(
                    "{again} received while stopping; the revert continues so nothing is left behind"
                );
            }
        });
        format!("signal:{first}")
    })
}
