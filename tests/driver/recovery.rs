//! HAProxy's state coming back: after a restart, after a reload, after an operator's edits.

use super::*;

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
async fn states_written_beside_the_syncs_bring_a_drain_back_after_a_restart() {
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (mut h, driver) = start("", |c| c.drain_grace_ms = 120_000).await;
    let check = http_check("/health", 200, None);
    let (a, b) = (
        server("a", apps[0].port, &check),
        server("b", apps[1].port, &check),
    );
    let api = server("api", apps[1].port, &check);
    let both = |web: &[&ServerSpec]| {
        desired(&[
            &dynamic("default_web", &check, web),
            &dynamic("default_api", &check, &[&api]),
        ])
    };
    sync(&driver, &both(&[&a, &b])).await;
    wait_status(&h, "default_web", &b.name, "UP").await;
    wait_status(&h, "default_api", &api.name, "UP").await;
    // A sync that only changes default_web (b drains), then the passes it
    // asks for before b's grace ends, as the daemon runs them: no flush,
    // the files are written beside.
    let want = both(&[&a]);
    let mut report = driver.sync(&want).await.expect("sync");
    let soon = Duration::from_secs(5);
    for _ in 0..20 {
        match report.requeue_after {
            Some(after) if after <= soon => tokio::time::sleep(after).await,
            _ => break,
        }
        report = driver.sync(&want).await.expect("sync");
    }
    assert!(
        report.requeue_after.is_none_or(|after| after > soon),
        "{report:?}"
    );
    wait_status(&h, "default_web", &b.name, "DRAIN").await;

    let states = |backend: &str| {
        let shard = state_files::path(&h.state_file, state_files::shard(backend));
        std::fs::read_to_string(shard).unwrap_or_default()
    };
    assert!(
        states("default_api").lines().any(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            fields.get(1) == Some(&"default_api") && fields.get(3) == Some(&api.name.as_str())
        }),
        "a backend the write did not dump keeps its line:\n{}",
        states("default_api")
    );
    let web = states("default_web");

    h.restart().await;
    let row = h
        .server("default_web", &b.name)
        .await
        .expect("b from the managed file");
    assert_eq!(row["status"], "DRAIN", "drain from the state file:\n{web}");
    assert!(h.server("default_api", &api.name).await.is_some());
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
