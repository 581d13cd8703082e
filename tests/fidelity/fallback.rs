//! A job spec Nomad cannot serve for a while: the instance it leaves
//! unknown gets a real TCP check, even in a backend whose other instance has
//! an HTTP check, so no path its job never declared is probed; and it gets
//! its declared check back within `negative_cache_ttl` (+ 1 s) after Nomad
//! answers again, without waiting for the periodic resync.

use hnc_tests::haproxy::{StatRow, wait_until};
use hnc_tests::world::{World, http_check, job};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The TTL under test: short, so the test is too.
const NEGATIVE_TTL: Duration = Duration::from_secs(3);
/// How long the job reads fail after the unknown instance is seen checked.
const FAULT: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(30);

/// An app that serves `/health` (200) and nothing else (404), and records
/// every request line's path it is asked for.
struct App {
    port: u16,
    paths: Arc<Mutex<Vec<(Instant, String)>>>,
    task: JoinHandle<()>,
}

impl App {
    async fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split(' ').nth(1).unwrap_or("").to_string();
                    let status = if path == "/health" { 200 } else { 404 };
                    seen.lock().expect("paths").push((Instant::now(), path));
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        App { port, paths, task }
    }

    fn paths(&self) -> Vec<(Instant, String)> {
        self.paths.lock().expect("paths").clone()
    }

    fn first_health_after(&self, t: Instant) -> Option<Instant> {
        self.paths()
            .into_iter()
            .find(|(at, p)| *at >= t && p == "/health")
            .map(|(at, _)| at)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The rows of the app's backend's servers.
async fn servers(w: &World) -> Vec<StatRow> {
    w.haproxy
        .stat()
        .await
        .into_iter()
        .filter(|r| r["pxname"] == "default_app" && r["svname"] != "BACKEND")
        .collect()
}

async fn wait_for_rows(w: &World, what: &str, ok: impl Fn(&[StatRow]) -> bool) -> Vec<StatRow> {
    wait_until(what, WAIT, || async {
        let rows = servers(w).await;
        ok(&rows).then_some(rows)
    })
    .await
}

fn check_of(row: &StatRow) -> &str {
    row["check_status"].trim_start_matches("* ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_check_is_a_tcp_connect_and_is_read_again_at_the_negative_ttl() {
    let (first, second) = (App::start().await, App::start().await);
    let mut w = World::start().await;
    w.sim.register_job(job(
        "app",
        "app",
        &["haproxy.enable=true"],
        Some(http_check("/health")),
    ));
    w.place("app", "g", &[("http", first.port)]);
    let mut config = w.config();
    config.haproxy.host_map = Some(w.haproxy.host_map.clone());
    config.haproxy.uri_map = Some(w.haproxy.uri_map.clone());
    config.nomad.negative_cache_ttl = NEGATIVE_TTL;
    // No periodic resync within the test: only the retry can bring the
    // declared check back.
    config.daemon.resync_interval_secs = 3600;
    w.start_daemon_with(config);
    wait_for_rows(&w, "the first instance UP on its HTTP check", |rows| {
        rows.len() == 1 && rows[0]["status"] == "UP" && check_of(&rows[0]) == "L7OK"
    })
    .await;

    // A new job version (its spec not cached yet), then Nomad fails every
    // job read; an instance of the new version starts meanwhile.
    w.sim.register_job(job(
        "app",
        "app",
        &["haproxy.enable=true", "release=2"],
        Some(http_check("/health")),
    ));
    w.sim
        .fail_requests("/v1/job/", 500, "No cluster leader", None);
    let fault = Instant::now();
    w.place("app", "g", &[("http", second.port)]);
    let rows = wait_for_rows(&w, "both instances UP on a TCP connect", |rows| {
        rows.len() == 2
            && rows
                .iter()
                .all(|r| r["status"] == "UP" && check_of(r) == "L4OK")
    })
    .await;
    tokio::time::sleep(FAULT).await;
    let cleared = Instant::now();
    w.sim.clear_faults();

    // Nomad answers again: the declared check comes back at the TTL.
    let back = wait_until("the second instance probed on /health", WAIT, || async {
        second.first_health_after(cleared)
    })
    .await;
    wait_for_rows(&w, "both instances UP on their HTTP check", |rows| {
        rows.len() == 2
            && rows
                .iter()
                .all(|r| r["status"] == "UP" && check_of(r) == "L7OK")
    })
    .await;
    w.stop_daemon().await;

    for (name, app) in [("first", &first), ("second", &second)] {
        let asked: Vec<String> = app
            .paths()
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p != "/health")
            .collect();
        assert!(
            asked.is_empty(),
            "the {name} instance was probed on a path no job declared: {asked:?}"
        );
    }
    let took = back - cleared;
    assert!(
        took <= NEGATIVE_TTL + Duration::from_secs(1),
        "the declared check came back {took:?} after Nomad answered again (fault {:?}, rows during it {rows:?}); promised within negative_cache_ttl {NEGATIVE_TTL:?} + 1 s",
        cleared - fault
    );
    eprintln!(
        "fallback: declared check back {} ms after Nomad answered again (negative_cache_ttl {} ms)",
        took.as_millis(),
        NEGATIVE_TTL.as_millis()
    );
}
