//! A real HTTP/1.1 backend (clear or TLS) that answers as a [`Site`] describes.
//!
//! Each connection carries one request and gets one answer with
//! `Connection: close`: the route's delay, then its status (with a reason
//! phrase), its `Location` if any, and a 2-byte body except where HTTP
//! forbids one (1xx, 204, 304; HEAD gets the headers of a GET). What it
//! receives is recorded ([`Seen`]), so a failure can show what HAProxy sent.

use crate::behaviour::{Listener, Request, Site};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// How many requests a backend remembers.
const KEEP: usize = 8;

/// One request a backend received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The `Host` header (several values joined by `, `).
    pub host: Option<String>,
    /// The TLS SNI (https only).
    pub sni: Option<String>,
    /// The status it got.
    pub status: u16,
}

struct Shared {
    site: Mutex<Site>,
    seen: Mutex<Vec<Seen>>,
}

/// A backend serving a [`Site`] on 127.0.0.1; stops when dropped.
pub struct ScriptedBackend {
    /// Its port.
    pub port: u16,
    tls: Option<Option<String>>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ScriptedBackend {
    /// Serves `site` over clear-text HTTP.
    pub async fn http(site: Site) -> ScriptedBackend {
        ScriptedBackend::start(site, None).await
    }

    /// Serves `site` over TLS with a self-signed certificate
    /// ([`crate::tls::self_signed_acceptor`]), refusing handshakes without
    /// `required_sni` when it is set.
    pub async fn https(site: Site, required_sni: Option<&str>) -> ScriptedBackend {
        let sni = required_sni.map(str::to_string);
        ScriptedBackend::start(site, Some(sni)).await
    }

    async fn start(site: Site, tls: Option<Option<String>>) -> ScriptedBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            site: Mutex::new(site),
            seen: Mutex::new(Vec::new()),
        });
        let acceptor = tls
            .as_ref()
            .map(|sni| crate::tls::self_signed_acceptor(sni.as_deref()));
        let state = shared.clone();
        let task = tokio::spawn(accept_loop(listener, acceptor, state));
        ScriptedBackend {
            port,
            tls,
            shared,
            task,
        }
    }

    /// Answers as `site` from now on (e.g. once the ports a redirect names
    /// are known).
    pub fn set_site(&self, site: Site) {
        *self.shared.site.lock().expect("site") = site;
    }

    /// What it is, for the reference checker's [`crate::behaviour::Net`].
    pub fn listener(&self) -> Listener {
        let site = self.shared.site.lock().expect("site").clone();
        match &self.tls {
            None => Listener::Http(site),
            Some(required_sni) => Listener::Https {
                site,
                required_sni: required_sni.clone(),
            },
        }
    }

    /// The last requests received, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("seen").clone()
    }
}

impl Drop for ScriptedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve(stream, None, &shared).await,
                Some(acceptor) => {
                    // A handshake refused (no SNI, not TLS at all) just closes.
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let sni = tls.get_ref().1.server_name().map(str::to_string);
                        serve(tls, sni, &shared).await;
                    }
                }
            }
        });
    }
}

/// Reads one request, answers it, closes.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sni: Option<String>,
    shared: &Shared,
) {
    let mut data = Vec::new();
    let mut buf = [0u8; 2048];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if data.len() > 16 * 1024 {
            return;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let request = Request {
        method: &method,
        target: &target,
        headers: &headers,
    };
    let hosts = request.values("host");
    let host = (!hosts.is_empty()).then(|| hosts.join(", "));
    // Read a body the request announces, so closing never resets the
    // connection under unread data.
    let length: usize = request
        .values("content-length")
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(64 * 1024);
    while data.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }

    let site = shared.site.lock().expect("site").clone();
    let answer = site.answer(&request);
    if let Ok(mut seen) = shared.seen.lock() {
        if seen.len() == KEEP {
            seen.remove(0);
        }
        seen.push(Seen {
            method: method.clone(),
            target: target.clone(),
            host,
            sni,
            status: answer.status,
        });
    }
    tokio::time::sleep(answer.delay).await;
    let status = answer.status;
    let mut response = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(location) = &answer.location {
        response.push_str(&format!("location: {location}\r\n"));
    }
    let bodyless = status < 200 || status == 204 || status == 304;
    if !bodyless {
        response.push_str("content-length: 2\r\n");
    }
    response.push_str("connection: close\r\n\r\n");
    if !bodyless && method != "HEAD" {
        response.push_str("ok");
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
