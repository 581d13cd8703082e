//! Removals of servers that live traffic still holds: keep-alive clients
//! with pooled connections through HAProxy, and a request in flight when the
//! server is shut. On every version the removal completes in the batch that
//! sends it (`wait … srv-removable` on 3.0 and later, a bounded retry on
//! 2.6), so no change fails and no server stays in maintenance.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 backend that keeps connections open between requests and
/// answers `/slow` after five seconds; counts the connections it accepted.
struct KeepAliveBackend {
    port: u16,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl KeepAliveBackend {
    async fn start() -> KeepAliveBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        KeepAliveBackend {
            port,
            connections,
            task,
        }
    }
}

impl Drop for KeepAliveBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head; `None` at the end of the connection.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn serve(mut stream: TcpStream) {
    while let Some(head) = read_head(&mut stream).await {
        if head.starts_with("GET /slow") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A keep-alive client of the frontend: every request on one connection.
struct Client(TcpStream);

impl Client {
    async fn connect(h: &Haproxy) -> Client {
        Client(
            TcpStream::connect(("127.0.0.1", h.port))
                .await
                .expect("connect to the frontend"),
        )
    }

    /// Sends `GET <path>` to `backend`; returns the status line's code.
    async fn get(&mut self, backend: &str, path: &str) -> Option<u16> {
        let request = format!("GET {path} HTTP/1.1\r\nhost: ka\r\nx-backend: {backend}\r\n\r\n");
        self.0.write_all(request.as_bytes()).await.ok()?;
        let head = read_head(&mut self.0).await?;
        let code = head.split(' ').nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.0.read_exact(&mut body).await.ok()?;
        Some(code)
    }
}

/// Pooled keep-alive connections to `backend` through HAProxy, plus a
/// request in flight that outlives the drain grace.
async fn live_traffic(h: &Haproxy, backend: &str) -> (Vec<Client>, tokio::task::JoinHandle<()>) {
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(h).await;
        for _ in 0..3 {
            assert_eq!(client.get(backend, "/").await, Some(200));
        }
        clients.push(client);
    }
    let mut slow = Client::connect(h).await;
    let backend = backend.to_string();
    let in_flight = tokio::spawn(async move {
        let _ = slow.get(&backend, "/slow").await;
    });
    (clients, in_flight)
}

/// Failed server changes the driver has counted since it started.
pub(super) fn failed(driver: &RuntimeDriver) -> u64 {
    driver.stats().failed.values().sum()
}

#[tokio::test]
async fn deregistered_server_with_idle_and_busy_connections_is_removed_after_its_grace() {
    let app = KeepAliveBackend::start().await;
    let (h, driver) = start("", |c| c.drain_grace_ms = 300).await;
    let plain = RenderedCheck::default();
    let s = server("ka", app.port, &plain);
    let with = desired(&[&dynamic("default_ka", &plain, &[&s])]);
    sync(&driver, &with).await;
    wait_status(&h, "default_ka", &s.name, "no check").await;

    let (mut clients, in_flight) = live_traffic(&h, "default_ka").await;
    wait_until("the slow request to reach the server", WAIT, || async {
        (app.connections.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    let without = desired(&[&dynamic("default_ka", &plain, &[])]);
    sync(&driver, &without).await;
    wait_status(&h, "default_ka", &s.name, "DRAIN").await;
    // Each sync asserts that no change failed.
    wait_until("the server to be deleted after its grace", WAIT, || async {
        sync(&driver, &without).await;
        h.server("default_ka", &s.name)
            .await
            .is_none()
            .then_some(())
    })
    .await;

    assert_eq!(failed(&driver), 0, "{:?}", driver.stats());
    assert_eq!(driver.stats().applied.get("remove"), Some(&1));
    converged(&driver, &without).await;
    // The keep-alive clients are answered, now without a server.
    assert_eq!(clients[0].get("default_ka", "/").await, Some(503));
    drop(clients.drain(..));
    in_flight.await.expect("the slow request ends");
}

#[tokio::test]
async fn replace_in_an_operator_backend_with_live_connections_serves_again_in_one_sync() {
    let app = KeepAliveBackend::start().await;
    let extra = "
backend be_op
    balance roundrobin
";
    let (h, driver) = start(extra, |_| {}).await;
    let plain = RenderedCheck::default();
    let mut s = server("op", app.port, &plain);
    let mut op = BackendSpec::custom("be_op");
    op.insert(s.clone());
    sync(&driver, &desired(&[&op])).await;
    wait_status(&h, "be_op", &s.name, "no check").await;
    let (_clients, in_flight) = live_traffic(&h, "be_op").await;
    wait_until("the slow request to reach the server", WAIT, || async {
        (app.connections.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;

    // New server arguments: an operator's backend takes them by replacing
    // the server (delete, add), which the live connections hold up.
    s.check_args = http_check("/health", 200, None).server;
    let mut changed = BackendSpec::custom("be_op");
    changed.insert(s.clone());
    let want = desired(&[&changed]);
    let report = sync(&driver, &want).await;

    assert_eq!(verbs_of(&report), ["replace"], "{report:?}");
    let row = h
        .server("be_op", &s.name)
        .await
        .expect("the server is back");
    assert!(!row["status"].starts_with("MAINT"), "{row:?}");
    wait_status(&h, "be_op", &s.name, "UP").await;
    assert_eq!(failed(&driver), 0, "{:?}", driver.stats());
    converged(&driver, &want).await;
    in_flight.await.expect("the slow request ends");
}

fn verbs_of(report: &haproxy::ApplyReport) -> Vec<&'static str> {
    report.applied.iter().map(|c| c.action.verb()).collect()
}
