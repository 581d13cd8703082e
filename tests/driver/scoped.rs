//! Passes that compare only the backends an event touched: the cost of one
//! event does not grow with the cluster. A change elsewhere waits for the
//! next full pass (the resync), and a drain in progress is always compared.

use super::*;
use std::collections::BTreeSet;

fn scope(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_string()).collect()
}

async fn sync_within(driver: &RuntimeDriver, want: &Desired, names: &[&str]) {
    let report = driver.sync_within(want, &scope(names)).await.expect("sync");
    assert!(
        report.failed.is_empty() && report.failed_domains.is_empty(),
        "failed changes: {:?} {:?}",
        report.failed,
        report.failed_domains
    );
}

#[tokio::test]
async fn a_pass_over_one_backend_changes_it_and_leaves_the_others_to_a_full_pass() {
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |c| c.drain_grace_ms = 0).await;
    let check = http_check("/health", 200, None);
    let a1 = server("a1", apps[0].port, &check);
    let a2 = server("a2", apps[1].port, &check);
    let b1 = server("b1", apps[0].port, &check);
    let b2 = server("b2", apps[1].port, &check);
    let first = desired(&[
        &dynamic("default_a", &check, &[&a1]),
        &dynamic("default_b", &check, &[&b1]),
    ]);
    sync(&driver, &first).await;
    wait_status(&h, "default_a", &a1.name, "UP").await;
    let before = h.reloads().await;

    // Both backends gain a server; the pass compares `default_a` only.
    let both = desired(&[
        &dynamic("default_a", &check, &[&a1, &a2]),
        &dynamic("default_b", &check, &[&b1, &b2]),
    ]);
    sync_within(&driver, &both, &["default_a"]).await;
    assert!(h.server("default_a", &a2.name).await.is_some(), "a2 added");
    assert!(
        h.server("default_b", &b2.name).await.is_none(),
        "b2 waits for a full pass"
    );
    // A full pass brings the rest.
    sync(&driver, &both).await;
    assert!(h.server("default_b", &b2.name).await.is_some(), "b2 added");
    converged(&driver, &both).await;
    assert_eq!(h.reloads().await, before, "runtime changes must not reload");
}

#[tokio::test]
async fn a_drain_ends_in_passes_over_other_backends() {
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |c| c.drain_grace_ms = 1_000).await;
    let check = http_check("/health", 200, None);
    let a1 = server("a1", apps[0].port, &check);
    let a2 = server("a2", apps[1].port, &check);
    let b1 = server("b1", apps[0].port, &check);
    let b2 = server("b2", apps[1].port, &check);
    let first = desired(&[
        &dynamic("default_a", &check, &[&a1, &a2]),
        &dynamic("default_b", &check, &[&b1]),
    ]);
    sync(&driver, &first).await;
    wait_status(&h, "default_a", &a2.name, "UP").await;

    // a2 goes: a pass over `default_a` starts its drain.
    let without_a2 = desired(&[
        &dynamic("default_a", &check, &[&a1]),
        &dynamic("default_b", &check, &[&b1]),
    ]);
    sync_within(&driver, &without_a2, &["default_a"]).await;
    wait_status(&h, "default_a", &a2.name, "DRAIN").await;
    // Only `default_b` changes from then on; its passes still end a2's
    // drain once the grace period is over.
    let want = desired(&[
        &dynamic("default_a", &check, &[&a1]),
        &dynamic("default_b", &check, &[&b1, &b2]),
    ]);
    wait_until("a2 to be deleted after its grace period", WAIT, || async {
        sync_within(&driver, &want, &["default_b"]).await;
        h.server("default_a", &a2.name)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(h.server("default_b", &b2.name).await.is_some(), "b2 added");
    converged(&driver, &want).await;
}
