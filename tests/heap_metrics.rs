//! The connector binary reports its allocator's own figures on `/metrics`
//! (`hnc_heap_bytes`): live data apart from what the allocator keeps, which
//! the process's RSS cannot tell.

use crate::connector_process::{Connector, world_with_web};
use hnc_tests::haproxy::free_port;
use hnc_tests::world::{metric, metrics};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_its_heap_on_metrics() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (w, _web, config) = world_with_web(&format!(
        "reload_delay_ms = 100\n\n[daemon]\nadmin_listen = \"{admin}\"\n"
    ))
    .await;
    let dir = w.haproxy.dir.path().to_path_buf();
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
