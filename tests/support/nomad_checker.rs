//! Nomad's check verdict as a small reference function (nomad-api.md §4),
//! judged on a [`Net`] description rather than on sockets.
//!
//! What it models, and nothing more (Nomad 1.6 – 2.0):
//! - **http**: Nomad's checker (`client/serviceregistration/checks/client.go`)
//!   is Go's `net/http` client (go-cleanhttp). `Protocol://addr:port` plus
//!   `Path` resolved as a URL reference (a leading `/`, no dot segments, the
//!   query kept, no fragment); `Method` as written, GET when empty; the
//!   check's headers, the first `Host` value as the one Host line, else
//!   `addr:port`; `Timeout` is a deadline over the whole exchange. 301/302/303
//!   are followed (POST becomes GET; 10 requests at most; a custom Host
//!   survives only a Location without scheme, Go #22233; credentials are
//!   dropped for good after a hop to another host). 307/308 are never
//!   followed: Nomad sets a request body without `GetBody`, so Go returns
//!   the 307/308 itself. A 3xx without `Location` is the answer. The final
//!   status passes below 400. TLS: a self-signed certificate passes only with
//!   `tls_skip_verify` (honoured since 1.9.x, #24781); the SNI is the URL's
//!   host, none for an IP address (Nomad dials the registration's IP).
//! - **tcp**: a connection that opens passes.
//! - **grpc** (Consul's checker, for `provider = "consul"` services and for
//!   tag-declared gRPC probes): `grpc.health.v1.Health/Check` for
//!   `GRPCService`; only SERVING passes (NOT_SERVING, NOT_FOUND for an
//!   unknown service, UNIMPLEMENTED and transport errors fail).
//!
//! Not modelled: percent-escaping of odd path bytes, Nomad's `User-Agent`,
//! request bodies (no backend here reads them).

use crate::behaviour::{Listener, Net, Request, Site};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Go's default redirect policy stops after this many requests: the 10th
/// redirect answer is refused ("stopped after 10 redirects"), so at most 9
/// redirects are followed.
const MAX_REQUESTS: usize = 10;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// `success` (Nomad) / passing (Consul); HAProxy: UP.
    Pass,
    /// `failure` / critical; HAProxy: DOWN.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        })
    }
}

/// A verdict and why (like Nomad's check output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Pass or fail.
    pub verdict: Verdict,
    /// What decided it, e.g. `302 → 404` or `timeout`.
    pub why: String,
}

/// The check types a verdict is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// `http`.
    Http,
    /// `tcp`.
    Tcp,
    /// `grpc` (Consul's semantics).
    Grpc,
}

/// A check as a job spec declares it: the fields that decide a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    /// `Type`.
    pub kind: CheckKind,
    /// `Path`, as written (may be relative, may hold a query string).
    pub path: String,
    /// `Method`; empty means GET.
    pub method: String,
    /// `Header`, flattened (name, value).
    pub headers: Vec<(String, String)>,
    /// `Protocol`: empty or `http`, or `https`.
    pub protocol: String,
    /// `TLSSkipVerify`.
    pub tls_skip_verify: bool,
    /// `PortLabel`; empty means the service's port.
    pub port_label: String,
    /// `Interval`.
    pub interval: Duration,
    /// `Timeout`.
    pub timeout: Duration,
    /// `GRPCService`.
    pub grpc_service: String,
    /// `GRPCUseTLS`.
    pub grpc_use_tls: bool,
}

