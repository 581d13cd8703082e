//! The runtime driver against a real HAProxy (whichever `haproxy` is first
//! on `PATH`: tests/run.sh runs this module on 2.6 and on each 3.x binary):
//! runtime changes, safe adds, coalesced validated reloads, refusals, drift
//! repair, restarts, removals under live traffic, and the domain maps that
//! the operator's frontend routes by.
//!
//! Every assertion reads HAProxy's own view (`show stat`, `show servers
//! state`, `show proc`) or what the test backends received.

use haproxy_nomad_connector::haproxy::{self, Driver, ReloadOutcome, RuntimeDriver, state_files};
use haproxy_nomad_connector::plan::{BackendSpec, Desired, DomainMatch, Refusal, ServerSpec, diff};
use haproxy_nomad_connector::vocab::check::{RenderContext, RenderedCheck, render};
use haproxy_nomad_connector::vocab::names;
use haproxy_nomad_connector::vocab::syntax::Token;
use hnc_core::model::{BackendCheck, CheckPlan, HttpCheck, HttpExpect, HttpMatch, ServerCheck};
use hnc_tests::backends::HttpBackend;
use hnc_tests::haproxy::{Haproxy, wait_until};
use hnc_tests::load::{LoadLoop, get};
use std::path::Path;
use std::time::Duration;

mod checks;
mod domains;
mod large_batches;
mod recovery;
mod refusals;
mod removals;
mod scoped;

const WAIT: Duration = Duration::from_secs(20);

/// An HTTP check on `uri` every `inter_ms`, rendered as the daemon would.
fn http_check(uri: &str, inter_ms: u32, host_map: Option<&Path>) -> RenderedCheck {
    render_check(uri, inter_ms, host_map, None)
}

fn render_check(
    uri: &str,
    inter_ms: u32,
    host_map: Option<&Path>,
    uri_map: Option<&Path>,
) -> RenderedCheck {
    let plan = CheckPlan {
        backend: BackendCheck::Http(HttpCheck {
            method: "GET".into(),
            uri: uri.into(),
            version: "HTTP/1.1".into(),
            default_host: host_map.is_some(),
            expect: vec![HttpExpect {
                negate: false,
                matcher: HttpMatch::Status,
                pattern: "200".into(),
            }],
            ..HttpCheck::default()
        }),
        server: ServerCheck {
            enabled: true,
            inter_ms: Some(inter_ms),
            rise: Some(2),
            fall: Some(2),
            ..ServerCheck::default()
        },
        ..CheckPlan::default()
    };
    let ctx = RenderContext {
        host_map: host_map.map(Path::to_path_buf),
        uri_map: uri_map.map(Path::to_path_buf),
        ..RenderContext::default()
    };
    render(&plan, &ctx).expect("a valid check")
}

fn server(instance: &str, port: u16, check: &RenderedCheck) -> ServerSpec {
    let mut s = ServerSpec::new(names::server_name(instance), [127, 0, 0, 1].into(), port);
    s.check_args = check.server.clone();
    s.host_entry = check.needs_host_entry;
    s.uri_entry = check.uri_entry.clone();
    s
}

fn dynamic(name: &str, check: &RenderedCheck, servers: &[&ServerSpec]) -> BackendSpec {
    let mut b = BackendSpec::dynamic(name);
    b.check = check.backend.clone();
    for s in servers {
        b.insert((*s).clone());
    }
    b
}

fn desired(backends: &[&BackendSpec]) -> Desired {
    let mut d = Desired::default();
    for b in backends {
        d.insert((*b).clone());
    }
    d
}

async fn start(extra: &str, tweak: impl FnOnce(&mut haproxy::Config)) -> (Haproxy, RuntimeDriver) {
    let haproxy = Haproxy::start(extra).await;
    let mut config = haproxy.driver_config();
    tweak(&mut config);
    let driver = RuntimeDriver::start(config).await.expect("driver starts");
    (haproxy, driver)
}

/// One sync, then its changes written to the files (a sync writes them at
/// most every 500 ms).
async fn sync(driver: &RuntimeDriver, want: &Desired) -> haproxy::ApplyReport {
    let report = driver.sync(want).await.expect("sync");
    driver.flush().await.expect("flush");
    assert!(
        report.failed.is_empty() && report.failed_domains.is_empty(),
        "failed changes: {:?} {:?}",
        report.failed,
        report.failed_domains
    );
    report
}

