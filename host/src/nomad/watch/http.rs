//! [`HttpClient`]: the [`Api`] over reqwest, configured like the Nomad CLI
//! (address incl. `unix://`, token, region, TLS files and server name, basic auth).

use super::client::{Api, ChunkStream, Indexed};
use super::wire::{AllocStub, NamespaceServices, Registration};
use crate::nomad::config::{Address, Settings};
use crate::nomad::error::{Error, Result};
use crate::nomad::spec::alloc_checks::{self, CheckResult, MAX_CHECKS_BODY};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A Nomad API client (cheap to clone: clones share one connection pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    region: Option<String>,
    auth: Option<(String, Option<String>)>,
    timeout: Duration,
    /// Requests in flight (lists and reads; not the event stream).
    in_flight: tokio::sync::Semaphore,
}

/// At most this many list and read requests are in flight at once: a cold
/// start over thousands of jobs runs them concurrently, but a Nomad server
/// should not get thousands of connections from one client.
pub const MAX_IN_FLIGHT: usize = 32;

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds a client from resolved settings.
    ///
    /// # Errors
    /// A TLS file cannot be read or parsed, or the TLS server name's
    /// address cannot be resolved.
    pub fn new(settings: &Settings) -> Result<HttpClient> {
        let setup = |message: String| Error::ClientSetup { message };
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        let tls = &settings.tls;
        let mut base = match &settings.address {
            Address::Tcp(url) => url.clone(),
            Address::Unix(path) => {
                builder = builder.unix_socket(path.clone());
                "http://localhost".to_string()
            }
        };
        let mut roots = Vec::new();
        if let Some(file) = &tls.ca_cert {
            roots.extend(read_certs(file)?);
        }
        if let Some(dir) = &tls.ca_path {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| setup(format!("CA path {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    roots.extend(read_certs(&entry.path())?);
                }
            }
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_only(roots);
        }
        if let Some((cert, key)) = &tls.client_cert {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| setup(format!("client certificate {}: {e}", cert.display())))?;
            builder = builder.identity(id);
        }
        if tls.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let (Some(name), Address::Tcp(url)) = (&tls.server_name, &settings.address) {
            // Verify (and send SNI for) `name` while connecting to the address:
            // address the URL to `name` and resolve `name` to the address.
            let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
            let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
            let default_port = if scheme == "https" { 443 } else { 80 };
            let addrs: Vec<_> = with_port(hostport, default_port)
                .to_socket_addrs()
                .map_err(|e| setup(format!("resolving {hostport}: {e}")))?
                .collect();
            let port = addrs
                .first()
                .map_or(default_port, std::net::SocketAddr::port);
            builder = builder.resolve_to_addrs(name, &addrs);
            base = format!("{scheme}://{name}:{port}");
            if !path.is_empty() {
                base = format!("{base}/{path}");
            }
        }
        let http = builder
            .build()
            .map_err(|e| setup(format!("building the HTTP client: {e}")))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                base,
                token: settings.token.clone(),
                region: settings.region.clone(),
                auth: settings.http_auth.clone(),
                timeout: settings.request_timeout,
                in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            }),
        })
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        stream: bool,
    ) -> Result<reqwest::Response> {
        let i = &self.inner;
        let what = format!("GET {path}");
        let mut pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", escape(v)))
            .collect();
        if let Some(region) = &i.region {
            pairs.push(format!("region={}", escape(region)));
        }
        let mut req = i.http.get(format!("{}{path}?{}", i.base, pairs.join("&")));
        if let Some(token) = &i.token {
            req = req.header("X-Nomad-Token", token);
        }
        if let Some((user, pass)) = &i.auth {
            req = req.basic_auth(user, pass.as_ref());
        }
        if !stream {
            req = req.timeout(i.timeout);
        }
        let resp = req.send().await.map_err(|source| Error::RequestFailed {
            what: what.clone(),
            source,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(Error::from_status(what, status.as_u16(), &body))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Indexed<T>> {
        // Never closed, so acquiring only waits.
        let _permit = self.inner.in_flight.acquire().await.ok();
        let resp = self.get(path, query, false).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let index = header("X-Nomad-Index")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let next_token = header("X-Nomad-NextToken").filter(|t| !t.is_empty());
        let what = format!("GET {path}");
        let body = resp.bytes().await.map_err(|source| Error::RequestFailed {
            what: what.clone(),
            source,
        })?;
        let value =
            serde_json::from_slice(&body).map_err(|source| Error::DecodeFailed { what, source })?;
        Ok(Indexed {
            index,
            value,
            next_token,
        })
    }
}

impl HttpClient {
    /// The body of a GET, read up to `max` bytes.
    async fn get_bounded(&self, path: &str, query: &[(&str, &str)], max: usize) -> Result<Vec<u8>> {
        // Never closed, so acquiring only waits.
        let _permit = self.inner.in_flight.acquire().await.ok();
        let mut resp = self.get(path, query, false).await?;
        let what = || format!("GET {path}");
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(Error::BodyTooLarge { what: what(), max });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| Error::RequestFailed {
            what: what(),
            source,
        })? {
            if body.len() + chunk.len() > max {
                return Err(Error::BodyTooLarge { what: what(), max });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The body of one event stream.
#[derive(Debug)]
pub struct HttpStream(reqwest::Response);

impl ChunkStream for HttpStream {
    async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.0.chunk().await.map_err(|source| Error::RequestFailed {
            what: "GET /v1/event/stream (body)".into(),
            source,
        })
    }
}

impl Api for HttpClient {
    type Stream = HttpStream;

    async fn services(&self, namespace: &str) -> Result<Indexed<Vec<NamespaceServices>>> {
        self.get_json("/v1/services", &[("namespace", namespace)])
            .await
    }

    async fn service(
        &self,
        namespace: &str,
        name: &str,
        next_token: Option<&str>,
    ) -> Result<Indexed<Vec<Registration>>> {
        let path = format!("/v1/service/{}", escape(name));
        let mut query = vec![("namespace", namespace)];
        if let Some(t) = next_token {
            query.push(("next_token", t));
        }
        self.get_json(&path, &query).await
    }

    async fn job(&self, namespace: &str, id: &str) -> Result<Value> {
        let path = format!("/v1/job/{}", escape(id));
        Ok(self
            .get_json(&path, &[("namespace", namespace)])
            .await?
            .value)
    }

    async fn job_versions(&self, namespace: &str, id: &str) -> Result<Vec<Value>> {
        #[derive(serde::Deserialize)]
        struct Versions {
            #[serde(rename = "Versions", default, deserialize_with = "super::wire::nd")]
            versions: Vec<Value>,
        }
        let path = format!("/v1/job/{}/versions", escape(id));
        let v: Indexed<Versions> = self.get_json(&path, &[("namespace", namespace)]).await?;
        Ok(v.value.versions)
    }

    async fn job_allocations(&self, namespace: &str, id: &str) -> Result<Vec<AllocStub>> {
        let path = format!("/v1/job/{}/allocations", escape(id));
        Ok(self
            .get_json(&path, &[("namespace", namespace)])
            .await?
            .value)
    }

    async fn allocation(&self, namespace: &str, id: &str) -> Result<AllocStub> {
        let path = format!("/v1/allocation/{}", escape(id));
        Ok(self
            .get_json(&path, &[("namespace", namespace)])
            .await?
            .value)
    }

    async fn alloc_checks(&self, namespace: &str, alloc: &str) -> Result<Vec<CheckResult>> {
        let path = format!("/v1/client/allocation/{}/checks", escape(alloc));
        let body = self
            .get_bounded(&path, &[("namespace", namespace)], MAX_CHECKS_BODY)
            .await?;
        alloc_checks::parse(&body).map_err(|source| Error::DecodeFailed {
            what: format!("GET {path}"),
            source,
        })
    }

    async fn event_stream(
        &self,
        namespace: &str,
        topics: &[&str],
        index: u64,
    ) -> Result<HttpStream> {
        let index = index.to_string();
        let mut query: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", *t)).collect();
        query.push(("index", &index));
        query.push(("namespace", namespace));
        Ok(HttpStream(
            self.get("/v1/event/stream", &query, true).await?,
        ))
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::ClientSetup {
        message: format!("{}: {e}", path.display()),
    })
}

fn read_certs(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    reqwest::Certificate::from_pem_bundle(&read(path)?).map_err(|e| Error::ClientSetup {
        message: format!("CA certificate {}: {e}", path.display()),
    })
}

fn with_port(hostport: &str, default: u16) -> String {
    let has_port = match hostport.rsplit_once(':') {
        Some((host, port)) => !host.ends_with(':') && port.parse::<u16>().is_ok(),
        None => false,
    };
    if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    }
}

/// Percent-encodes one path segment (job IDs and service names are free-form).
fn escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(escape("web-1.a_b"), "web-1.a_b");
        assert_eq!(escape("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn ports_default_by_scheme() {
        assert_eq!(with_port("nomad", 443), "nomad:443");
        assert_eq!(with_port("nomad:4646", 443), "nomad:4646");
        assert_eq!(with_port("[::1]:4646", 443), "[::1]:4646");
    }
}
