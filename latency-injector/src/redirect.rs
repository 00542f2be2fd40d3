//! The transparent modes' redirect: the run's nftables table (one atomic transaction),
//! its watchdog, the count of connections that bypass it, and its removal.

use chaos_common::{ChaosError, Result};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::conns::{self, Socket};
use crate::nft;
use crate::rules::{self, COUNTER, Redirect};
use crate::watchdog::Watchdog;

/// A table in place, guarded by its watchdog.
#[derive(Debug)]
pub struct Applied {
    pub table: String,
    watchdog: Option<Watchdog>,
}

/// Arms the watchdog, then creates the table redirecting `redirect` into `proxy_port`
/// (so that no moment exists in which a kill of this process leaves the table behind).
/// Returns the table and the matching connections established before it existed.
pub async fn apply(
    run_id: &str,
    redirect: &Redirect,
    proxy_port: u16,
    run_for: std::time::Duration,
) -> Result<(Applied, Vec<Socket>)> {
    let before = conns::matching(redirect).unwrap_or_else(|e| {
        warn!("cannot list established connections: {e}");
        Vec::new()
    });
    let table = rules::table_name(run_id);
    let watchdog = Watchdog::start(&table, run_for).await?;
    if let Err(e) = nft::apply(&rules::apply_document(&table, redirect, proxy_port)).await {
        // The transaction is atomic: nothing to undo but the watchdog.
        watchdog.stop().await;
        return Err(e);
    }
    info!("table inet {table} in place: redirecting into port {proxy_port}");
    Ok((
        Applied {
            table,
            watchdog: Some(watchdog),
        },
        before,
    ))
}

/// Counts (and with `reset`, closes) the connections established before the table that
/// are still open: the redirect cannot catch them.
pub fn handle_bypassing(redirect: &Redirect, before: &[Socket], reset: bool) -> Value {
    let bypassing = match conns::still_there(before, redirect) {
        Ok(sockets) => sockets,
        Err(e) => return json!({ "bypassingConnections": null, "bypassError": e.to_string() }),
    };
    let count = bypassing.len();
    if count == 0 || !reset {
        if count > 0 {
            warn!(
                "{count} established connection(s) to the target bypass the proxy (opened before \
                 the fault); --reset-existing closes them so clients reconnect through it"
            );
        }
        return json!({ "bypassingConnections": count, "reset": false });
    }
    let outcome = conns::reset(&bypassing);
    let remaining = conns::still_there(&bypassing, redirect).map_or(count, |s| s.len());
    info!(
        "closed {} of {count} bypassing connection(s) with ss -K",
        count - remaining.min(count)
    );
    json!({
        "bypassingConnections": count,
        "reset": true,
        "closed": count - remaining.min(count),
        "remaining": remaining,
        "resetError": outcome.err().map(|e| e.to_string()),
    })
}

/// How many connections the rule redirected so far (the nat chain sees each one once).
pub fn redirected(applied: &Applied) -> Option<u64> {
    let counters = nft::counters_blocking(&applied.table).ok()?;
    counters
        .into_iter()
        .find(|(name, _)| name == COUNTER)
        .map(|(_, count)| count.packets)
}

/// Deletes the table (already gone is fine), then releases the watchdog.
pub async fn remove(mut applied: Applied) -> Result<Value> {
    let deleted = nft::delete_table(&applied.table).await;
    let watchdog = match applied.watchdog.take() {
        // If the delete failed, leave the watchdog armed: it retries when we exit.
        Some(watchdog) if deleted.is_ok() => watchdog.stop().await,
        Some(_) => "left-armed",
        None => "none",
    };
    deleted.map_err(|e| {
        ChaosError::fault(format!("cannot delete table inet {}: {e}", applied.table))
    })?;
    Ok(json!({ "table": applied.table, "deleted": true, "watchdog": watchdog }))
}
