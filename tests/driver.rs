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

mod large_batches;
mod removals;

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
async fn changes_deferred_from_the_files_are_written_by_the_requeued_sync() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 200, None);
    let (a, b) = (server("a", app.port, &check), server("b", app.port, &check));
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    // Right after the reload's write: this add may be left for later, and
    // the sync then asks to run again when the files are due.
    let want = desired(&[&dynamic("default_web", &check, &[&a, &b])]);
    let report = driver.sync(&want).await.expect("sync");
    assert_eq!(report.applied.len(), 1, "{report:?}");
    let managed = || std::fs::read_to_string(&h.managed_cfg).expect("managed file");
    if !managed().contains(&b.name) {
        let after = report
            .requeue_after
            .expect("a deferred write asks for a requeue");
        assert!(after <= Duration::from_millis(500), "{after:?}");
        tokio::time::sleep(after).await;
        let again = driver.sync(&want).await.expect("sync");
        assert!(again.applied.is_empty(), "{again:?}");
    }
    assert!(managed().contains(&b.name), "{}", managed());
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

#[tokio::test]
async fn invalid_render_keeps_old_config_serving_and_is_reported() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 200, None);
    let a = server("a", app.port, &check);
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    wait_status(&h, "default_web", &a.name, "UP").await;
    let reloads = h.reloads().await;
    let managed_before = std::fs::read_to_string(&h.managed_cfg).expect("managed");

    // Forced: a line the grammar accepts but HAProxy does not.
    let mut broken = check.clone();
    broken.backend.push(vec![
        Token::word("test", "bogus-keyword", 32).expect("token"),
    ]);
    let bad = desired(&[&dynamic("default_web", &broken, &[&a])]);
    let report = sync(&driver, &bad).await;
    let ReloadOutcome::Rejected { alerts, kept_at } = &report.reload else {
        panic!("expected a rejected render: {report:?}");
    };
    let first = &alerts[0];
    assert_eq!(first.file.as_deref(), Some(&*kept_at.to_string_lossy()));
    let line = first.line.expect("a line number") as usize;
    let rejected = std::fs::read_to_string(kept_at).expect("rejected render kept");
    assert!(
        rejected
            .lines()
            .nth(line - 1)
            .unwrap_or("")
            .contains("bogus-keyword")
    );
    assert!(
        first.message.contains("unknown keyword 'bogus-keyword'"),
        "{first}"
    );
    assert_eq!(driver.stats().validations_failed, 1);

    assert_eq!(
        h.reloads().await,
        reloads,
        "no reload with an invalid render"
    );
    assert_eq!(
        std::fs::read_to_string(&h.managed_cfg).expect("managed"),
        managed_before
    );
    assert_eq!(
        get(h.port, "default_web").await,
        Ok(200),
        "the old config serves"
    );
    // The same render is not validated again, but still reported.
    let again = sync(&driver, &bad).await;
    assert!(matches!(again.reload, ReloadOutcome::Rejected { .. }));
    assert_eq!(driver.stats().validations_failed, 1);
}

const CUSTOM: &str = "
backend be_custom
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1
    server web1 127.0.0.1:1 check inter 1s
";

