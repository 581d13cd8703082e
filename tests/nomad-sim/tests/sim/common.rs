//! Test helpers: a raw HTTP/1.1 stream reader (to see the wire as it is), a
//! reqwest wrapper, and job fixtures.

use std::net::SocketAddr;
use std::time::Duration;

use nomad_sim::{PlaceAlloc, Sim, SimConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Generous upper bound for anything that should happen "now".
pub const SOON: Duration = Duration::from_secs(5);

thread_local! {
    // libtest runs each test on its own thread (and runtime): one client per test,
    // since building a reqwest client costs ~30 ms in debug builds.
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

/// This test's HTTP client.
pub fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

/// A config with a short heartbeat.
pub fn cfg() -> SimConfig {
    SimConfig {
        heartbeat: Duration::from_millis(200),
        ..SimConfig::default()
    }
}

/// Starts a sim with `cfg()`.
pub async fn start() -> Sim {
    Sim::start(cfg()).await.expect("sim starts")
}

/// A job with a group service (interpolated name, tags, canary tags), a task
/// service, and a Consul service that must not register.
pub fn web_job(id: &str) -> Value {
    json!({
        "ID": id,
        "Name": id,
        "Type": "service",
        "Meta": {"env": "prod"},
        "TaskGroups": [{
            "Name": "web",
            "Count": 2,
            "Meta": {"tier": "front"},
            "Update": {"Canary": 1, "MaxParallel": 1},
            "Networks": [{"DynamicPorts": [
                {"Label": "http", "Value": 0, "To": 8080},
                {"Label": "admin", "Value": 0, "To": 0}
            ]}],
            "Services": [{
                "Name": "${NOMAD_JOB_NAME}-web",
                "PortLabel": "http",
                "Provider": "nomad",
                "Tags": ["v1", "${NOMAD_META_tier}"],
                "CanaryTags": ["canary"]
            }],
            "Tasks": [{
                "Name": "server",
                "Driver": "docker",
                "Services": [
                    {"Name": "admin", "PortLabel": "admin", "Provider": "nomad"},
                    {"Name": "consul-only", "PortLabel": "http"}
                ]
            }]
        }]
    })
}

/// A one-service job in `ns` whose service is `name` on port label `http`.
pub fn simple_job(ns: &str, id: &str, name: &str) -> Value {
    json!({
        "ID": id,
        "Namespace": ns,
        "TaskGroups": [{
            "Name": "g",
            "Services": [{"Name": name, "PortLabel": "http", "Provider": "nomad", "Tags": ["t"]}],
            "Tasks": [{"Name": "t"}]
        }]
    })
}

/// Places group `g` of a `simple_job` on 127.0.0.1:`port`.
pub fn place_simple(sim: &Sim, ns: &str, id: &str, port: u16) -> String {
    sim.place_alloc(PlaceAlloc {
        namespace: ns.into(),
        ..PlaceAlloc::new(id, "g").port("http", port)
    })
}

/// GET with optional headers; returns status, headers and body text.
pub async fn get(
    sim: &Sim,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client().get(format!("{}{path}", sim.url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.expect("body"))
}

/// GET and parse JSON (asserting 200).
pub async fn get_json(sim: &Sim, path: &str) -> (u64, Value) {
    let (status, headers, body) = get(sim, path, &[]).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    (
        index_of(&headers),
        serde_json::from_str(&body).expect("json"),
    )
}

/// `X-Nomad-Index` (0 if absent).
pub fn index_of(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("x-nomad-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A raw HTTP/1.1 response read off the socket, decoding chunks itself.
pub struct RawStream {
    sock: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    chunked: bool,
    /// Body bytes still expected when the response has a `Content-Length`.
    remaining: Option<usize>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// A terminal chunk was seen.
    pub ended: bool,
    /// The server closed the connection.
    pub eof: bool,
    /// EOF arrived inside a chunk.
    pub truncated: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl RawStream {
    /// Sends `GET target` and reads the response head.
    pub async fn open(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> RawStream {
        Self::open_method(addr, "GET", target, headers).await
    }

    /// Sends a request with any method and reads the response head.
    pub async fn open_method(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> RawStream {
        let mut sock = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).await.expect("write");
        let mut s = RawStream {
            sock,
            raw: Vec::new(),
            body: Vec::new(),
            chunked: false,
            remaining: None,
            status: 0,
            headers: Vec::new(),
            ended: false,
            eof: false,
            truncated: false,
        };
        let deadline = Instant::now() + SOON;
        let head_end = loop {
            if let Some(p) = find(&s.raw, b"\r\n\r\n") {
                break p;
            }
            assert!(s.fill(deadline).await, "no response head");
        };
        let head = String::from_utf8_lossy(&s.raw[..head_end]).into_owned();
        s.raw.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        s.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        s.headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s.chunked = s
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        s.remaining = s.header("content-length").and_then(|v| v.parse().ok());
        s.decode();
        s
    }

    /// A response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    async fn fill(&mut self, deadline: Instant) -> bool {
        let mut buf = [0u8; 8192];
        match tokio::time::timeout_at(deadline, self.sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(_) => false,
        }
    }

    fn decode(&mut self) {
        if !self.chunked {
            match self.remaining.as_mut() {
                Some(left) => {
                    let n = (*left).min(self.raw.len());
                    self.body.extend(self.raw.drain(..n));
                    *left -= n;
                    self.ended = *left == 0;
                }
                None => self.body.append(&mut self.raw),
            }
            return;
        }
        while !self.ended {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size_str = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size = usize::from_str_radix(size_str.trim(), 16).expect("chunk size");
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            let data: Vec<u8> = self.raw[line_end + 2..line_end + 2 + size].to_vec();
            assert_eq!(&self.raw[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            self.raw.drain(..line_end + 4 + size);
            self.body.extend_from_slice(&data);
        }
    }

    /// On EOF inside a chunk, expose what arrived of it.
    fn salvage(&mut self) {
        if self.chunked && !self.raw.is_empty() {
            self.truncated = true;
            if let Some(line_end) = find(&self.raw, b"\r\n") {
                let partial = self.raw[line_end + 2..].to_vec();
                self.body.extend_from_slice(&partial);
            }
            self.raw.clear();
        }
    }

    /// The next NDJSON line, or `None` at the end of the body (or after `within`).
    pub async fn line(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.body.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=p).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            if self.ended || self.eof {
                return None;
            }
            if !self.fill(deadline).await {
                if self.eof {
                    self.salvage();
                }
                return None;
            }
            self.decode();
        }
    }

    /// The next frame (heartbeats included), parsed.
    pub async fn frame(&mut self) -> Value {
        let line = self.line(SOON).await.expect("a frame");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad frame {line:?}: {e}"))
    }

    /// The next non-heartbeat frame.
    pub async fn event_frame(&mut self) -> Value {
        loop {
            let f = self.frame().await;
            if f != json!({}) {
                return f;
            }
        }
    }

    /// The next non-heartbeat frame with `Index >= min`: frames below the requested
    /// index must be dropped (Nomad delivers the newest batch even when it is older).
    pub async fn event_frame_from(&mut self, min: u64) -> Value {
        loop {
            let f = self.event_frame().await;
            if f["Index"].as_u64().unwrap_or(0) >= min {
                return f;
            }
        }
    }

    /// The next non-heartbeat frame within `within`, if any.
    pub async fn maybe_event_frame(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.line(left).await?;
            let f: Value = serde_json::from_str(&line).expect("json frame");
            if f != json!({}) {
                return Some(f);
            }
        }
    }

    /// Reads until the body ends or the connection closes; returns the unread body.
    pub async fn rest(&mut self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        while !self.ended && !self.eof {
            if !self.fill(deadline).await {
                break;
            }
            self.decode();
        }
        if self.eof {
            self.salvage();
        }
        std::mem::take(&mut self.body)
    }
}

/// The `Type`s of the events of a frame for `topic`.
pub fn types_of(frame: &Value, topic: &str) -> Vec<String> {
    frame["Events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .filter(|e| e["Topic"] == topic)
                .map(|e| e["Type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
