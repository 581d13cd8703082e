//! A service with two checks, as Nomad requires: every one must pass. When
//! its second check (on another port) starts failing, HAProxy takes the
//! server DOWN within interval + timeout; when it passes again, UP.

use hnc_tests::haproxy::{StatRow, wait_until};
use hnc_tests::world::{World, job};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(1);
/// A generous "eventually": a failure, never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

/// An HTTP listener that answers 200, or 503 while `failing` is set.
struct Switch {
    port: u16,
    failing: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Switch {
    async fn start() -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let failing = Arc::new(AtomicBool::new(false));
        let state = failing.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let status = if state.load(Ordering::SeqCst) {
                        503
                    } else {
                        200
                    };
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Switch {
            port,
            failing,
            task,
        }
    }

    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn server(w: &World) -> Option<StatRow> {
    w.haproxy
        .stat()
        .await
        .into_iter()
        .find(|r| r["pxname"] == "default_two" && r["svname"] != "BACKEND")
}

async fn wait_status(w: &World, status: &str) -> StatRow {
    wait_until(&format!("the server {status}"), WAIT, || async {
        server(w).await.filter(|r| r["status"] == status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_check_service_is_down_when_one_check_fails_and_up_when_both_pass() {
    let (app, admin) = (Switch::start().await, Switch::start().await);
    let mut w = World::start().await;
    let ns = |d: Duration| i64::try_from(d.as_nanos()).expect("fits");
    let mut spec = job("two", "two", &["haproxy.enable=true"], None);
    spec["TaskGroups"][0]["Services"][0]["Checks"] = json!([
        {"Name": "health", "Type": "http", "Path": "/health",
         "Interval": ns(INTERVAL), "Timeout": ns(TIMEOUT)},
        {"Name": "ready", "Type": "http", "Path": "/ready", "PortLabel": "admin",
         "Interval": ns(INTERVAL * 3), "Timeout": ns(TIMEOUT)},
    ]);
    w.sim.register_job(spec);
    w.place("two", "g", &[("http", app.port), ("admin", admin.port)]);
    let mut config = w.config();
    config.haproxy.host_map = Some(w.haproxy.host_map.clone());
    config.haproxy.uri_map = Some(w.haproxy.uri_map.clone());
    w.start_daemon_with(config);
    wait_status(&w, "UP").await;

    admin.fail(true);
    let failed = Instant::now();
    let down = wait_status(&w, "DOWN").await;
    let to_down = failed.elapsed();
    assert!(
        down["check_status"].contains("L7STS"),
        "DOWN on the failing check's status: {down:?}"
    );

    admin.fail(false);
    let healed = Instant::now();
    wait_status(&w, "UP").await;
    let to_up = healed.elapsed();
    w.stop_daemon().await;
    eprintln!(
        "two checks: DOWN {} ms after the second failed, UP {} ms after it passed again (interval {} ms, timeout {} ms)",
        to_down.as_millis(),
        to_up.as_millis(),
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
}