#[tokio::test]
async fn restart_from_config_restores_servers_and_states_and_resync_the_rest() {
    let apps = [
        HttpBackend::start().await,
        HttpBackend::start().await,
        HttpBackend::start().await,
    ];
    let (mut h, driver) = start(CUSTOM, |_| {}).await;
    let check = http_check("/health", 200, None);
    let mut a = server("a", apps[0].port, &check);
    a.weight = 7;
    let b = server("b", apps[1].port, &check);
    let c = server("c", apps[2].port, &check);
    let mut custom = BackendSpec::custom("be_custom");
    custom.insert(c.clone());
    sync(
        &driver,
        &desired(&[&dynamic("default_web", &check, &[&a, &b]), &custom]),
    )
    .await;
    wait_status(&h, "default_web", &a.name, "UP").await;
    wait_status(&h, "default_web", &b.name, "UP").await;
    wait_status(&h, "be_custom", &c.name, "UP").await;
    let want = desired(&[&dynamic("default_web", &check, &[&a]), &custom]);
    sync(&driver, &want).await;
    wait_status(&h, "default_web", &b.name, "DRAIN").await;

    h.restart().await;
    // Before any resync: servers from the managed file, states from the state file.
    let row = h
        .server("default_web", &a.name)
        .await
        .expect("a from the managed file");
    assert_eq!(
        (row["status"].as_str(), row["weight"].as_str()),
        ("UP", "7")
    );
    let row = h
        .server("default_web", &b.name)
        .await
        .expect("b from the managed file");
    let shard = state_files::path(&h.state_file, state_files::shard("default_web"));
    let states = std::fs::read_to_string(shard).unwrap_or_default();
    assert_eq!(
        row["status"],
        "DRAIN",
        "drain from the state file:\n{states}\n{}",
        h.log()
    );
    assert!(
        h.server("be_custom", &c.name).await.is_none(),
        "runtime servers are lost"
    );
    // One resync brings back the rest.
    sync(&driver, &want).await;
    assert!(h.server("be_custom", &c.name).await.is_some());
    assert!(
        h.server("be_custom", "web1").await.is_some(),
        "operator server untouched"
    );
    wait_status(&h, "be_custom", &c.name, "UP").await;
    converged(&driver, &want).await;
}

#[tokio::test]
async fn operator_backend_servers_return_up_after_a_reload() {
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start(CUSTOM, |_| {}).await;
    let check = http_check("/health", 200, None);
    let a = server("a", apps[0].port, &check);
    let c = server("c", apps[1].port, &check);
    let mut custom = BackendSpec::custom("be_custom");
    custom.insert(c.clone());
    sync(
        &driver,
        &desired(&[&dynamic("default_web", &check, &[&a]), &custom]),
    )
    .await;
    wait_status(&h, "be_custom", &c.name, "UP").await;

    let check2 = http_check("/health?v=2", 200, None);
    let a2 = server("a", apps[0].port, &check2);
    let report = sync(
        &driver,
        &desired(&[&dynamic("default_web", &check2, &[&a2]), &custom]),
    )
    .await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    // Re-added at the end of the same apply, UP at once: it was UP before.
    let row = h.server("be_custom", &c.name).await.expect("re-added");
    assert!(row["status"].starts_with("UP"), "{row:?}");
    let state = h.servers_state("be_custom").await;
    assert!(state.iter().any(|r| r["srv_name"] == "web1"));
}

#[tokio::test]
async fn refusals_static_balance_and_name_collision() {
    let extra = "
backend be_static
    balance static-rr
    server s1 127.0.0.1:1

backend default_taken
    server op1 127.0.0.1:2
";
    let (h, driver) = start(extra, |_| {}).await;
    let check = http_check("/health", 200, None);
    let mut fixed = BackendSpec::custom("be_static");
    fixed.insert(server("c", 3, &check));
    let taken = dynamic("default_taken", &check, &[&server("d", 4, &check)]);
    let reloads = h.reloads().await;
    let report = sync(&driver, &desired(&[&fixed, &taken])).await;

    assert!(
        report
            .refusals
            .iter()
            .any(|r| matches!(r, Refusal::StaticBalance { backend, .. } if backend == "be_static")),
        "{report:?}"
    );
    assert!(report.refusals.contains(&Refusal::NameCollision {
        backend: "default_taken".into()
    }));
    assert_eq!(report.reload, ReloadOutcome::NotNeeded);
    assert_eq!(h.reloads().await, reloads);
    assert_eq!(
        h.statuses("be_static").await.keys().collect::<Vec<_>>(),
        ["s1"]
    );
    assert_eq!(
        h.statuses("default_taken").await.keys().collect::<Vec<_>>(),
        ["op1"]
    );
}