/// Waits until `show stat` shows `status` for the server.
async fn wait_status(h: &Haproxy, backend: &str, server: &str, status: &str) {
    let what = format!("{backend}/{server} to be {status}");
    wait_until(&what, WAIT, || async {
        let row = h.server(backend, server).await?;
        (row["status"] == status).then_some(())
    })
    .await;
}

async fn converged(driver: &RuntimeDriver, want: &Desired) {
    let actual = driver.actual().await.expect("actual");
    let left = diff(want, &actual);
    assert!(
        left.is_empty(),
        "HAProxy differs from the desired state: {left:?}"
    );
}

#[tokio::test]
async fn runtime_changes_never_reload_and_haproxy_state_matches() {
    let apps = [
        HttpBackend::start().await,
        HttpBackend::start().await,
        HttpBackend::start().await,
    ];
    let (h, driver) = start("", |c| c.drain_grace_ms = 1_500).await;
    let check = http_check("/health", 200, None);
    let (mut a, mut b, c) = (
        server("a", apps[0].port, &check),
        server("b", apps[1].port, &check),
        server("c", apps[2].port, &check),
    );
    let report = sync(
        &driver,
        &desired(&[&dynamic("default_web", &check, &[&a, &b])]),
    )
    .await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    wait_status(&h, "default_web", &a.name, "UP").await;
    wait_status(&h, "default_web", &b.name, "UP").await;
    let before = h.reloads().await;

    // Add.
    let want = desired(&[&dynamic("default_web", &check, &[&a, &b, &c])]);
    let report = sync(&driver, &want).await;
    assert_eq!(report.applied.len(), 1);
    wait_status(&h, "default_web", &c.name, "UP").await;
    // Re-weight and re-address.
    a.weight = 20;
    b.port = apps[2].port;
    let want = desired(&[&dynamic("default_web", &check, &[&a, &b, &c])]);
    sync(&driver, &want).await;
    let row = h.server("default_web", &a.name).await.expect("a");
    assert_eq!(row["weight"], "20");
    let row = h.server("default_web", &b.name).await.expect("b");
    assert_eq!(row["addr"], format!("127.0.0.1:{}", apps[2].port));
    converged(&driver, &want).await;
    // Drain, then the instance comes back: the drain is cancelled.
    let without_c = desired(&[&dynamic("default_web", &check, &[&a, &b])]);
    sync(&driver, &without_c).await;
    wait_status(&h, "default_web", &c.name, "DRAIN").await;
    sync(&driver, &want).await;
    wait_status(&h, "default_web", &c.name, "UP").await;
    // Drain again and let the grace period end: maint, shut, deleted.
    sync(&driver, &without_c).await;
    wait_status(&h, "default_web", &c.name, "DRAIN").await;
    wait_until("c to be deleted after its grace period", WAIT, || async {
        sync(&driver, &without_c).await;
        h.server("default_web", &c.name)
            .await
            .is_none()
            .then_some(())
    })
    .await;

    assert_eq!(h.reloads().await, before, "runtime changes must not reload");
    converged(&driver, &without_c).await;
    let managed = std::fs::read_to_string(&h.managed_cfg).expect("managed file");
    assert!(managed.contains(&format!(
        "server {} 127.0.0.1:{} weight 20",
        a.name, apps[0].port
    )));
    assert!(managed.contains(&format!(
        "server {} 127.0.0.1:{} weight 1",
        b.name, apps[2].port
    )));
    assert!(!managed.contains(&c.name), "{managed}");
    assert!(h.check_config().0);
}

#[tokio::test]
async fn changes_deferred_from_the_files_are_written_after_the_requeued_sync() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 200, None);
    let (a, b) = (server("a", app.port, &check), server("b", app.port, &check));
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    // Right after the reload's write: this add is left for later, and the
    // sync asks to run again when the files are due.
    let want = desired(&[&dynamic("default_web", &check, &[&a, &b])]);
    let report = driver.sync(&want).await.expect("sync");
    assert_eq!(report.applied.len(), 1, "{report:?}");
    let managed = || std::fs::read_to_string(&h.managed_cfg).expect("managed file");
    let after = report
        .requeue_after
        .expect("a deferred write asks for a requeue");
    assert!(after <= Duration::from_millis(500), "{after:?}");
    tokio::time::sleep(after).await;
    // That sync starts the write, which runs beside the syncs after it.
    let again = driver.sync(&want).await.expect("sync");
    assert!(again.applied.is_empty(), "{again:?}");
    wait_until("b in the managed file", WAIT, || async {
        managed().contains(&b.name).then_some(())
    })
    .await;
    let last = driver.sync(&want).await.expect("sync");
    assert!(last.applied.is_empty(), "{last:?}");
    assert_eq!(last.requeue_after, None, "nothing left to write: {last:?}");
}

