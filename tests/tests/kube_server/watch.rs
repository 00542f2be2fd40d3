//! Watches as kube-rs and kubectl use them: bookmarks, `timeoutSeconds`, 410 Gone after
//! the history moved on (and the kube-rs watcher relisting), streaming lists.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::runtime::watcher;

use super::{client, lab, lab_from, ok, stderr};

const FAST_BOOKMARKS: &str = "server:\n  bookmarkIntervalMs: 100\nnamespaces:\n- name: lomash-wood\n  deployments:\n  - name: api\n";

type Events = futures_util::stream::BoxStream<'static, Result<watcher::Event<Pod>, watcher::Error>>;

async fn next(stream: &mut Events) -> Result<watcher::Event<Pod>, watcher::Error> {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the watcher stalled")
        .expect("the watcher ended")
}

/// Every event of a watch until it ends (at most `limit`).
async fn events(
    api: &Api<Pod>,
    params: &WatchParams,
    rv: &str,
    limit: Duration,
) -> Vec<WatchEvent<Pod>> {
    let stream = api.watch(params, rv).await.unwrap();
    let collected = tokio::time::timeout(limit, stream.collect::<Vec<_>>())
        .await
        .unwrap_or_else(|_| panic!("the watch did not end within {limit:?}"));
    collected.into_iter().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_come_only_when_asked_for_and_timeout_seconds_ends_the_watch() {
    let lab = lab_from(FAST_BOOKMARKS);
    let api: Api<Pod> = Api::namespaced(client(&lab.kubeconfig).await, "lomash-wood");
    let with = events(
        &api,
        &WatchParams::default().timeout(1),
        "0",
        Duration::from_secs(20),
    )
    .await;
    let bookmarks: Vec<String> = with
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Bookmark(b) => Some(b.metadata.resource_version.clone()),
            _ => None,
        })
        .collect();
    assert!(
        bookmarks.len() >= 2,
        "bookmarks every 100 ms for 1 s: {bookmarks:?}"
    );
    assert_eq!(
        with.iter()
            .filter(|e| matches!(e, WatchEvent::Added(_)))
            .count(),
        2
    );
    let without = events(
        &api,
        &WatchParams::default().disable_bookmarks().timeout(1),
        "0",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        !without.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))),
        "{} events",
        without.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_version_is_410_and_the_watcher_relists() {
    let lab = lab();
    let api: Api<Pod> = Api::namespaced(client(&lab.kubeconfig).await, "lomash-wood");
    let config = watcher::Config::default().labels("app=api-gateway");
    let mut stream: Events = watcher(api.clone(), config).boxed();
    let mut inits = 0;
    while !matches!(next(&mut stream).await, Ok(watcher::Event::InitDone)) {}
    inits += 1;
    // A change the watcher does not see (another app), then a compaction and a restart
    // of the watches: its resourceVersion is now older than anything kept.
    let other = lab.pod_names("app=auth-service").remove(0);
    ok(&lab.kubectl(&["annotate", "pod", &other, "touched=yes"]));
    lab.control().compact();
    lab.control().close_watches();
    let mut gone = false;
    loop {
        match next(&mut stream).await {
            Err(watcher::Error::WatchError(status)) => {
                assert_eq!(
                    (status.code, status.reason.as_str()),
                    (410, "Expired"),
                    "{status:?}"
                );
                gone = true;
            }
            Ok(watcher::Event::InitDone) => break,
            _ => {}
        }
    }
    inits += 1;
    assert!(gone && inits == 2 && lab.control().expired_watches() >= 1);
    // kubectl sees the same answer on a raw watch from an old version.
    let out = lab.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/lomash-wood/pods?watch=1&resourceVersion=1001&timeoutSeconds=1",
    ]);
    let printed = format!("{}{}", super::stdout(&out), stderr(&out));
    assert!(
        printed.contains("\"type\":\"ERROR\"") && printed.contains("too old resource version"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_ends_its_initial_events_with_a_bookmark() {
    let lab = lab();
    let api: Api<Pod> = Api::namespaced(client(&lab.kubeconfig).await, "lomash-wood");
    let config = watcher::Config::default()
        .labels("app=api-gateway")
        .streaming_lists();
    let mut stream: Events = watcher(api, config).boxed();
    let mut applied = 0;
    loop {
        match next(&mut stream).await {
            Ok(watcher::Event::InitApply(_)) => applied += 1,
            Ok(watcher::Event::InitDone) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(applied, 2);
    // The same options without allowWatchBookmarks are refused as the server does.
    let out = lab.kubectl(&["get", "--raw", "/api/v1/namespaces/lomash-wood/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"]);
    assert!(
        stderr(&out).contains("sendInitialEvents requires setting allowWatchBookmarks to true"),
        "{}",
        stderr(&out)
    );
}
