//! The transparent modes' redirect: the run's nftables table (one atomic transaction)
//! and its watchdog, ingress's policy routing and its guard, the count of connections
//! that bypass the redirect, and the two-step end (new connections go direct at once;
//! what the redirected connections still need goes after the drain).

use std::time::Duration;

use chaos_common::{ChaosError, Result};
use serde::Serialize;
use tracing::{info, warn};

use crate::conns::{self, Socket};
use crate::guard::Guard;
use crate::nft;
use crate::observations::Redirected;
use crate::routes::{self, Routes};
use crate::rules::{self, COUNTER, Redirect};
use crate::watchdog::Watchdog;

/// A table in place, guarded by its watchdog; ingress's routes with their guard.
#[derive(Debug)]
pub struct Applied {
    pub table: String,
    redirect: Redirect,
    watchdog: Option<Watchdog>,
    routes: Option<(Routes, Guard)>,
}

/// What the revert removed (the report's `revert.details.redirect`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub table: String,
    pub deleted: bool,
    pub watchdog: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Routes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes_guard: Option<&'static str>,
}

async fn start_routes(
    routes: Option<Routes>,
    run_for: Duration,
) -> Result<Option<(Routes, Guard)>> {
    let Some(routes) = routes else {
        return Ok(None);
    };
    // The guard first: a kill right after the routes are added still removes them.
    let guard = Guard::routes(&routes, run_for).await?;
    let applied = tokio::task::spawn_blocking(move || routes::apply(&routes))
        .await
        .map_err(|e| ChaosError::fault(format!("policy routing setup panicked: {e}")))
        .and_then(|r| r);
    if let Err(e) = applied {
        // The guard removes whatever part was added when it is told nothing.
        drop(guard);
        let _ = routes::remove(&routes);
        return Err(e);
    }
    info!(
        "policy routing in place: replies from 127.0.0.1:{} to clients go back to the proxy (table {})",
        routes.app_port, routes.table
    );
    Ok(Some((routes, guard)))
}

/// Sets up `routes` (ingress keeping clients' addresses) under their guard, arms the
/// table's watchdog, then creates the table redirecting `redirect` into `proxy_port`: no
/// moment exists in which a kill of this process leaves anything behind. Undoes its own
/// work on failure. `run_for` is how long they may stand (see the watchdog's deadline).
/// Returns what is in place and the matching connections established before it.
pub async fn apply(
    run_id: &str,
    redirect: &Redirect,
    proxy_port: u16,
    routes: Option<Routes>,
    run_for: Duration,
) -> Result<(Applied, Vec<Socket>)> {
    let before = conns::matching(redirect).unwrap_or_else(|e| {
        warn!("cannot list established connections: {e}");
        Vec::new()
    });
    let routes = start_routes(routes, run_for).await?;
    let undo_routes = |routes: Option<(Routes, Guard)>| async move {
        if let Some((routes, guard)) = routes {
            let _ = routes::remove(&routes);
            guard.stop().await;
        }
    };
    let table = rules::table_name(run_id);
    let watchdog = match Watchdog::start(&table, run_for).await {
        Ok(watchdog) => watchdog,
        Err(e) => {
            undo_routes(routes).await;
            return Err(e);
        }
    };
    if let Err(e) = nft::apply(&rules::apply_document(&table, redirect, proxy_port)).await {
        // The transaction is atomic: nothing to undo but the guards.
        watchdog.stop().await;
        undo_routes(routes).await;
        return Err(e);
    }
    info!("table inet {table} in place: redirecting into port {proxy_port}");
    Ok((
        Applied {
            table,
            redirect: redirect.clone(),
            watchdog: Some(watchdog),
            routes,
        },
        before,
    ))
}

/// Counts (and with `reset`, closes) the connections established before the table that
/// are still open: the redirect cannot catch them. Warns only when there are some.
pub fn handle_bypassing(redirect: &Redirect, before: &[Socket], reset: bool) -> Redirected {
    let bypassing = match conns::still_there(before, redirect) {
        Ok(sockets) => sockets,
        Err(e) => {
            return Redirected {
                bypass_error: Some(e.to_string()),
                ..Redirected::default()
            };
        }
    };
    let count = bypassing.len() as u64;
    let mut observed = Redirected {
        bypassing_connections: Some(count),
        ..Redirected::default()
    };
    if count == 0 {
        return observed;
    }
    if !reset {
        warn!(
            "{count} established connection(s) to the target bypass the proxy (opened before \
             the fault); --reset-existing closes them so clients reconnect through it"
        );
        return observed;
    }
    let outcome = conns::reset(&bypassing);
    let remaining = conns::still_there(&bypassing, redirect).map_or(count, |s| s.len() as u64);
    let closed = count - remaining.min(count);
    info!("closed {closed} of {count} bypassing connection(s) with ss -K");
    observed.reset = true;
    observed.closed = Some(closed);
    observed.remaining = Some(remaining);
    observed.reset_error = outcome.err().map(|e| e.to_string());
    observed
}

/// How many connections the rule redirected so far (its counter: one per first SYN).
pub fn redirected(applied: &Applied) -> Option<u64> {
    let counters = nft::counters_blocking(&applied.table).ok()?;
    counters
        .into_iter()
        .find(|(name, _)| name == COUNTER)
        .map(|(_, count)| count.packets)
}

/// The first step of the end: new connections go direct from here on (egress empties
/// its targets, keeping the NAT of redirected connections; ingress deletes the table,
/// which TPROXY'd connections do not need).
pub async fn stop_new(applied: &Applied) -> Result<()> {
    match rules::stop_document(&applied.table, &applied.redirect) {
        Some(document) => nft::apply(&document).await,
        None => nft::delete_table(&applied.table).await.map(drop),
    }
}

/// Deletes the table (already gone is fine) and the routes, then releases the guards.
/// A guard whose removal failed stays armed: it retries when this process exits.
pub async fn remove(mut applied: Applied) -> Result<Removed> {
    let deleted = nft::delete_table(&applied.table).await;
    let watchdog = match applied.watchdog.take() {
        Some(watchdog) if deleted.is_ok() => watchdog.stop().await,
        Some(_) => "left-armed",
        None => "none",
    };
    let (routes, routes_guard, routes_removed) = match applied.routes.take() {
        Some((routes, guard)) => {
            let removed = tokio::task::spawn_blocking(move || routes::remove(&routes))
                .await
                .map_err(|e| ChaosError::fault(format!("policy routing removal panicked: {e}")))
                .and_then(|r| r);
            let state = if removed.is_ok() {
                guard.stop().await
            } else {
                std::mem::forget(guard);
                "left-armed"
            };
            (Some(routes), Some(state), removed)
        }
        None => (None, None, Ok(())),
    };
    deleted.map_err(|e| {
        ChaosError::fault(format!("cannot delete table inet {}: {e}", applied.table))
    })?;
    routes_removed?;
    Ok(Removed {
        table: applied.table,
        deleted: true,
        watchdog,
        routes,
        routes_guard,
    })
}
