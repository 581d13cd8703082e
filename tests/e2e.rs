//! End to end: the Nomad simulator, the daemon and a real HAProxy with real
//! backends. Each test asserts what HAProxy itself reports.

use haproxy_nomad_connector::daemon;
use haproxy_nomad_connector::haproxy::Driver;
use haproxy_nomad_connector::plan::diff;
use hnc_tests::backends::{HttpBackend, TcpBackend};
use hnc_tests::haproxy::{Haproxy, StatRow, all_up, servers, wait_until};
use hnc_tests::world::{RESYNC, World, http_check, job, resolved, tcp_check};
use nomad_sim::{RestartKind, StopKind};
use std::collections::BTreeMap;
use std::time::Duration;

const ON: &str = "haproxy.enable=true";
const WAIT: Duration = Duration::from_secs(30);

/// The server of `backend` whose address port is `port`.
async fn server_on(haproxy: &Haproxy, backend: &str, port: u16) -> Option<StatRow> {
    haproxy
        .stat()
        .await
        .into_iter()
        .find(|r| r["pxname"] == backend && r["addr"].ends_with(&format!(":{port}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_register_rolling_deploy_and_deregister() {
    let mut w = World::start().await;
    let (old, new) = (HttpBackend::start().await, HttpBackend::start().await);
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    let first = w.place("web", "g", &[("http", old.port)]);
    w.start_daemon();

    // Register: the server is UP in HAProxy with the job's check.
    let up = all_up(&w.haproxy, "default_web", 1).await;
    assert!(up.values().all(|(_, check)| check == "L7OK"), "{up:?}");
    assert_eq!(old.last_check().unwrap().0, "/health");
    let (reloads, failed) = w.haproxy.reloads().await;
    assert_eq!(failed, 0);

    // A new job version with another check path: new allocations get it,
    // the old one keeps its own until it stops; no reload for that.
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health/v2"))));
    w.place("web", "g", &[("http", new.port)]);
    all_up(&w.haproxy, "default_web", 2).await;
    wait_until("the new allocation checked on /health/v2", WAIT, || async {
        (new.last_check()?.0 == "/health/v2").then_some(())
    })
    .await;
    let seen = old.health_checks();
    wait_until("two more checks of the old allocation", WAIT, || async {
        (old.health_checks() >= seen + 2).then_some(())
    })
    .await;
    assert_eq!(
        old.last_check().unwrap().0,
        "/health",
        "the old allocation keeps version 0's check"
    );
    assert_eq!(
        w.haproxy.reloads().await,
        (reloads, 0),
        "a check path change needs no reload"
    );

    // Deregister: the old server drains, then is removed.
    w.sim.stop_alloc(&first, StopKind::ClientDeregister);
    wait_until("the old server draining", WAIT, || async {
        let row = server_on(&w.haproxy, "default_web", old.port).await?;
        (row["status"] == "DRAIN").then_some(())
    })
    .await;
    wait_until("the old server removed", WAIT, || async {
        server_on(&w.haproxy, "default_web", old.port)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(servers(&w.haproxy, "default_web").await.len(), 1);
    w.stop_daemon().await;
}

/// Two services (http and tcp) converged; returns the HAProxy view.
async fn converged_world() -> (World, HttpBackend, TcpBackend) {
    let mut w = World::start().await;
    let (web, db) = (HttpBackend::start().await, TcpBackend::start().await);
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    w.sim.register_job(job(
        "db",
        "db",
        &[ON, "haproxy.mode=tcp"],
        Some(tcp_check()),
    ));
    w.place("web", "g", &[("http", web.port)]);
    w.place("db", "g", &[("http", db.port)]);
    w.start_daemon();
    all_up(&w.haproxy, "default_web", 1).await;
    all_up(&w.haproxy, "default_db", 1).await;
    (w, web, db)
}

/// What must not change when nothing changes: each server's ID and the
/// time since its last state change keeps growing (no re-add, no flap).
async fn identity(haproxy: &Haproxy) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    for backend in ["default_web", "default_db"] {
        for row in haproxy.servers_state(backend).await {
            let since: u64 = row["srv_time_since_last_change"]
                .parse()
                .unwrap_or_default();
            out.insert(
                format!("{backend}/{}", row["srv_name"]),
                (row["srv_id"].clone(), since),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_restart_over_an_unchanged_world_changes_nothing() {
    let (mut w, _web, _db) = converged_world().await;
    tokio::time::sleep(RESYNC).await;
    let reloads = w.haproxy.reloads().await;
    let before = identity(&w.haproxy).await;
    w.stop_daemon().await;
    w.start_daemon();
    // Two full resync periods of the new daemon.
    tokio::time::sleep(RESYNC * 2 + Duration::from_millis(500)).await;
    assert_eq!(w.haproxy.reloads().await, reloads, "0 reloads");
    let after = identity(&w.haproxy).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "same servers"
    );
    for (server, (id, since)) in &before {
        let (id_after, since_after) = &after[server];
        assert_eq!(id, id_after, "{server} was not re-added");
        assert!(
            since_after >= since,
            "{server} did not change state: {since} then {since_after}"
        );
    }
    w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_on_a_converged_system_has_no_changes() {
    let (mut w, _web, _db) = converged_world().await;
    tokio::time::sleep(RESYNC).await;
    let config = w.config();
    let reconciler = daemon::snapshot(&resolved(config), WAIT)
        .await
        .expect("a snapshot");
    let actual = reconciler.driver().actual().await.expect("HAProxy's state");
    let changes = diff(&reconciler.assembled().desired, &actual);
    assert!(changes.is_empty(), "{changes:?}");
    assert!(changes.refusals.is_empty(), "{:?}", changes.refusals);
    w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_restart_nomad_restart_and_a_cut_stream_converge() {
    let (mut w, web, _db) = converged_world().await;

    // HAProxy killed and started again from its files.
    w.haproxy.restart().await;
    all_up(&w.haproxy, "default_web", 1).await;
    all_up(&w.haproxy, "default_db", 1).await;

    // The event stream cut mid-frame while an allocation is placed.
    let extra = HttpBackend::start().await;
    w.sim.cut_streams_mid_frame();
    w.place("web", "g", &[("http", extra.port)]);
    all_up(&w.haproxy, "default_web", 2).await;

    // Nomad restarts (buffer lost, streams closed), and a change follows.
    w.sim.restart(RestartKind::KeepState);
    let third = HttpBackend::start().await;
    w.place("web", "g", &[("http", third.port)]);
    all_up(&w.haproxy, "default_web", 3).await;

    // A wiped dev agent (index reset): the world is empty, then rebuilt.
    w.sim.restart(RestartKind::Wipe);
    wait_until("the wiped world emptied HAProxy", WAIT, || async {
        servers(&w.haproxy, "default_web")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    w.place("web", "g", &[("http", web.port)]);
    all_up(&w.haproxy, "default_web", 1).await;
    w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tags_and_job_specs_are_refused_per_service() {
    let mut w = World::start().await;
    let (good, evil) = (HttpBackend::start().await, HttpBackend::start().await);
    w.sim
        .register_job(job("good", "good", &[ON], Some(http_check("/health"))));
    let hostile_tags = [
        ON,
        "haproxy.backend.name=x;del server a/b",
        "haproxy.weight=99999",
        "haproxy.check.host=evil\nbackend stolen",
    ];
    w.sim.register_job(job(
        "evil",
        "evil",
        &hostile_tags,
        Some(http_check("/health;shutdown sessions")),
    ));
    w.place("good", "g", &[("http", good.port)]);
    w.place("evil", "g", &[("http", evil.port)]);
    w.start_daemon();

    let good_servers = all_up(&w.haproxy, "default_good", 1).await;
    assert!(
        good_servers.values().all(|(_, c)| c == "L7OK"),
        "the good service keeps its HTTP check"
    );
    let evil_servers = all_up(&w.haproxy, "default_evil", 1).await;
    assert!(
        evil_servers.values().all(|(_, c)| c == "L4OK"),
        "the hostile one falls back to TCP: {evil_servers:?}"
    );
    assert!(
        !w.haproxy
            .backends()
            .await
            .iter()
            .any(|b| b.contains("stolen") || b.contains(';'))
    );
    let (ok, text) = w.haproxy.check_config();
    assert!(ok, "{text}");

    // What the daemon logged, per service, as `explain` shows it.
    let reconciler = daemon::snapshot(&resolved(w.config()), WAIT)
        .await
        .expect("a snapshot");
    let evil_plan = reconciler
        .plans()
        .values()
        .find(|p| p.key.name == "evil")
        .unwrap();
    let problems = evil_plan.problems.join("\n");
    assert!(problems.contains("haproxy.backend.name"), "{problems}");
    assert!(problems.contains("haproxy.weight"), "{problems}");
    let instance = &evil_plan.instances[0];
    assert_eq!(
        instance.fallback.as_ref().map(|f| f.cause),
        Some("invalid-value"),
        "{instance:?}"
    );
    assert!(
        instance
            .notes
            .iter()
            .any(|n| n.contains("haproxy.check.host")),
        "{:?}",
        instance.notes
    );
    let good_plan = reconciler
        .plans()
        .values()
        .find(|p| p.key.name == "good")
        .unwrap();
    assert!(good_plan.problems.is_empty() && good_plan.instances[0].fallback.is_none());
    w.stop_daemon().await;
}
