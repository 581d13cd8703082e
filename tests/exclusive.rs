//! One connector per HAProxy: a second connector on the same HAProxy (the
//! same managed config) refuses to start, names the first one's PID and
//! exits non-zero without touching HAProxy; the lock frees when the first
//! dies, however it dies.

use crate::connector_process::{Connector, QUIET, world_with_web};
use hnc_tests::backends::TcpBackend;
use hnc_tests::world::job;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connector_on_one_haproxy_refuses_naming_the_first_ones_pid() {
    let (w, _web, config) = world_with_web(QUIET).await;
    let dir = w.haproxy.dir.path().to_path_buf();

    let mut first = Connector::spawn(&[], &config, &dir.join("first.log"));
    w.wait_converged("the first connector's sync", WAIT, Instant::now())
        .await;
    let reloads = w.haproxy.reloads().await;

    let mut second = Connector::spawn(&[], &config, &dir.join("second.log"));
    let status = second
        .exited(WAIT)
        .await
        .unwrap_or_else(|| panic!("the second connector keeps running:\n{}", second.log()));
    let said = second.log();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("PID {}", first.pid())), "{said}");
    assert!(said.contains(".managed.cfg.lock"), "{said}");
    assert_eq!(
        w.haproxy.reloads().await,
        reloads,
        "the second never reloaded"
    );
    assert!(
        first.exited(Duration::ZERO).await.is_none(),
        "the first keeps running:\n{}",
        first.log()
    );

    // The first dies without a chance to clean up: the kernel frees its
    // lock, and the next connector starts and syncs a change made meanwhile.
    first.stop("-KILL");
    w.sim.register_job(job("api", "api", &[ON], None));
    let api = TcpBackend::start().await;
    w.place("api", "g", &[("http", api.port)]);
    let mut third = Connector::spawn(&[], &config, &dir.join("third.log"));
    w.wait_converged("the next connector's sync", WAIT, Instant::now())
        .await;
    assert!(
        third.exited(Duration::ZERO).await.is_none(),
        "{}",
        third.log()
    );
    assert!(third.stop("-TERM").success(), "{}", third.log());
}