#[tokio::test]
async fn resync_repairs_drift_made_by_an_operator() {
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 200, None);
    let a = server("a", apps[0].port, &check);
    let b = server("b", apps[1].port, &check);
    let want = desired(&[&dynamic("default_web", &check, &[&a, &b])]);
    sync(&driver, &want).await;
    wait_status(&h, "default_web", &b.name, "UP").await;
    let reloads = h.reloads().await;

    h.cmd(&format!("set server default_web/{} state maint", b.name))
        .await;
    h.cmd(&format!("del server default_web/{}", b.name)).await;
    h.cmd(&format!("set server default_web/{} weight 50", a.name))
        .await;
    assert!(h.server("default_web", &b.name).await.is_none());
    sync(&driver, &want).await;

    wait_status(&h, "default_web", &b.name, "UP").await;
    assert_eq!(
        h.server("default_web", &a.name).await.expect("a")["weight"],
        "1"
    );
    assert_eq!(h.reloads().await, reloads);
    converged(&driver, &want).await;
}

#[tokio::test]
async fn host_map_gives_checks_the_servers_own_address() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 200, Some(&h.host_map));
    assert!(check.needs_host_entry);
    let a = server("a", app.port, &check);
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    wait_status(&h, "default_web", &a.name, "UP").await;
    let expected = format!("127.0.0.1:{}", app.port);
    let (_, host) = app.last_check().expect("a check");
    assert_eq!(host.as_deref(), Some(expected.as_str()));
    let map = std::fs::read_to_string(&h.host_map).expect("host map");
    assert_eq!(map, format!("{} {expected}\n", a.name));
}

#[tokio::test]
async fn per_server_check_uri_changes_without_a_reload() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |_| {}).await;
    let check = render_check("/health", 200, None, Some(&h.uri_map));
    let a = server("a", app.port, &check);
    assert!(a.uri_entry.is_some());
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    wait_status(&h, "default_web", &a.name, "UP").await;
    assert_eq!(app.last_check().expect("a check").0, "/health");
    let reloads = h.reloads().await;

    let moved = render_check("/health?v=3", 200, None, Some(&h.uri_map));
    assert_eq!(
        moved.backend, check.backend,
        "the path is not in the backend"
    );
    let a3 = server("a", app.port, &moved);
    let report = sync(
        &driver,
        &desired(&[&dynamic("default_web", &moved, &[&a3])]),
    )
    .await;
    assert_eq!(report.reload, ReloadOutcome::NotNeeded);
    wait_until("checks on the new path", WAIT, || async {
        (app.last_check()?.0 == "/health?v=3").then_some(())
    })
    .await;
    assert_eq!(h.reloads().await, reloads);
    let map = std::fs::read_to_string(&h.uri_map).expect("uri map");
    assert_eq!(map, format!("{} /health?v=3\n", a.name));
}

const REGEX: &str = r"^app[0-9]+\.example\.com$";

fn with_domains(mut want: Desired, entries: &[(DomainMatch, &str, &str)]) -> Desired {
    for (kind, pattern, backend) in entries {
        want.domains
            .insert((*kind, pattern.to_string()), backend.to_string());
    }
    want
}

/// Asserts that a request with this `Host` went through the operator's
/// frontend to `to` (and not to `other`).
async fn routes(h: &Haproxy, host: &str, to: &HttpBackend, other: &HttpBackend) {
    let (before, elsewhere) = (to.requests(), other.requests());
    assert_eq!(h.get_host(host).await, Ok(200), "Host: {host}");
    assert_eq!(
        to.requests(),
        before + 1,
        "Host: {host} reached its backend"
    );
    assert_eq!(other.requests(), elsewhere, "Host: {host} reached another");
}

fn verbs(report: &haproxy::ApplyReport) -> Vec<(&str, &'static str)> {
    let mut verbs: Vec<_> = report
        .applied_domains
        .iter()
        .map(|c| (c.pattern.as_str(), c.action.verb()))
        .collect();
    verbs.sort();
    verbs
}

fn file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Two backends, `default_api` on `apps[0]` and `default_www` on
/// `apps[1]`, both UP.
async fn two_backends(
    h: &Haproxy,
    driver: &RuntimeDriver,
    apps: &[HttpBackend; 2],
    domains: &[(DomainMatch, &str, &str)],
) -> (Desired, haproxy::ApplyReport) {
    let check = http_check("/health", 200, None);
    let a = server("a", apps[0].port, &check);
    let b = server("b", apps[1].port, &check);
    let want = with_domains(
        desired(&[
            &dynamic("default_api", &check, &[&a]),
            &dynamic("default_www", &check, &[&b]),
        ]),
        domains,
    );
    let report = sync(driver, &want).await;
    wait_status(h, "default_api", &a.name, "UP").await;
    wait_status(h, "default_www", &b.name, "UP").await;
    (want, report)
}

