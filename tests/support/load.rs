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
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request = format!(
            "GET / HTTP/1.1\r\nhost: test\r\nx-backend: {backend}\r\nconnection: close\r\n\r\n"
        );
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
        text.split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| {
                format!(
                    "no status line in {:?}",
                    text.chars().take(80).collect::<String>()
                )
            })
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