impl CheckDef {
    /// Reads a check object of a job's JSON (`structs.ServiceCheck`:
    /// PascalCase, durations in nanoseconds).
    ///
    /// # Panics
    /// An unknown `Type` (the reference covers http, tcp and grpc).
    pub fn from_job(check: &Value) -> CheckDef {
        let s = |k: &str| {
            check
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let ns = |k: &str| Duration::from_nanos(check.get(k).and_then(Value::as_u64).unwrap_or(0));
        let b = |k: &str| check.get(k).and_then(Value::as_bool).unwrap_or(false);
        let kind = match s("Type").as_str() {
            "http" => CheckKind::Http,
            "tcp" => CheckKind::Tcp,
            "grpc" => CheckKind::Grpc,
            other => panic!("the reference checker has no type {other:?}"),
        };
        let mut headers = Vec::new();
        if let Some(map) = check.get("Header").and_then(Value::as_object) {
            for (name, values) in map {
                for v in values.as_array().into_iter().flatten() {
                    headers.push((name.clone(), v.as_str().unwrap_or("").to_string()));
                }
            }
        }
        CheckDef {
            kind,
            path: s("Path"),
            method: s("Method"),
            headers,
            protocol: s("Protocol"),
            tls_skip_verify: b("TLSSkipVerify"),
            port_label: s("PortLabel"),
            interval: ns("Interval"),
            timeout: ns("Timeout"),
            grpc_service: s("GRPCService"),
            grpc_use_tls: b("GRPCUseTLS"),
        }
    }

    /// The configured `Host` header, if any (Go's `Header.Get`: the first).
    pub fn host_header(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a check runs: the registration's address and port, and the
/// allocation's ports by label (which a check `PortLabel` picks from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The registration's IP address.
    pub address: String,
    /// The registration's port.
    pub port: u16,
    /// The allocation's ports: label → host port.
    pub ports: BTreeMap<String, u16>,
}

/// Nomad's verdict on `check` for an instance at `target`, with `net`
/// describing what listens where.
pub fn verdict(check: &CheckDef, target: &Target, net: &Net) -> Outcome {
    // The check's address: the service's port unless the check names
    // another label of the allocation.
    let port = if check.port_label.is_empty() {
        target.port
    } else {
        match target.ports.get(&check.port_label) {
            Some(p) => *p,
            None => return fail(format!("no port labelled {:?}", check.port_label)),
        }
    };
    match check.kind {
        CheckKind::Tcp => match net.at(port) {
            Some(_) => pass("tcp ok"),
            None => fail("connection refused"),
        },
        CheckKind::Http => http(check, &target.address, port, net),
        CheckKind::Grpc => grpc(check, port, net),
    }
}

fn pass(why: impl Into<String>) -> Outcome {
    Outcome {
        verdict: Verdict::Pass,
        why: why.into(),
    }
}

fn fail(why: impl Into<String>) -> Outcome {
    Outcome {
        verdict: Verdict::Fail,
        why: why.into(),
    }
}

/// A URL as Go's client dials it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    https: bool,
    host: String,
    port: u16,
    /// The path, already resolved (empty: Go sends `/`).
    path: String,
    /// The query string without `?`; `Some("")` for a bare `?`.
    query: Option<String>,
}

impl Url {
    /// `host:port`, as Go writes a default Host line.
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The request target Go writes on the request line.
    fn target(&self) -> String {
        let path = match self.path.as_str() {
            "" => "/",
            path => path,
        };
        match &self.query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    /// `url.ResolveReference(reference)`: an absolute URL, a network-path
    /// (`//host/…`), an absolute or relative path, or a bare query. `None`
    /// for what Go cannot dial (another scheme, a bad port).
    fn resolve(&self, reference: &str) -> Option<Url> {
        let reference = reference.split('#').next().unwrap_or("");
        if let Some((scheme, rest)) = scheme_of(reference) {
            let https = match scheme.to_ascii_lowercase().as_str() {
                "http" => false,
                "https" => true,
                _ => return None,
            };
            return Url::network_path(https, rest.strip_prefix("//")?);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Url::network_path(self.https, rest);
        }
        let (path, query) = split_query(reference);
        // Go keeps the base query only for an empty reference.
        let query = match (path.is_empty(), query) {
            (true, None) => self.query.clone(),
            (_, query) => query,
        };
        Some(Url {
            path: resolve_path(&self.path, path),
            query,
            ..self.clone()
        })
    }

    /// `authority[/path][?query]` after `//`.
    fn network_path(https: bool, rest: &str) -> Option<Url> {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, if https { 443 } else { 80 }),
        };
        let (path, query) = split_query(rest);
        Some(Url {
            https,
            host: host.to_ascii_lowercase(),
            port,
            path: resolve_path(path, ""),
            query,
        })
    }
}

/// The scheme of an absolute reference and what follows its `:` (Go's
/// `getScheme`: a letter, then letters, digits, `+`, `-` or `.`).
fn scheme_of(reference: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some((scheme, rest))
}

