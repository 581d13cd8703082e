//! Tiny real backends on 127.0.0.1: an HTTP server that counts what it gets, a TCP listener.
//!
//! [`HttpBackend`] answers every request with `Connection: close`. Requests
//! to paths starting with `/health` are health checks: they get the
//! settable health status and are counted apart from ordinary requests, so a
//! test can assert that a server received no traffic while being checked.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Counters {
    health_status: AtomicU16,
    status: AtomicU16,
    health_checks: AtomicU64,
    requests: AtomicU64,
    last_check: Mutex<Option<(String, Option<String>)>>,
}

/// An HTTP backend with a settable status that counts the requests it gets.
pub struct HttpBackend {
    /// Its port on 127.0.0.1.
    pub port: u16,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl HttpBackend {
    /// Starts one that passes its health checks and answers 200.
    pub async fn start() -> HttpBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let counters = Arc::new(Counters {
            health_status: AtomicU16::new(200),
            status: AtomicU16::new(200),
            ..Counters::default()
        });
        let shared = counters.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        HttpBackend {
            port,
            counters,
            task,
        }
    }

    /// The status its health checks get from now on.
    pub fn set_health_status(&self, status: u16) {
        self.counters.health_status.store(status, Ordering::SeqCst);
    }

    /// The status ordinary requests get from now on.
    pub fn set_status(&self, status: u16) {
        self.counters.status.store(status, Ordering::SeqCst);
    }

    /// Ordinary (non-health) requests received.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Health-check requests received.
    pub fn health_checks(&self) -> u64 {
        self.counters.health_checks.load(Ordering::SeqCst)
    }

    /// The path and `Host` header of the last health check.
    pub fn last_check(&self) -> Option<(String, Option<String>)> {
        self.counters.last_check.lock().ok()?.clone()
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, counters: Arc<Counters>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    let host = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .map(|h| h.trim().to_string());
    let status = if path.starts_with("/health") {
        counters.health_checks.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut last) = counters.last_check.lock() {
            *last = Some((path, host));
        }
        counters.health_status.load(Ordering::SeqCst)
    } else {
        counters.requests.fetch_add(1, Ordering::SeqCst);
        counters.status.load(Ordering::SeqCst)
    };
    let response =
        format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TCP listener that accepts and holds connections until closed.
pub struct TcpBackend {
    /// Its port on 127.0.0.1.
    pub port: u16,
    accepted: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl TcpBackend {
    /// Starts listening.
    pub async fn start() -> TcpBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        TcpBackend {
            port,
            accepted,
            task: Some(task),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listener and every held connection: new connections are
    /// refused from now on.
    pub fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.close();
    }
}
