//! A config reload (SIGHUP) never stops the daemon: a plugin path that is a
//! FIFO is refused at once, naming it, where a read would wait for a writer
//! forever; the old plugins stay, services keep syncing, and the daemon
//! still reloads and stops on request.

use crate::connector_process::{Connector, QUIET, world_with_web};
use hnc_tests::backends::TcpBackend;
use hnc_tests::world::job;
use std::process::Command;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
const WAIT: Duration = Duration::from_secs(30);

/// Waits until the connector's log holds every one of `needles`.
async fn logged(connector: &Connector, needles: &[&str]) {
    let deadline = Instant::now() + WAIT;
    while !needles.iter().all(|n| connector.log().contains(n)) {
        assert!(
            Instant::now() < deadline,
            "the log never said {needles:?}:\n{}",
            connector.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_as_a_plugin_path_is_refused_at_reload_and_the_daemon_keeps_syncing() {
    let (w, _web, config) = world_with_web(QUIET).await;
    let dir = w.haproxy.dir.path().to_path_buf();
    let mut connector = Connector::spawn(&[], &config, &dir.join("connector.log"));
    w.wait_converged("the first sync", WAIT, Instant::now())
        .await;

    let fifo = dir.join("http.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let good = std::fs::read_to_string(&config).expect("the config");
    let with_fifo = format!("{good}\n[mapping.plugins]\nhttp = \"{}\"\n", fifo.display());
    std::fs::write(&config, with_fifo).expect("write the config");
    assert!(connector.signal("-HUP"), "kill -HUP");
    logged(
        &connector,
        &["reload refused", "not a regular file (a FIFO)"],
    )
    .await;

    // The loop was never held: a service registered now reaches HAProxy.
    w.sim.register_job(job("api", "api", &[ON], None));
    let api = TcpBackend::start().await;
    w.place("api", "g", &[("http", api.port)]);
    w.wait_converged(
        "a new service after the refused reload",
        WAIT,
        Instant::now(),
    )
    .await;

    // A good config reloads, and the daemon stops on request.
    std::fs::write(&config, good).expect("write the config");
    assert!(connector.signal("-HUP"), "kill -HUP");
    logged(&connector, &["config reloaded"]).await;
    assert!(connector.signal("-TERM"), "kill -TERM");
    let status = connector.exited(WAIT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        connector.log()
    );
}