#[tokio::test]
async fn new_server_behind_failing_check_never_receives_a_request() {
    let good = HttpBackend::start().await;
    let bad = HttpBackend::start().await;
    bad.set_health_status(503);
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 100, None);
    let a = server("good", good.port, &check);
    let b = server("bad", bad.port, &check);
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    wait_status(&h, "default_web", &a.name, "UP").await;

    let load = LoadLoop::start(h.port, "default_web", 4, 1_000_000);
    wait_until("traffic to flow", WAIT, || async {
        (good.requests() > 20).then_some(())
    })
    .await;
    sync(
        &driver,
        &desired(&[&dynamic("default_web", &check, &[&a, &b])]),
    )
    .await;
    wait_until("the bad server to fail checks", WAIT, || async {
        let row = h.server("default_web", &b.name).await?;
        (bad.health_checks() >= 5 && row["check_status"] == "L7STS").then_some(())
    })
    .await;
    let before = good.requests();
    wait_until("more traffic after the add", WAIT, || async {
        (good.requests() > before + 50).then_some(())
    })
    .await;
    let outcomes = load.stop().await;

    assert_eq!(
        bad.requests(),
        0,
        "a server that never passed a check got traffic"
    );
    let row = h.server("default_web", &b.name).await.expect("bad server");
    assert!(row["status"].starts_with("DOWN"), "{row:?}");
    assert_eq!(outcomes.keys().collect::<Vec<_>>(), ["200"], "{outcomes:?}");
}

#[tokio::test]
async fn check_change_burst_reloads_once_and_requests_see_no_errors() {
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |c| c.reload_delay_ms = 1_500).await;
    let check = http_check("/health", 200, None);
    let a = server("a", apps[0].port, &check);
    let b = server("b", apps[1].port, &check);
    let web = desired(&[&dynamic("default_web", &check, &[&a, &b])]);
    let first = sync(&driver, &web).await;
    assert!(
        matches!(first.reload, ReloadOutcome::Done { .. }),
        "the first reload of the process does not wait: {first:?}"
    );
    wait_status(&h, "default_web", &a.name, "UP").await;
    wait_status(&h, "default_web", &b.name, "UP").await;
    let (reloads, failed) = h.reloads().await;

    let load = LoadLoop::start(h.port, "default_web", 4, 1_000_000);
    wait_until("traffic to flow", WAIT, || async {
        (apps[0].requests() + apps[1].requests() > 20).then_some(())
    })
    .await;
    // The burst: a new check path, new server check arguments, a new backend.
    let check2 = http_check("/health?v=2", 200, None);
    let check3 = http_check("/health?v=2", 300, None);
    let (a3, b3) = (
        server("a", apps[0].port, &check3),
        server("b", apps[1].port, &check3),
    );
    let api = server("api", apps[1].port, &check3);
    let burst = [
        desired(&[&dynamic("default_web", &check2, &[&a, &b])]),
        desired(&[&dynamic("default_web", &check3, &[&a3, &b3])]),
        desired(&[
            &dynamic("default_web", &check3, &[&a3, &b3]),
            &dynamic("default_api", &check3, &[&api]),
        ]),
    ];
    let mut wait = Duration::ZERO;
    for want in &burst {
        let report = sync(&driver, want).await;
        let ReloadOutcome::Deferred(after) = report.reload else {
            panic!("a burst reloads once, at the end of its window: {report:?}");
        };
        wait = after;
    }
    tokio::time::sleep(wait).await;
    let last = &burst[2];
    let report = sync(&driver, last).await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    wait_status(&h, "default_api", &api.name, "UP").await;
    wait_until("checks on the new path", WAIT, || async {
        let (path, _) = apps[0].last_check()?;
        (path == "/health?v=2").then_some(())
    })
    .await;
    let before = apps[0].requests() + apps[1].requests();
    wait_until("traffic after the reload", WAIT, || async {
        (apps[0].requests() + apps[1].requests() > before + 50).then_some(())
    })
    .await;
    let outcomes = load.stop().await;

    assert_eq!(
        h.reloads().await,
        (reloads + 1, failed),
        "one reload for the burst"
    );
    assert_eq!(outcomes.keys().collect::<Vec<_>>(), ["200"], "{outcomes:?}");
    let (valid, output) = h.check_config();
    assert!(valid, "{output}");
    converged(&driver, last).await;
    assert_eq!(driver.stats().reloads, 2);
}
