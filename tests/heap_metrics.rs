//! The connector binary reports its allocator's own figures on `/metrics`
//! (`hnc_heap_bytes`): live data apart from what the allocator keeps, which
//! the process's RSS cannot tell.

use crate::connector_process::Connector;
use hnc_tests::backends::TcpBackend;
use hnc_tests::haproxy::free_port;
use hnc_tests::world::{World, job, metric, metrics};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_its_heap_on_metrics() {
    let w = World::start().await;
    w.sim.register_job(job("web", "web", &[ON], None));
    let web = TcpBackend::start().await;
    w.place("web", "g", &[("http", web.port)]);
    let dir = w.haproxy.dir.path().to_path_buf();
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = dir.join("connector.toml");
    let nomad = format!("address = \"{}\"\nnamespaces = [\"*\"]", w.sim.url());
    std::fs::write(
        &config,
        w.haproxy.connector_toml(
            &nomad,
            &format!("reload_delay_ms = 100\n\n[daemon]\nadmin_listen = \"{admin}\"\n"),
        ),
    )
    .expect("write the config");
    let mut connector = Connector::spawn(&[], &config, &dir.join("connector.log"));
    w.wait_converged("the connector's sync", WAIT, Instant::now())
        .await;

    let text = metrics(admin).await;
    let bytes = |kind| metric(&text, "hnc_heap_bytes", &[("kind", kind)]);
    let (allocated, active, resident, mapped) = (
        bytes("allocated"),
        bytes("active"),
        bytes("resident"),
        bytes("mapped"),
    );
    assert!(
        allocated > 0.0,
        "the binary's allocator reports its live data:\n{text}\n{}",
        connector.log()
    );
    assert!(
        allocated <= active && active <= resident && active <= mapped,
        "allocated {allocated} ≤ active {active} ≤ resident {resident}, mapped {mapped}"
    );
    assert!(connector.stop("-TERM").success(), "{}", connector.log());
}
