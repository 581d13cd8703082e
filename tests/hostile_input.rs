//! Hostile input against the whole daemon (the Nomad simulator, the daemon
//! in-process, a real HAProxy): a huge event-stream frame, a flood of idle
//! connections on the admin listener, check timings beyond HAProxy's
//! timers, and text with control characters in `map`'s output.
//!
//! Each test prints what it measured; none asserts a tight duration.
//! `cargo test -p hnc-tests --test integration hostile_input:: -- --nocapture`.

use hnc_tests::convergence;
use hnc_tests::world::{World, job, metrics, tcp_check};
use serde_json::json;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
/// The generous limit of every wait (never an assertion on speed).
const WAIT: Duration = Duration::from_secs(30);

/// Whether HAProxy runs a connector server in `backend`.
async fn has_server(w: &World, backend: &str) -> bool {
    let Ok((view, _)) = convergence::haproxy_view(&w.haproxy).await else {
        return false;
    };
    view.get(backend).is_some_and(|servers| !servers.is_empty())
}

/// Registers `id` with one Nomad service `name` and places an allocation.
fn add_service(w: &World, id: &str, name: &str, port: u16) {
    w.sim.register_job(job(id, name, &[ON], Some(tcp_check())));
    w.place(id, "g", &[("http", port)]);
}

/// Waits until `backend` has a server in HAProxy; the time since `since`.
async fn wait_server(w: &World, backend: &str, since: Instant) -> Duration {
    let deadline = Instant::now() + WAIT;
    while !has_server(w, backend).await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {backend} in HAProxy:\n{}",
            w.haproxy.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    since.elapsed()
}

/// A 24 MB job registration (one event-stream frame: the `Job` event
/// carries the whole job) followed by a new, unrelated service: the new
/// service's server reaches HAProxy within 10 s of its registration.
///
/// Why a bound, and this one: the stream is ordered, so the service's event
/// can only be read after the big frame; what must not happen is the frame
/// costing more than reading it. The old decoder searched the unfinished
/// line again on every chunk (quadratic): this frame held an unrelated
/// service back for 97.5 s. Decoding is now linear (tens of ms per MB in a
/// debug build), so the 10 s bound is generous, and the old code fails it
/// by a factor of ten. The test prints the delay, and the delay of a
/// service registered without a big frame before it, for comparison.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_24_mb_frame_does_not_hold_back_another_service() {
    let mut w = World::start().await;
    w.start_daemon();
    let t = Instant::now();
    add_service(&w, "first", "first", 20_001);
    let baseline = wait_server(&w, "default_first", t).await;

    let mut big = job("big", "big", &[], None);
    big["Meta"] = json!({"blob": "x".repeat(24 << 20)});
    let t = Instant::now();
    w.sim.register_job(big);
    add_service(&w, "other", "other", 20_002);
    let delayed = wait_server(&w, "default_other", t).await;
    println!(
        "a service behind a 24 MB frame reached HAProxy after {delayed:?} \
         (without the frame: {baseline:?})"
    );
    assert!(
        delayed < Duration::from_secs(10),
        "a 24 MB frame held another service back for {delayed:?}"
    );
    w.stop_daemon().await;
}

/// A frame over `[nomad] max_frame_bytes` is refused with an error naming
/// its size: the daemon drops the stream and re-lists (it never stalls), so
/// a service registered after it still reaches HAProxy, and `/readyz`
/// showed the cause meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_cap_relists_and_services_still_sync() {
    let mut w = World::start().await;
    let (mut config, admin) = w.config_with_admin();
    config.nomad.max_frame_bytes = 1 << 20;
    w.start_daemon_with(config);
    // The big job must come as a stream frame, not in the start-up listing.
    let streams = hnc_tests::haproxy::wait_until("the event stream opened", WAIT, || async {
        let opened = w.sim.request_count("/v1/event/stream");
        (opened > 0).then_some(opened)
    })
    .await;
    let mut big = job("big", "big", &[], None);
    big["Meta"] = json!({"blob": "x".repeat(2 << 20)});
    w.sim.register_job(big);
    add_service(&w, "after", "after", 20_003);
    let took = wait_server(&w, "default_after", Instant::now()).await;
    println!("a service after an oversized frame reached HAProxy after {took:?}");
    // The daemon re-lists first, then opens the stream again.
    hnc_tests::haproxy::wait_until("the stream opened again", WAIT, || async {
        (w.sim.request_count("/v1/event/stream") > streams).then_some(())
    })
    .await;
    let text = metrics(admin).await;
    assert!(
        hnc_tests::world::metric(&text, "hnc_nomad_reconnects_total", &[]) >= 1.0,
        "{text}"
    );
    w.stop_daemon().await;
}

/// 2,000 idle connections on the admin listener (more than the default
/// soft limit of 1,024 descriptors allows a process without a cap): the
/// listener keeps at most its connection limit, `/metrics` still answers,
/// and a new service still reaches HAProxy meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_and_services_sync_under_2000_idle_admin_connections() {
    raise_fd_limit(8_192);
    let mut w = World::start().await;
    let (config, admin) = w.config_with_admin();
    w.start_daemon_with(config);
    hnc_tests::haproxy::wait_until("the admin listener", WAIT, || async {
        tokio::net::TcpStream::connect(admin).await.ok().map(drop)
    })
    .await;
    let mut idle = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        idle.push(
            tokio::net::TcpStream::connect(admin)
                .await
                .expect("connect"),
        );
    }
    let t = Instant::now();
    add_service(&w, "late", "late", 20_004);
    let took = wait_server(&w, "default_late", t).await;
    let (code, body) = hnc_tests::load::http_get(admin, "/metrics")
        .await
        .expect("/metrics answers under 2,000 idle connections");
    assert_eq!(code, 200);
    assert!(body.contains("hnc_ready"), "{body}");
    let open = open_descriptors();
    println!(
        "2,000 idle admin connections: a new service synced after {took:?}; \
         the test process holds {open} descriptors (2,000 of them the clients')"
    );
    assert!(
        open < 2_000 + 700,
        "the listener holds more connections than its limit: {open} descriptors"
    );
    drop(idle);
    w.stop_daemon().await;
}

/// A Nomad check interval and timeout of 2^63-1 ns (Nomad accepts them):
/// once rendered `inter 4294967295ms`, which `haproxy -c` refuses as a
/// timer overflow, and the backend was held back for ever. Clamped to
/// HAProxy's limit, the backend and its server reach HAProxy, and `haproxy
/// -c` accepts the managed file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_timings_beyond_haproxys_timers_are_clamped() {
    let mut w = World::start().await;
    w.start_daemon();
    let forever = json!({"Name": "slow", "Type": "tcp",
        "Interval": i64::MAX, "Timeout": i64::MAX});
    w.sim
        .register_job(job("slow", "slow", &[ON], Some(forever)));
    w.place("slow", "g", &[("http", 20_005)]);
    wait_server(&w, "default_slow", Instant::now()).await;
    let managed = std::fs::read_to_string(&w.haproxy.driver_config().managed_config)
        .expect("the managed file");
    assert!(managed.contains("inter 2147483647ms"), "{managed}");
    assert!(!managed.contains("4294967295"), "{managed}");
    let (ok, out) = w.haproxy.check_config();
    assert!(ok, "haproxy -c refused the managed file:\n{out}\n{managed}");
    w.stop_daemon().await;
}

/// Raises this process's soft limit of open files to `want` (at most the
/// hard limit): the test's own 2,000 client sockets need it.
fn raise_fd_limit(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Descriptors this process holds.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}