fn split_query(reference: &str) -> (&str, Option<String>) {
    match reference.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (reference, None),
    }
}

/// Go's `resolvePath`: `reference` against `base`, dot segments removed.
fn resolve_path(base: &str, reference: &str) -> String {
    let full = if reference.is_empty() {
        base.to_string()
    } else if !reference.starts_with('/') {
        let dir = base.rfind('/').map_or(0, |i| i + 1);
        format!("{}{reference}", &base[..dir])
    } else {
        reference.to_string()
    };
    if full.is_empty() {
        return full;
    }
    let mut out = String::from("/");
    let mut first = true;
    let mut last = "";
    for elem in full.split('/') {
        last = elem;
        match elem {
            "." => first = false,
            ".." => {
                let kept = out[1..].to_string();
                out.truncate(1);
                match kept.rfind('/') {
                    Some(i) => out.push_str(&kept[..i]),
                    None => first = true,
                }
            }
            _ => {
                if !first {
                    out.push('/');
                }
                out.push_str(elem);
                first = false;
            }
        }
    }
    if last == "." || last == ".." {
        out.push('/');
    }
    match out.strip_prefix('/') {
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => out,
    }
}

/// Go's `isDomainOrSubdomain`: may credentials follow a redirect to `to`?
fn same_site(to: &str, from: &str) -> bool {
    to == from
        || (!to.contains([':', '%'])
            && to
                .strip_suffix(from)
                .is_some_and(|head| head.ends_with('.')))
}