#[tokio::test]
async fn domains_route_requests_by_host_and_change_without_a_reload() {
    use DomainMatch::{Exact, Prefix, Regex};
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Prefix, "www.", "default_www"),
        (Regex, REGEX, "default_api"),
    ];
    let (want, report) = two_backends(&h, &driver, &apps, &domains).await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    assert_eq!(
        verbs(&report),
        [(REGEX, "add"), ("api.example.com", "add"), ("www.", "add")],
        "added in the apply whose reload created their backends"
    );
    let reloads = h.reloads().await;

    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    routes(&h, "WWW.Example.com:8080", www, api).await;
    routes(&h, "www.other.org", www, api).await;
    routes(&h, "app12.example.com", api, www).await;
    assert_eq!(h.get_host("other.example.com").await, Ok(503));
    assert_eq!(
        h.get_host("app1xexample.com").await,
        Ok(503),
        "the regex's `\\.` reached HAProxy as a literal dot"
    );
    assert_eq!(
        h.map_entries(&h.domain_map_regex).await,
        [(REGEX.to_string(), "default_api".to_string())]
    );
    converged(&driver, &want).await;

    // Repoint one entry, remove another: runtime only.
    let moved = with_domains(
        Desired {
            domains: Default::default(),
            ..want.clone()
        },
        &[
            (Exact, "api.example.com", "default_www"),
            (Regex, REGEX, "default_api"),
        ],
    );
    let report = sync(&driver, &moved).await;
    assert_eq!(report.reload, ReloadOutcome::NotNeeded);
    assert_eq!(
        verbs(&report),
        [("api.example.com", "set"), ("www.", "remove")]
    );
    routes(&h, "api.example.com", www, api).await;
    assert_eq!(h.get_host("www.example.com").await, Ok(503));
    routes(&h, "app7.example.com", api, www).await;
    assert_eq!(h.reloads().await, reloads, "map changes must not reload");
    converged(&driver, &moved).await;
    assert_eq!(file(&h.domain_map_exact), "api.example.com default_www\n");
    assert_eq!(file(&h.domain_map_prefix), "");
    assert_eq!(file(&h.domain_map_regex), format!("{REGEX} default_api\n"));
    let stats = driver.stats();
    assert_eq!(stats.domains_applied.values().sum::<u64>(), 5);
}

#[tokio::test]
async fn domain_entries_survive_a_restart_from_their_files() {
    use DomainMatch::{Exact, Prefix, Regex};
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (mut h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Prefix, "www.", "default_www"),
        (Regex, REGEX, "default_www"),
    ];
    let (want, _) = two_backends(&h, &driver, &apps, &domains).await;

    h.restart().await;
    // Before any sync: HAProxy loaded the entries from the files.
    assert_eq!(
        h.map_entries(&h.domain_map_exact).await,
        [("api.example.com".to_string(), "default_api".to_string())]
    );
    assert_eq!(
        h.map_entries(&h.domain_map_regex).await,
        [(REGEX.to_string(), "default_www".to_string())],
        "the regex keeps its backslashes through the file"
    );
    // The servers come back from the managed file; the state file last
    // saw them before their first check, so they pass their checks again.
    wait_status(&h, "default_api", &names::server_name("a"), "UP").await;
    wait_status(&h, "default_www", &names::server_name("b"), "UP").await;
    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    routes(&h, "www.example.com", www, api).await;
    routes(&h, "app3.example.com", www, api).await;
    converged(&driver, &want).await;
}

