//! A misbehaving plugin in the running daemon: it costs its own service a
//! TCP check, never another service's placement, the service's backend, or
//! a prompt shutdown. Real HAProxy, the Nomad simulator, WAT plugins.

use hnc_tests::backends::HttpBackend;
use hnc_tests::haproxy::{all_up, servers};
use hnc_tests::hostile::Hostility;
use hnc_tests::mapping::write_plugin;
use hnc_tests::world::{World, http_check, job};
use std::time::Duration;

const ON: &str = "haproxy.enable=true";

/// A world whose `http` checks go to a hostile plugin; `extra` is added to
/// its `[mapping]` config as TOML.
fn start(w: &mut World, hostility: Hostility, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(dir.path(), "hostile", &hostility.component().unwrap());
    let mut config = w.config();
    let mapping = haproxy_nomad_connector::config::Config::parse(&format!(
        "[mapping.plugins]\nhttp = {:?}\n{extra}",
        path.display().to_string()
    ))
    .expect("a valid config")
    .mapping;
    config.mapping = mapping;
    w.start_daemon_with(config);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_answering_status_2xx_leaves_the_service_a_tcp_checked_backend() {
    let mut w = World::start().await;
    let backend = HttpBackend::start().await;
    w.sim
        .register_job(job("x-web", "x-web", &[ON], Some(http_check("/health"))));
    w.place("x-web", "g", &[("http", backend.port)]);
    let _dir = start(&mut w, Hostility::Status2xx, "");
    // HAProxy has no `status 2xx`: the host refuses the value and the
    // service keeps its backend, checked by TCP (L4OK, not L7OK).
    let up = all_up(&w.haproxy, "default_x-web", 1).await;
    assert!(up.values().all(|(_, check)| check == "L4OK"), "{up:?}");
    assert!(backend.last_check().is_none(), "no HTTP check reached it");
    let (_, failed) = w.haproxy.reloads().await;
    assert_eq!(failed, 0);
    assert!(w.stop_daemon_within(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_bomb_delays_no_other_service_nor_shutdown() {
    let mut w = World::start().await;
    let (web, bomb, later) = (
        HttpBackend::start().await,
        HttpBackend::start().await,
        HttpBackend::start().await,
    );
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    w.sim
        .register_job(job("x-bomb", "x-bomb", &[ON], Some(http_check("/health"))));
    w.place("web", "g", &[("http", web.port)]);
    w.place("x-bomb", "g", &[("http", bomb.port)]);
    let _dir = start(&mut w, Hostility::LogBomb, "");
    // Each bomb call ends at its budget: both services reach HAProxy, the
    // bomb's with a TCP check.
    all_up(&w.haproxy, "default_web", 1).await;
    all_up(&w.haproxy, "default_x-bomb", 1).await;
    // Resyncs keep coming (the failure is remembered, not re-run); a new
    // placement of the other service still reaches HAProxy.
    tokio::time::sleep(hnc_tests::world::RESYNC * 2).await;
    w.place("web", "g", &[("http", later.port)]);
    all_up(&w.haproxy, "default_web", 2).await;
    assert!(w.stop_daemon_within(Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_a_plugin_call_in_flight() {
    let mut w = World::start().await;
    let (web, spin) = (HttpBackend::start().await, HttpBackend::start().await);
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    w.place("web", "g", &[("http", web.port)]);
    // A plugin allowed to run for 10 minutes per call.
    let _dir = start(
        &mut w,
        Hostility::Spin,
        "[mapping.plugin_limits.http]\nfuel = 9000000000000000000\ndeadline_ms = 600000\n",
    );
    all_up(&w.haproxy, "default_web", 1).await;
    w.sim
        .register_job(job("x-spin", "x-spin", &[ON], Some(http_check("/health"))));
    w.place("x-spin", "g", &[("http", spin.port)]);
    // Let the daemon see the placement and enter the endless call.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        w.stop_daemon_within(Duration::from_secs(2)).await,
        "the daemon did not stop within 2 s of the request"
    );
    // The interrupted call's fallback never reached HAProxy.
    assert!(servers(&w.haproxy, "default_x-spin").await.is_empty());
}