/// Headers Go drops after a redirect to another host (`makeHeadersCopier`).
fn sensitive(name: &str) -> bool {
    ["authorization", "www-authenticate", "cookie", "cookie2"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

fn http(check: &CheckDef, address: &str, port: u16, net: &Net) -> Outcome {
    let https = match check.protocol.to_ascii_lowercase().as_str() {
        "" | "http" => false,
        "https" => true,
        other => return fail(format!("unsupported protocol scheme {other:?}")),
    };
    let base = Url {
        https,
        host: address.to_string(),
        port,
        path: String::new(),
        query: None,
    };
    let Some(first) = base.resolve(&check.path) else {
        return fail(format!("bad path {:?}", check.path));
    };
    // `request.Host` from the Host header; Go sends `URL.Host` when it is empty.
    let custom_host = check.host_header().map(str::to_string);
    let mut url = first.clone();
    let mut method = if check.method.is_empty() {
        "GET".to_string()
    } else {
        check.method.clone()
    };
    let mut host = custom_host.clone();
    let mut strip_sensitive = false;
    let mut elapsed = Duration::ZERO;
    let mut chain = Vec::new();
    for hop in 1..=MAX_REQUESTS {
        let site = match connect(net, &url, check.tls_skip_verify) {
            Ok(site) => site,
            Err(why) => return fail(trail(&chain, why)),
        };
        // Go writes `request.Host` as the one Host line and never a `Host`
        // entry of the header map; the other headers go on every hop.
        let mut headers = vec![(
            "Host".to_string(),
            host.clone().unwrap_or_else(|| url.authority()),
        )];
        headers.extend(
            check
                .headers
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
                .filter(|(n, _)| !(strip_sensitive && sensitive(n)))
                .cloned(),
        );
        let target = url.target();
        let answer = site.answer(&Request {
            method: &method,
            target: &target,
            headers: &headers,
        });
        elapsed += answer.delay;
        if elapsed >= check.timeout {
            return fail(trail(&chain, "timeout"));
        }
        chain.push(answer.status.to_string());
        let status = answer.status;
        let followed = matches!(status, 301..=303);
        let location = answer.location.filter(|_| followed);
        let Some(location) = location else {
            let mut why = chain.join(" → ");
            if matches!(status, 307 | 308) {
                why.push_str(" (not followed: Go cannot replay Nomad's request body)");
            }
            return if status < 400 { pass(why) } else { fail(why) };
        };
        if hop == MAX_REQUESTS {
            return fail(trail(&chain, "stopped after 10 redirects"));
        }
        let Some(next) = url.resolve(&location) else {
            return fail(trail(&chain, "bad Location"));
        };
        if method != "GET" && method != "HEAD" {
            method = "GET".into();
        }
        // Go keeps a custom Host only when the Location has no scheme (#22233).
        host = match &custom_host {
            Some(h) if scheme_of(&location).is_none() && *h != first.authority() => Some(h.clone()),
            _ => None,
        };
        // Credentials stop at the first hop to another host, for good.
        strip_sensitive |=
            next.authority() != first.authority() && !same_site(&next.host, &first.host);
        url = next;
    }
    unreachable!("the last request returns at the redirect limit")
}

/// The site an HTTP(S) client reaches at `url`, or why it cannot.
fn connect<'n>(net: &'n Net, url: &Url, skip_verify: bool) -> Result<&'n Site, &'static str> {
    match (net.at(url.port), url.https) {
        (None, _) => Err("connection refused"),
        (Some(Listener::Silent), _) => Err("timeout (no answer)"),
        (Some(Listener::Grpc(_)), _) => Err("malformed HTTP response (an h2c server)"),
        (Some(Listener::Http(_)), true) => Err("TLS handshake: not a TLS server"),
        (Some(Listener::Https { .. }), false) => Err("malformed HTTP response (a TLS server)"),
        (Some(Listener::Http(site)), false) => Ok(site),
        (Some(Listener::Https { .. }), true) if !skip_verify => {
            Err("x509: certificate signed by unknown authority")
        }
        (Some(Listener::Https { site, required_sni }), true) => {
            // Go's SNI is the URL's host name, never an IP address.
            let sni = url
                .host
                .parse::<std::net::IpAddr>()
                .is_err()
                .then_some(&url.host);
            match required_sni {
                Some(want) if sni != Some(want) => Err("TLS handshake refused (SNI)"),
                _ => Ok(site),
            }
        }
    }
}

/// The status chain so far, then what ended it.
fn trail(chain: &[String], end: &str) -> String {
    if chain.is_empty() {
        end.to_string()
    } else {
        format!("{} → {end}", chain.join(" → "))
    }
}

fn grpc(check: &CheckDef, port: u16, net: &Net) -> Outcome {
    match net.at(port) {
        None => fail("connection refused"),
        Some(Listener::Grpc(_)) if check.grpc_use_tls => fail("TLS handshake: not a TLS server"),
        Some(Listener::Grpc(None)) => fail("UNIMPLEMENTED (no health service)"),
        Some(Listener::Grpc(Some(statuses))) => match statuses.get(&check.grpc_service) {
            Some(true) => pass("SERVING"),
            Some(false) => fail("NOT_SERVING"),
            None => fail("NOT_FOUND (unknown service)"),
        },
        Some(Listener::Silent) => fail("timeout (no answer)"),
        Some(_) => fail("not a gRPC server"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{Route, Site};
    use serde_json::json;

    const A: u16 = 20_001;
    const B: u16 = 20_002;
    const CLOSED: u16 = 20_009;

    fn http_check(path: &str) -> CheckDef {
        CheckDef::from_job(&json!({"Type": "http", "Path": path,
            "Interval": 1_000_000_000_u64, "Timeout": 1_000_000_000_u64}))
    }

    fn at(port: u16) -> Target {
        Target {
            address: "127.0.0.1".into(),
            port,
            ports: BTreeMap::from([("http".to_string(), port)]),
        }
    }

    fn net(listeners: Vec<(u16, Listener)>) -> Net {
        Net {
            listeners: listeners.into_iter().collect(),
        }
    }

    fn on_a(site: Site) -> Net {
        net(vec![(A, Listener::Http(site))])
    }

    fn judge(check: &CheckDef, net: &Net) -> Verdict {
        verdict(check, &at(A), net).verdict
    }

    fn why(check: &CheckDef, net: &Net) -> String {
        verdict(check, &at(A), net).why
    }

    #[test]
    fn below_400_passes_and_400_up_fails() {
        for (status, want) in [
            (200, Verdict::Pass),
            (204, Verdict::Pass),
            (301, Verdict::Pass), // no Location: the 3xx is the answer
            (302, Verdict::Pass),
            (304, Verdict::Pass),
            (399, Verdict::Pass),
            (400, Verdict::Fail),
            (404, Verdict::Fail),
            (429, Verdict::Fail),
            (500, Verdict::Fail),
            (503, Verdict::Fail),
        ] {
            let n = on_a(Site::status("/health", status));
            assert_eq!(judge(&http_check("/health"), &n), want, "{status}");
        }
    }

    #[test]
    fn job_spec_json_is_read_with_headers_and_nanosecond_durations() {
        let c = CheckDef::from_job(&json!({"Type": "http", "Path": "/x", "Method": "head",
            "Header": {"Host": ["a.test"], "X-A": ["1", "2"]}, "Protocol": "https",
            "TLSSkipVerify": true, "PortLabel": "adm",
            "Interval": 1_500_000_000_u64, "Timeout": 250_000_000_u64}));
        assert_eq!(c.kind, CheckKind::Http);
        assert_eq!(c.host_header(), Some("a.test"));
        assert_eq!(c.headers.len(), 3);
        assert_eq!(
            (c.interval, c.timeout),
            (Duration::from_millis(1500), Duration::from_millis(250))
        );
        assert!(c.tls_skip_verify && c.port_label == "adm" && c.protocol == "https");
    }

    #[test]
    fn redirects_301_302_303_are_followed_and_the_final_status_decides() {
        let site = Site::with(vec![
            Route::new("/health", 302).location("/ok"),
            Route::new("/ok", 200),
            Route::new("/gone", 301).location("gone2"),
            Route::new("/other", 303).location("/missing"),
        ]);
        assert_eq!(
            judge(&http_check("/health"), &on_a(site.clone())),
            Verdict::Pass
        );
        // A relative reference resolves against the current path ("/gone2": 404).
        assert_eq!(why(&http_check("/gone"), &on_a(site.clone())), "301 → 404");
        assert_eq!(why(&http_check("/other"), &on_a(site)), "303 → 404");
        // An absolute redirect to another server, then to a closed port.
        let n = net(vec![
            (
                A,
                Listener::Http(Site::with(vec![
                    Route::new("/health", 302).location(&format!("http://127.0.0.1:{B}/health")),
                    Route::new("/away", 302).location(&format!("http://127.0.0.1:{CLOSED}/")),
                ])),
            ),
            (B, Listener::Http(Site::status("/health", 503))),
        ]);
        assert_eq!(why(&http_check("/health"), &n), "302 → 503");
        assert_eq!(why(&http_check("/away"), &n), "302 → connection refused");
    }

    #[test]
    fn redirects_307_and_308_are_the_answer_not_followed() {
        // Nomad sets a request body without GetBody, so Go returns the 307/308.
        for status in [307, 308] {
            let site = Site::with(vec![Route::new("/health", status).location("/missing")]);
            let out = verdict(&http_check("/health"), &at(A), &on_a(site));
            assert_eq!(out.verdict, Verdict::Pass, "{status}");
            assert!(out.why.contains("not followed"), "{}", out.why);
        }
    }

    #[test]
    fn nine_redirects_are_followed_and_the_tenth_is_refused() {
        let chain = |hops: usize| {
            let mut routes: Vec<Route> = (0..hops)
                .map(|i| Route::new(&format!("/r{i}"), 302).location(&format!("/r{}", i + 1)))
                .collect();
            routes.push(Route::new(&format!("/r{hops}"), 200));
            on_a(Site::with(routes))
        };
        assert_eq!(judge(&http_check("/r0"), &chain(9)), Verdict::Pass);
        let out = verdict(&http_check("/r0"), &at(A), &chain(10));
        assert_eq!(out.verdict, Verdict::Fail);
        assert!(
            out.why.ends_with("stopped after 10 redirects"),
            "{}",
            out.why
        );
        let looped = on_a(Site::with(vec![
            Route::new("/health", 302).location("/health"),
        ]));
        assert_eq!(judge(&http_check("/health"), &looped), Verdict::Fail);
    }

    #[test]
    fn the_timeout_is_a_deadline_over_the_whole_request() {
        let ms = Duration::from_millis;
        let slow = on_a(Site::with(vec![Route::new("/health", 200).delay(ms(1500))]));
        assert_eq!(why(&http_check("/health"), &slow), "timeout");
        let quick = on_a(Site::with(vec![Route::new("/health", 200).delay(ms(200))]));
        assert_eq!(judge(&http_check("/health"), &quick), Verdict::Pass);
        // Two hops of 600 ms each: each is within the timeout, the sum is not.
        let hops = on_a(Site::with(vec![
            Route::new("/health", 302).location("/ok").delay(ms(600)),
            Route::new("/ok", 200).delay(ms(600)),
        ]));
        assert_eq!(why(&http_check("/health"), &hops), "302 → timeout");
    }

    #[test]
    fn host_is_addr_port_by_default_and_the_header_otherwise() {
        let vhost = |host: &str| on_a(Site::with(vec![Route::new("/health", 200).host(host)]));
        let mut check = http_check("/health");
        assert_eq!(
            judge(&check, &vhost(&format!("127.0.0.1:{A}"))),
            Verdict::Pass
        );
        assert_eq!(judge(&check, &vhost("api.example.test")), Verdict::Fail);
        check.headers = vec![("host".into(), "api.example.test".into())];
        assert_eq!(judge(&check, &vhost("api.example.test")), Verdict::Pass);
        assert_eq!(judge(&check, &vhost("www.example.test")), Verdict::Fail);
    }

    #[test]
    fn headers_are_sent_and_one_host_line_only() {
        let token = on_a(Site::with(vec![
            Route::new("/health", 200).header("X-Token", "s"),
        ]));
        let mut check = http_check("/health");
        assert_eq!(judge(&check, &token), Verdict::Fail);
        check.headers = vec![("X-Token".into(), "s".into())];
        assert_eq!(judge(&check, &token), Verdict::Pass);
        // Two Host values: Go's `Header.Get` takes the first, and writes one line.
        check.headers = vec![
            ("Host".into(), "a.test".into()),
            ("Host".into(), "b.test".into()),
        ];
        let vhost = on_a(Site::with(vec![Route::new("/health", 200).host("a.test")]));
        assert_eq!(judge(&check, &vhost), Verdict::Pass);
    }

    #[test]
    fn a_custom_host_survives_only_a_location_without_scheme() {
        let mut check = http_check("/health");
        check.headers = vec![("Host".into(), "api.example.test".into())];
        let site = |location: String| {
            on_a(Site::with(vec![
                Route::new("/health", 302).location(&location),
                Route::new("/ok", 200).host("api.example.test"),
            ]))
        };
        assert_eq!(judge(&check, &site("/ok".into())), Verdict::Pass);
        assert_eq!(
            judge(&check, &site(format!("//127.0.0.1:{A}/ok"))),
            Verdict::Pass
        );
        assert_eq!(
            judge(&check, &site(format!("http://127.0.0.1:{A}/ok"))),
            Verdict::Fail
        );
    }

    #[test]
    fn credentials_are_dropped_for_good_after_a_hop_to_another_host() {
        let mut check = http_check("/health");
        check.headers = vec![("Authorization".into(), "Bearer t".into())];
        let guarded = |port: u16, next: &str| {
            Route::new("/health", 302)
                .location(&format!("http://{next}:{port}/ok"))
                .header("Authorization", "Bearer t")
        };
        let ok = Route::new("/ok", 200).header("Authorization", "Bearer t");
        // Same host name, another port: kept.
        let same = on_a(Site::with(vec![guarded(A, "127.0.0.1"), ok.clone()]));
        assert_eq!(judge(&check, &same), Verdict::Pass);
        // Another host: dropped (401).
        let other = on_a(Site::with(vec![guarded(A, "localhost"), ok.clone()]));
        assert_eq!(why(&check, &other), "302 → 401");
        // And not restored on the way back to the first host.
        let back = on_a(Site::with(vec![
            guarded(A, "localhost"),
            Route::new("/ok", 302).location(&format!("http://127.0.0.1:{A}/end")),
            Route::new("/end", 200).header("Authorization", "Bearer t"),
        ]));
        assert_eq!(why(&check, &back), "302 → 302 → 401");
        // Other headers always follow.
        check.headers = vec![("X-Token".into(), "s".into())];
        let token = on_a(Site::with(vec![
            Route::new("/health", 302).location(&format!("http://localhost:{A}/ok")),
            Route::new("/ok", 200).header("X-Token", "s"),
        ]));
        assert_eq!(judge(&check, &token), Verdict::Pass);
        assert!(same_site("api.example.test", "example.test"));
        assert!(!same_site("badexample.test", "example.test"));
    }

    #[test]
    fn the_method_is_sent_as_written_and_301_to_303_turn_post_into_get() {
        let post_only = Site::with(vec![Route::new("/health", 200).methods(&["POST"])]);
        let mut check = http_check("/health");
        assert_eq!(
            judge(&check, &on_a(post_only.clone())),
            Verdict::Fail,
            "GET by default"
        );
        check.method = "POST".into();
        assert_eq!(judge(&check, &on_a(post_only.clone())), Verdict::Pass);
        // Nomad accepts any case (`helper.IsMethodHTTP`) but never upper-cases.
        check.method = "post".into();
        assert_eq!(why(&check, &on_a(post_only)), "405");
        check.method = "POST".into();
        let redirect = |status| {
            on_a(Site::with(vec![
                Route::new("/health", status).location("/p"),
                Route::new("/p", 200).methods(&["POST"]),
            ]))
        };
        for status in [301, 302, 303] {
            assert_eq!(why(&check, &redirect(status)), format!("{status} → 405"));
        }
        check.method = "HEAD".into();
        let head = on_a(Site::with(vec![
            Route::new("/health", 302).location("/h"),
            Route::new("/h", 200).methods(&["HEAD"]),
        ]));
        assert_eq!(judge(&check, &head), Verdict::Pass, "HEAD stays HEAD");
    }

    #[test]
    fn the_path_resolves_like_go_with_its_query_and_without_dot_segments() {
        let site = on_a(Site::with(vec![
            Route::new("/health", 200).query("ready=1"),
        ]));
        assert_eq!(judge(&http_check("health?ready=1"), &site), Verdict::Pass);
        assert_eq!(
            judge(&http_check("/status/../health?ready=1"), &site),
            Verdict::Pass
        );
        assert_eq!(judge(&http_check("/health?ready=0"), &site), Verdict::Fail);
        assert_eq!(judge(&http_check("/health"), &site), Verdict::Fail);
        let root = Url {
            https: false,
            host: "127.0.0.1".into(),
            port: A,
            path: String::new(),
            query: None,
        };
        let url = |path: &str| root.resolve(path).map(|u| u.target());
        assert_eq!(url("/a?b=c#frag").as_deref(), Some("/a?b=c"));
        assert_eq!(url("").as_deref(), Some("/"));
        assert_eq!(url("./a/./b/../c/").as_deref(), Some("/a/c/"));
        assert_eq!(url("/a/..").as_deref(), Some("/"));
        assert_eq!(url("../../x").as_deref(), Some("/x"));
        assert_eq!(url("ftp://x/"), None);
        // Locations: a bare query keeps the path; an empty one keeps the query.
        let here = Url {
            path: "/a/b".into(),
            query: Some("q=1".into()),
            ..root.clone()
        };
        assert_eq!(
            here.resolve("?x=2").map(|u| u.target()).as_deref(),
            Some("/a/b?x=2")
        );
        assert_eq!(
            here.resolve("").map(|u| u.target()).as_deref(),
            Some("/a/b?q=1")
        );
        assert_eq!(
            here.resolve("c").map(|u| u.target()).as_deref(),
            Some("/a/c")
        );
        let away = here.resolve("https://Example.test/z").expect("absolute");
        assert_eq!(
            (away.https, away.authority()),
            (true, "example.test:443".to_string())
        );
    }

    #[test]
    fn tls_needs_skip_verify_for_a_self_signed_cert_and_sends_no_sni_to_an_ip() {
        let https = |sni: Option<&str>| {
            net(vec![(
                A,
                Listener::Https {
                    site: Site::status("/health", 200),
                    required_sni: sni.map(str::to_string),
                },
            )])
        };
        let mut check = http_check("/health");
        assert_eq!(
            judge(&check, &https(None)),
            Verdict::Fail,
            "plain http to TLS"
        );
        check.protocol = "https".into();
        assert_eq!(
            judge(&check, &https(None)),
            Verdict::Fail,
            "unknown authority"
        );
        check.tls_skip_verify = true;
        assert_eq!(judge(&check, &https(None)), Verdict::Pass);
        check.headers = vec![("Host".into(), "api.example.test".into())];
        assert_eq!(
            judge(&check, &https(Some("api.example.test"))),
            Verdict::Fail,
            "the Host header is not the SNI"
        );
        assert_eq!(
            judge(&check, &on_a(Site::status("/health", 200))),
            Verdict::Fail
        );
        // A redirect to a host name sends that name as SNI.
        let n = net(vec![
            (
                A,
                Listener::Https {
                    site: Site::with(vec![
                        Route::new("/health", 302).location(&format!("https://localhost:{B}/")),
                    ]),
                    required_sni: None,
                },
            ),
            (
                B,
                Listener::Https {
                    site: Site::status("/", 200),
                    required_sni: Some("localhost".into()),
                },
            ),
        ]);
        assert_eq!(judge(&check, &n), Verdict::Pass);
        check.protocol = "ftp".into();
        assert_eq!(judge(&check, &https(None)), Verdict::Fail, "unknown scheme");
    }

    #[test]
    fn tcp_passes_on_connect_and_refused_or_silent_servers_fail_http() {
        let tcp = CheckDef {
            kind: CheckKind::Tcp,
            ..http_check("")
        };
        let n = net(vec![(A, Listener::Silent)]);
        assert_eq!(judge(&tcp, &n), Verdict::Pass);
        assert_eq!(judge(&tcp, &on_a(Site::status("/", 500))), Verdict::Pass);
        assert_eq!(judge(&tcp, &Net::default()), Verdict::Fail);
        assert_eq!(judge(&http_check("/health"), &n), Verdict::Fail);
        assert_eq!(
            judge(&http_check("/health"), &Net::default()),
            Verdict::Fail
        );
    }

    #[test]
    fn grpc_passes_only_serving() {
        let grpc = |service: &str| CheckDef {
            kind: CheckKind::Grpc,
            grpc_service: service.into(),
            ..http_check("")
        };
        let statuses = BTreeMap::from([
            (String::new(), true),
            ("up".to_string(), true),
            ("down".to_string(), false),
        ]);
        let n = net(vec![(A, Listener::Grpc(Some(statuses)))]);
        assert_eq!(judge(&grpc(""), &n), Verdict::Pass);
        assert_eq!(judge(&grpc("up"), &n), Verdict::Pass);
        assert_eq!(judge(&grpc("down"), &n), Verdict::Fail);
        assert_eq!(why(&grpc("nope"), &n), "NOT_FOUND (unknown service)");
        let tls = CheckDef {
            grpc_use_tls: true,
            ..grpc("")
        };
        assert_eq!(judge(&tls, &n), Verdict::Fail, "TLS to a plaintext server");
        let bare = net(vec![(A, Listener::Grpc(None))]);
        assert_eq!(why(&grpc(""), &bare), "UNIMPLEMENTED (no health service)");
        assert_eq!(judge(&grpc(""), &Net::default()), Verdict::Fail);
        assert_eq!(
            judge(&grpc(""), &on_a(Site::status("/", 200))),
            Verdict::Fail
        );
    }

    #[test]
    fn a_check_port_label_picks_the_allocation_port() {
        let mut check = http_check("/health");
        check.port_label = "admin".into();
        let n = net(vec![
            (A, Listener::Http(Site::status("/health", 500))),
            (B, Listener::Http(Site::status("/health", 200))),
        ]);
        let mut target = at(A);
        assert_eq!(
            verdict(&check, &target, &n).verdict,
            Verdict::Fail,
            "no such label"
        );
        target.ports.insert("admin".into(), B);
        assert_eq!(verdict(&check, &target, &n).verdict, Verdict::Pass);
        // The default Host is the check's own address:port.
        let vhost = net(vec![(
            B,
            Listener::Http(Site::with(vec![
                Route::new("/health", 200).host(&format!("127.0.0.1:{B}")),
            ])),
        )]);
        assert_eq!(verdict(&check, &target, &vhost).verdict, Verdict::Pass);
    }
}