#[tokio::test]
async fn operator_map_edits_are_repaired_by_the_next_sync() {
    use DomainMatch::Exact;
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Exact, "www.example.com", "default_www"),
    ];
    let (want, _) = two_backends(&h, &driver, &apps, &domains).await;
    let reloads = h.reloads().await;
    let map = h.domain_map_exact.display().to_string();

    h.cmd(&format!("del map {map} api.example.com")).await;
    h.cmd(&format!("add map {map} www.example.com default_api"))
        .await;
    h.cmd(&format!("add map {map} rogue.example.com default_api"))
        .await;
    assert_eq!(h.get_host("api.example.com").await, Ok(503));
    let report = sync(&driver, &want).await;

    assert_eq!(
        verbs(&report),
        [
            ("api.example.com", "add"),
            ("rogue.example.com", "remove"),
            ("www.example.com", "reset")
        ]
    );
    let mut held = h.map_entries(&h.domain_map_exact).await;
    held.sort();
    assert_eq!(
        held,
        [
            ("api.example.com".to_string(), "default_api".to_string()),
            ("www.example.com".to_string(), "default_www".to_string())
        ]
    );
    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    routes(&h, "www.example.com", www, api).await;
    assert_eq!(h.get_host("rogue.example.com").await, Ok(503));
    assert_eq!(h.reloads().await, reloads);
    converged(&driver, &want).await;
    let mut lines: Vec<String> = file(&h.domain_map_exact)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        ["api.example.com default_api", "www.example.com default_www"]
    );
}

#[tokio::test]
async fn bad_domain_patterns_are_refused_and_never_sent() {
    use DomainMatch::{Exact, Prefix, Regex};
    let unused = |c: &mut haproxy::Config| {
        c.domain_map_regex = c
            .domain_map_regex
            .as_ref()
            .map(|p| p.with_file_name("unused-regex.map"));
    };
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", unused).await;
    let unused_map = h.dir.path().join("unused-regex.map");
    assert_eq!(file(&unused_map), "", "created empty at start");
    let (plain, _) = two_backends(&h, &driver, &apps, &[]).await;
    let sent = driver.stats().commands;

    let bad = [
        (Exact, "api.example.com;del map x y", "default_api"),
        (Prefix, "API.", "default_api"),
        (Regex, "^api", "default_api"),
    ];
    let report = sync(&driver, &with_domains(plain, &bad)).await;

    assert_eq!(driver.stats().commands, sent, "nothing was sent");
    assert!(report.applied_domains.is_empty());
    let shown: Vec<String> = report.refusals.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(matches!(report.refusals[0], Refusal::InvalidDomain { .. }));
    assert!(
        shown[0].contains("\"api.example.com;del map x y\"")
            && shown[0].contains("\"default_api\""),
        "{shown:?}"
    );
    assert!(matches!(report.refusals[1], Refusal::InvalidDomain { .. }));
    assert!(matches!(
        report.refusals[2],
        Refusal::DomainMapNotLoaded { .. }
    ));
    assert!(h.map_entries(&h.domain_map_exact).await.is_empty());
    assert!(h.map_entries(&h.domain_map_prefix).await.is_empty());
    assert_eq!(file(&h.domain_map_exact), "");
}

