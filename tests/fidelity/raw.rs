//! A backend that answers with exact bytes: what a [`Site`] cannot say
//! (interim 1xx answers, HTTP/1.0 close-delimited bodies, stalls after the
//! head, malformed or huge answers, resets), or an answer decided from the
//! raw request (its `User-Agent`, its framing, its request target as sent).
//!
//! [`Site`]: hnc_tests::behaviour::Site

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The request as it reached the server.
pub struct Head {
    /// The method.
    pub method: String,
    /// The request target, exactly as sent (between the first blank and the
    /// last one of the request line).
    pub target: String,
    /// Number of blank-separated parts of the request line (3 when valid).
    pub parts: usize,
    /// Header lines (name, value).
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What happens after the answer's bytes are written.
#[derive(Clone, Copy)]
pub enum Then {
    /// Close the connection.
    Close,
    /// Keep it open and say nothing more.
    Stall,
    /// Reset it (RST).
    Reset,
}

/// One answer.
pub struct Reply {
    /// Bytes to write.
    pub bytes: Vec<u8>,
    /// Then.
    pub then: Then,
}

/// How a raw backend answers a request.
pub type Script = Arc<dyn Fn(&Head) -> Reply + Send + Sync>;

/// `status` with an empty body and `Connection: close`.
pub fn plain(status: u16) -> Reply {
    Reply {
        bytes: format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .into_bytes(),
        then: Then::Close,
    }
}

/// Always these bytes, then `then`.
pub fn fixed(bytes: impl Into<Vec<u8>>, then: Then) -> Script {
    let bytes = bytes.into();
    Arc::new(move |_| Reply {
        bytes: bytes.clone(),
        then,
    })
}

/// A raw backend on 127.0.0.1; stops when dropped.
pub struct RawBackend {
    /// Its port.
    pub port: u16,
    task: JoinHandle<()>,
}

impl RawBackend {
    /// Serves `script`; with `reset_at_once` every connection is reset as
    /// soon as it is accepted, before anything is read.
    pub async fn start(script: Script, reset_at_once: bool) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = script.clone();
                tokio::spawn(async move {
                    if reset_at_once {
                        reset(stream);
                        return;
                    }
                    serve(stream, script).await;
                });
            }
        });
        RawBackend { port, task }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve(mut stream: TcpStream, script: Script) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let parts = line.split(' ').count();
    let (method, rest) = line.split_once(' ').unwrap_or((line, ""));
    let target = rest.rsplit_once(' ').map_or(rest, |(t, _)| t);
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let request = Head {
        method: method.to_string(),
        target: target.to_string(),
        parts,
        headers,
    };
    let reply = script(&request);
    let _ = stream.write_all(&reply.bytes).await;
    match reply.then {
        Then::Close => {
            let _ = stream.shutdown().await;
        }
        Then::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Then::Reset => reset(stream),
    }
}
