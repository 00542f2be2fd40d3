//! Keeps a peer Service's addresses current in every pod's running fault (net-partition's
//! `-t`): the Service's EndpointSlices are watched, and each pod whose fault is applied is
//! brought to the current set with `TOOL UPDATE RUNID add|delete ADDR...` through exec,
//! so that a replaced peer pod is cut off too. Each pod's known set changes only when its
//! update succeeded, so a failed update is retried on the next change or tick.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use super::exec::{self, Place};
use super::peers::{self, Peer};
use super::session::{Ctx, Shared, Stage};

/// How often pods whose last update failed are retried.
const RETRY: Duration = Duration::from_secs(1);
const LIMIT: Duration = Duration::from_secs(20);

/// The addresses to add and to delete to go from `have` to `want` (the ClusterIP is
/// never deleted: it does not change while the Service exists).
pub fn diff(have: &BTreeSet<IpAddr>, want: &BTreeSet<IpAddr>) -> (Vec<IpAddr>, Vec<IpAddr>) {
    (
        want.difference(have).copied().collect(),
        have.difference(want).copied().collect(),
    )
}

async fn update(ctx: &Ctx, run: &Shared, verb: &str, addrs: &[IpAddr], update: &str) -> bool {
    let target = run.borrow().target.clone();
    let container = ctx.exec_container(&target);
    let mut argv = vec![
        ctx.program(),
        update.to_owned(),
        ctx.run_id.clone(),
        verb.to_owned(),
    ];
    argv.extend(addrs.iter().map(ToString::to_string));
    let place = Place {
        conn: &ctx.conn,
        namespace: &ctx.namespace,
        pod: &target.name,
        container: &container,
    };
    let result = exec::run(place, &argv, None, LIMIT).await;
    let ok = matches!(&result, Ok(out) if out.code == 0);
    let listed: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    match &result {
        Ok(out) if out.code == 0 => info!(
            pod = %target.name,
            "{verb} {} in the fault of pod {}",
            listed.join(", "),
            target.name
        ),
        Ok(out) => warn!(
            "updating pod {}: exit {}: {}",
            target.name,
            out.code,
            out.stderr.trim()
        ),
        Err(e) => warn!("updating pod {}: {e}", target.name),
    }
    let at_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    run.send_modify(|r| {
        let entry = json!({"tMs": crate::report::round(at_ms, 1), "action": verb,
            "addresses": listed, "ok": ok});
        r.updates.push(entry);
    });
    ok
}

/// Brings one pod from `have` to `want`; returns what it has afterwards.
async fn reconcile(
    ctx: &Ctx,
    run: &Shared,
    have: &BTreeSet<IpAddr>,
    want: &BTreeSet<IpAddr>,
    cmd: &str,
) -> BTreeSet<IpAddr> {
    let (add, delete) = diff(have, want);
    let mut now = have.clone();
    if !add.is_empty() && update(ctx, run, "add", &add, cmd).await {
        now.extend(add);
    }
    if !delete.is_empty() && update(ctx, run, "delete", &delete, cmd).await {
        for a in &delete {
            now.remove(a);
        }
    }
    now
}

/// Runs until aborted (revert aborts it).
pub async fn keep_current(ctx: Arc<Ctx>, runs: Vec<Arc<Shared>>, peer: Peer, cmd: &'static str) {
    let (tx, mut rx) = watch::channel(peer.endpoints.clone());
    let watcher = tokio::spawn(peers::watch(
        ctx.conn.clone(),
        ctx.namespace.clone(),
        peer.service.clone(),
        tx,
    ));
    // What each pod's fault holds: the addresses its command line gave it.
    let mut held: Vec<BTreeSet<IpAddr>> = vec![peer.addresses(); runs.len()];
    let mut tick = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
        let want: BTreeSet<IpAddr> = peer
            .cluster_ip
            .into_iter()
            .chain(rx.borrow().iter().copied())
            .collect();
        for (run, have) in runs.iter().zip(held.iter_mut()) {
            if run.borrow().stage != Stage::Applied || *have == want {
                continue;
            }
            *have = reconcile(&ctx, run, have, &want, cmd).await;
        }
    }
    watcher.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
        addrs.iter().filter_map(|a| a.parse().ok()).collect()
    }

    #[test]
    fn a_replaced_endpoint_is_added_and_the_old_one_deleted() {
        let have = set(&["203.0.113.10", "198.51.100.3", "198.51.100.4"]);
        let want = set(&["203.0.113.10", "198.51.100.4", "198.51.100.9"]);
        let (add, delete) = diff(&have, &want);
        assert_eq!(add, vec!["198.51.100.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(delete.len(), 1);
        assert_eq!(delete[0].to_string(), "198.51.100.3");
        assert_eq!(diff(&want, &want), (vec![], vec![]));
    }
}
