//! Checks: each server's own Host and URI from the maps; new servers down until a check passes.

use super::*;

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
