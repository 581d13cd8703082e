//! A thousand checked servers with Host map entries, added and then removed
//! by one sync each: each batch is over 100 KiB of commands. The driver
//! sends them in requests that every version takes whole: as one request,
//! 3.2.0's CLI stalls once the input outgrows its buffer until its watchdog
//! aborts the worker, and 2.6 and 3.0 drop the commands they have not read
//! yet when the client half-closes its side.

use super::removals::failed;
use super::*;
use hnc_tests::haproxy::servers;

const SERVERS: u16 = 1000;

/// The `Pid:` of `show info`: which worker answers.
async fn worker(h: &Haproxy) -> String {
    let info = h.cmd("show info").await;
    info.lines()
        .find(|l| l.starts_with("Pid:"))
        .unwrap_or_else(|| panic!("no Pid in show info: {info}"))
        .to_string()
}

#[tokio::test]
async fn a_thousand_servers_are_added_then_removed_by_one_sync_each() {
    let (h, driver) = start("", |c| c.drain_grace_ms = 0).await;
    let check = http_check("/health", 60_000, Some(&h.host_map));
    let empty = desired(&[&dynamic("default_bulk", &check, &[])]);
    sync(&driver, &empty).await;
    let before = worker(&h).await;

    // Nothing listens on these ports: the servers are DOWN, which the test
    // does not need; what counts is that HAProxy holds each one.
    let specs: Vec<ServerSpec> = (0..SERVERS)
        .map(|i| server(&format!("bulk-{i}"), 20_000 + i, &check))
        .collect();
    let all: Vec<&ServerSpec> = specs.iter().collect();
    let full = desired(&[&dynamic("default_bulk", &check, &all)]);
    let report = sync(&driver, &full).await;
    assert_eq!(report.applied.len(), usize::from(SERVERS), "{report:?}");
    assert!(
        matches!(report.reload, ReloadOutcome::NotNeeded),
        "{report:?}"
    );
    let held = servers(&h, "default_bulk").await;
    assert_eq!(held.len(), usize::from(SERVERS));
    assert!(specs.iter().all(|s| held.contains_key(&s.name)));
    assert_eq!(h.map_entries(&h.host_map).await.len(), usize::from(SERVERS));
    converged(&driver, &full).await;

    let report = sync(&driver, &empty).await;
    assert_eq!(report.applied.len(), usize::from(SERVERS), "{report:?}");
    assert!(servers(&h, "default_bulk").await.is_empty());
    assert!(h.map_entries(&h.host_map).await.is_empty());
    converged(&driver, &empty).await;

    assert_eq!(failed(&driver), 0, "{:?}", driver.stats());
    assert_eq!(
        worker(&h).await,
        before,
        "the same worker answers throughout"
    );
}