#[tokio::test]
async fn regex_haproxy_cannot_compile_is_refused_and_never_persisted() {
    use DomainMatch::{Exact, Regex};
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Regex, "^(api", "default_api"),
    ];
    let (want, report) = two_backends(&h, &driver, &apps, &domains).await;

    assert_eq!(verbs(&report), [("api.example.com", "add")]);
    let refused = report
        .refusals
        .iter()
        .find_map(|r| match r {
            Refusal::DomainRefused {
                pattern,
                backend,
                reply,
                ..
            } => Some((pattern.as_str(), backend.as_str(), reply.as_str())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no DomainRefused in {:?}", report.refusals));
    assert_eq!((refused.0, refused.1), ("^(api", "default_api"));
    assert!(refused.2.contains("is invalid"), "{}", refused.2);
    assert!(h.map_entries(&h.domain_map_regex).await.is_empty());
    assert_eq!(file(&h.domain_map_regex), "", "a restart must not meet it");
    assert!(h.check_config().0);
    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    // Refused again on every pass, and nothing else changes.
    let again = sync(&driver, &want).await;
    assert!(again.applied_domains.is_empty());
    assert_eq!(again.refusals.len(), 1, "{:?}", again.refusals);
}

#[tokio::test]
async fn domain_of_a_new_backend_waits_for_the_reload_that_creates_it() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |c| c.reload_delay_ms = 1_500).await;
    let check = http_check("/health", 200, None);
    let a = server("a", app.port, &check);
    let web = dynamic("default_web", &check, &[&server("w", app.port, &check)]);
    // The first reload of the process goes at once; the next one waits.
    let first = sync(&driver, &desired(&[&web])).await;
    assert!(
        matches!(first.reload, ReloadOutcome::Done { .. }),
        "{first:?}"
    );
    let want = with_domains(
        desired(&[&web, &dynamic("default_api", &check, &[&a])]),
        &[(DomainMatch::Exact, "api.example.com", "default_api")],
    );
    let report = sync(&driver, &want).await;
    let ReloadOutcome::Deferred(after) = report.reload else {
        panic!("the new backend waits for its reload: {report:?}");
    };
    assert_eq!(report.waiting_domains, 1, "{report:?}");
    assert!(h.map_entries(&h.domain_map_exact).await.is_empty());

    tokio::time::sleep(after).await;
    let report = sync(&driver, &want).await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    assert_eq!(verbs(&report), [("api.example.com", "add")]);
    wait_status(&h, "default_api", &a.name, "UP").await;
    assert_eq!(h.get_host("api.example.com").await, Ok(200));
    converged(&driver, &want).await;
}

#[tokio::test]
async fn driver_refuses_two_maps_at_one_path() {
    // Refused before any socket or file is touched.
    let mut config = haproxy::Config::default();
    config.domain_map_prefix = config.domain_map_exact.clone();
    let err = RuntimeDriver::start(config)
        .await
        .expect_err("two maps at one path");
    assert!(matches!(err, haproxy::Error::MapPathShared { .. }), "{err}");
}

#[tokio::test]
async fn a_new_backend_brings_its_servers_down_until_their_first_passing_check() {
    let good = HttpBackend::start().await;
    let bad = HttpBackend::start().await;
    bad.set_health_status(503);
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 300, None);
    let (a, b) = (
        server("good", good.port, &check),
        server("bad", bad.port, &check),
    );
    let web = dynamic("default_web", &check, &[&a, &b]);
    // Requests run from before the backend exists: a server that came up
    // before its first check would get some at once.
    let load = LoadLoop::start(h.port, "default_web", 4, 1_000_000);
    let report = sync(&driver, &desired(&[&web])).await;

    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    assert_eq!(report.waiting, 0, "no server waits for a second pass");
    let added: Vec<(&str, &str)> = report
        .applied
        .iter()
        .map(|c| (c.server.as_str(), c.action.verb()))
        .collect();
    assert_eq!(added, [(&*b.name, "add"), (&*a.name, "add")]);
    for s in [&a, &b] {
        let row = h
            .server("default_web", &s.name)
            .await
            .expect("in the reload");
        assert!(
            row["status"].starts_with("DOWN") || row["check_status"] != "INI",
            "UP before its first check: {row:?}"
        );
    }
    wait_status(&h, "default_web", &a.name, "UP").await;
    wait_until("traffic to flow", WAIT, || async {
        (good.requests() > 50).then_some(())
    })
    .await;
    load.stop().await;
    assert_eq!(
        bad.requests(),
        0,
        "a server that never passed a check got traffic"
    );
    assert!(h.server("default_web", &b.name).await.expect("bad")["status"].starts_with("DOWN"));

    // A backend sorted before it shifts its ID: its states still come back,
    // without HAProxy warning about the state file.
    let app = HttpBackend::start().await;
    let c = server("api", app.port, &check);
    let want = desired(&[&web, &dynamic("default_api", &check, &[&c])]);
    let report = sync(&driver, &want).await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    let row = h.server("default_web", &a.name).await.expect("good");
    assert_eq!(row["status"], "UP", "state lost across the reload: {row:?}");
    wait_status(&h, "default_api", &c.name, "UP").await;
    converged(&driver, &want).await;
    let log = h.log();
    assert!(!log.contains("ID mismatch"), "{log}");
    assert!(log.contains("changed from server-state"), "{log}");
}
