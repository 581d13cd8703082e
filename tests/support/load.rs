//! HTTP requests through HAProxy's frontend, one by one or as a bounded load loop.
//!
//! Each request opens a new connection (the harshest case for a reload)
//! and names its backend in the `x-backend` header that the harness's
//! frontend routes on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Sends `GET /` for `backend` to the frontend on `port`; returns the status
/// line's code, or a description of what went wrong.
pub async fn get(port: u16, backend: &str) -> Result<u16, String> {
    let request = format!(
        "GET / HTTP/1.1\r\nhost: test\r\nx-backend: {backend}\r\nconnection: close\r\n\r\n"
    );
    exchange(("127.0.0.1", port), &request)
        .await
        .map(|(code, _)| code)
}

/// One HTTP/1.1 exchange on a new connection (the request says `connection:
/// close`): the status code and the body, within 10 s.
pub async fn exchange(
    addr: impl tokio::net::ToSocketAddrs,
    request: &str,
) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| {
                format!(
                    "no status line in {:?}",
                    text.chars().take(80).collect::<String>()
                )
            })?;
        Ok((code, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Requests sent concurrently until stopped (or `max` per worker).
pub struct LoadLoop {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<BTreeMap<String, u64>>>,
}

impl LoadLoop {
    /// Starts `concurrency` workers, each sending up to `max` requests in a row.
    pub fn start(port: u16, backend: &str, concurrency: usize, max: u64) -> LoadLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..concurrency)
            .map(|_| {
                let stop = stop.clone();
                let backend = backend.to_string();
                tokio::spawn(async move {
                    let mut outcomes = BTreeMap::new();
                    for _ in 0..max {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let key = match get(port, &backend).await {
                            Ok(code) => code.to_string(),
                            Err(e) => e,
                        };
                        *outcomes.entry(key).or_insert(0) += 1;
                    }
                    outcomes
                })
            })
            .collect();
        LoadLoop { stop, workers }
    }

    /// Stops the workers; returns how many requests ended how (`"200"`,
    /// `"503"`, or an error text).
    pub async fn stop(self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = BTreeMap::new();
        for worker in self.workers {
            if let Ok(outcomes) = worker.await {
                for (key, n) in outcomes {
                    *total.entry(key).or_insert(0) += n;
                }
            }
        }
        total
    }
}

/// One request of a [`SampledLoad`]: when it ran, where to, and how it ended.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the connection was opened.
    pub started: std::time::Instant,
    /// When the answer (or the error) came.
    pub ended: std::time::Instant,
    /// The backend named in `x-backend`.
    pub backend: String,
    /// The status code, or what went wrong.
    pub outcome: Result<u16, String>,
}

impl Sample {
    /// Whether the request got a 200.
    pub fn ok(&self) -> bool {
        self.outcome == Ok(200)
    }

    /// Whether the request was in flight at some time in `[from, to]`.
    pub fn overlaps(&self, from: std::time::Instant, to: std::time::Instant) -> bool {
        self.started <= to && self.ended >= from
    }
}

/// A steady load through the frontend that keeps every request with its
/// timing, so a test can tell the errors HAProxy itself causes (while it is
/// killed, say) from those it must not see.
pub struct SampledLoad {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Vec<Sample>>>,
}

impl SampledLoad {
    /// Starts `concurrency` workers; each sends requests one after another,
    /// cycling through `backends`, with `pause` between two requests (a pause
    /// keeps a 2-core machine free for HAProxy and the connector).
    pub fn start(port: u16, backends: &[&str], concurrency: usize, pause: Duration) -> SampledLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let backends: Vec<String> = backends.iter().map(|b| b.to_string()).collect();
        let workers = (0..concurrency)
            .map(|n| {
                let stop = stop.clone();
                let backends = backends.clone();
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    let mut next = n;
                    while !stop.load(Ordering::SeqCst) {
                        let backend = &backends[next % backends.len()];
                        next += 1;
                        let started = std::time::Instant::now();
                        let outcome = get(port, backend).await;
                        samples.push(Sample {
                            started,
                            ended: std::time::Instant::now(),
                            backend: backend.clone(),
                            outcome,
                        });
                        tokio::time::sleep(pause).await;
                    }
                    samples
                })
            })
            .collect();
        SampledLoad { stop, workers }
    }

    /// Stops the workers; returns every request, in no particular order.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for worker in self.workers {
            if let Ok(samples) = worker.await {
                all.extend(samples);
            }
        }
        all
    }
}

/// `GET path` on a plain HTTP listener (the connector's admin listener);
/// returns the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String), String> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    exchange(addr, &request).await
}
