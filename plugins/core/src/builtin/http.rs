//! The built-in `http` mapping: pass exactly what Nomad's own HTTP checker passes.
//!
//! Nomad (Go's `net/http` client) sends `Method Protocol://addr:port/Path`
//! with the check's headers and its own `User-Agent` unless the job sets
//! one, sends `Host: addr:port` when the job sets no Host (or an empty one),
//! and passes any status below 400. HAProxy gets the same request through
//! `http-check send` and `http-check expect status 200-399`.
//! Deliberate differences (docs/fidelity.md): Go follows 301/302/303
//! redirects (not 307/308: it cannot replay Nomad's request body), HAProxy
//! judges the 3xx itself (setting `redirects`); and the Host header is also
//! sent as SNI. Where HAProxy cannot send what Go sends (a chunked body, a
//! blank in the query string), the plan carries a note naming it.

use super::common::{checked_settings, timed_plan};
use crate::model::{
    BackendCheck, CheckPlan, HttpCheck, HttpExpect, HttpMatch, NomadCheck, PluginInfo,
    ServiceContext, Settings, TlsVerify,
};

/// Settings of this plugin besides `rise`/`fall`.
const KEYS: &[&str] = &[
    "expect-status",
    "http-version",
    "nomad-version",
    "user-agent",
    "redirects",
];

/// The Nomad version named by the default `User-Agent`.
const NOMAD_VERSION: &str = "2.0.0";
/// The Go release Nomad's default `User-Agent` names (Nomad 2.0's).
const GO_VERSION: &str = "go1.26.6";
/// The statuses that pass with `redirects = "pass"`: all below 400.
const PASS_REDIRECTS: &str = "200-399";
/// With `redirects = "fail"`: the redirects Nomad follows (301, 302, 303)
/// fail; 300, 304 and 307/308 (which Nomad never follows) still pass.
const FAIL_REDIRECTS: &str = "200-300,304-399";

/// The plugin's self-description.
pub fn info() -> PluginInfo {
    PluginInfo {
        name: "builtin-http".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        check_types: vec!["http".into()],
    }
}

/// Maps a Nomad `http` check.
///
/// # Errors
/// An unknown setting, an unknown protocol, or a path that is not relative.
pub fn map(
    _service: &ServiceContext,
    check: &NomadCheck,
    settings: &Settings,
) -> Result<CheckPlan, String> {
    let get = checked_settings(settings, KEYS)?;
    let mut plan = timed_plan(check, &get)?;

    let https = match check.protocol.to_ascii_lowercase().as_str() {
        "" | "http" => false,
        "https" => true,
        other => return Err(format!("unsupported protocol '{other}' (http or https)")),
    };
    let version = get.get("http-version").unwrap_or("HTTP/1.1");
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!(
            "setting 'http-version' must be HTTP/1.1 or HTTP/1.0, got '{version}'"
        ));
    }

    // Go's `request.Host` is the first Host value; an empty one means
    // `addr:port`, like no Host at all.
    let host = check
        .header("Host")
        .and_then(|v| v.first())
        .filter(|h| !h.is_empty());
    let mut headers = Vec::new();
    let mut host_sent = false;
    for header in &check.headers {
        for value in &header.values {
            // Go sends one Host line, `request.Host`: the first value
            // (HAProxy also refuses a second `hdr Host`).
            if header.name.eq_ignore_ascii_case("host") {
                if host_sent || host.is_none() {
                    continue;
                }
                host_sent = true;
            }
            headers.push((header.name.clone(), value.clone()));
        }
    }
    if check.header("User-Agent").is_none_or(|v| v.is_empty()) {
        headers.push(("User-Agent".into(), user_agent(&get)?));
    }

    let (uri, uri_notes) = request_uri(&check.path)?;
    plan.notes.extend(uri_notes);
    if !check.body.is_empty() {
        plan.notes.push(
            "HAProxy sends the check's body with Content-Length; Nomad's Go client sends it chunked (docs/fidelity.md)".into(),
        );
    }
    let expect = match (get.get("expect-status"), get.get("redirects")) {
        (Some(status), _) => status,
        (None, None | Some("pass")) => PASS_REDIRECTS,
        (None, Some("fail")) => FAIL_REDIRECTS,
        (None, Some(other)) => {
            return Err(format!(
                "setting 'redirects' must be pass or fail, got '{other}'"
            ));
        }
    };
    plan.backend = BackendCheck::Http(HttpCheck {
        method: method(&check.method),
        uri,
        version: version.into(),
        headers,
        body: check.body.clone(),
        default_host: host.is_none(),
        expect: vec![HttpExpect {
            negate: false,
            matcher: HttpMatch::Status,
            pattern: expect.into(),
        }],
    });

    if https {
        plan.server.ssl = true;
        plan.server.verify = if check.tls_skip_verify {
            TlsVerify::None
        } else {
            TlsVerify::Required
        };
        // Go sends SNI for the URL's host; with a Host header the job names
        // the virtual host it wants, which is what the server's cert carries.
        plan.server.sni = host.map(|h| strip_port(h).to_string());
    }
    Ok(plan)
}

/// The `User-Agent` Nomad's checker sends when the job sets none:
/// `Nomad/<version> (+https://www.nomadproject.io/; <go version>)`, or the
/// `user-agent` setting as a whole.
fn user_agent(get: &super::common::Options<'_>) -> Result<String, String> {
    if let Some(agent) = get.get("user-agent") {
        return Ok(agent.to_string());
    }
    let version = get.get("nomad-version").unwrap_or(NOMAD_VERSION);
    if version.is_empty()
        || version.len() > 64
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b))
    {
        return Err(format!(
            "setting 'nomad-version' must be a version like 2.0.0, got '{version}'"
        ));
    }
    Ok(format!(
        "Nomad/{version} (+https://www.nomadproject.io/; {GO_VERSION})"
    ))
}

/// The request method: Nomad's default is GET; otherwise Go sends the
/// method exactly as the job writes it (Nomad's validation ignores case,
/// the request does not: `post` is sent as `post`).
fn method(raw: &str) -> String {
    if raw.is_empty() {
        "GET".into()
    } else {
        raw.to_string()
    }
}

/// The request URI Go would send for `Path` resolved as a reference against
/// `proto://addr:port` (`url.ResolveReference`, then `EscapedPath`).
///
/// A relative path gains a leading `/`; dot segments are removed; the query
/// string is kept as written; a fragment is never sent. The path is sent as
/// written when every byte may appear in an escaped path (Go's
/// `validEncoded`), else it is unescaped and escaped again (`shouldEscape`).
///
/// Go sends the query string raw, whatever it holds. HAProxy carries any
/// printable byte but a blank, a quote or a backslash: those are
/// percent-escaped, and a note says so.
fn request_uri(path: &str) -> Result<(String, Vec<String>), String> {
    if path.contains("://") || path.starts_with("//") {
        return Err(format!("check path '{path}' must be relative"));
    }
    let path = path.split('#').next().unwrap_or_default();
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let escaped = if path.bytes().all(valid_encoded) {
        path.to_string()
    } else {
        escape_path(
            &unescape(path)
                .ok_or_else(|| format!("check path '{path}' has an invalid percent escape"))?,
        )
    };
    let mut uri = remove_dot_segments(&escaped);
    let mut notes = Vec::new();
    if let Some(query) = query {
        uri.push('?');
        let mut escaped = false;
        for byte in query.bytes() {
            match byte {
                b' ' | b'"' | b'\'' | b'\\' | b';' | b'#' => {
                    escaped = true;
                    uri.push_str(&format!("%{byte:02X}"));
                }
                _ if byte.is_ascii_graphic() => uri.push(byte as char),
                _ => {
                    escaped = true;
                    uri.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        if escaped {
            notes.push(format!(
                "the query string is sent as {:?}: Nomad's Go client sends it raw, HAProxy cannot carry a blank, quote, backslash, ';', '#' or non-ASCII byte there (docs/fidelity.md)",
                uri.split_once('?').map_or("", |(_, q)| q)
            ));
        }
    }
    Ok((uri, notes))
}

/// Go's `validEncoded` for a path: bytes that may stay as written.
fn valid_encoded(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@[]%/".contains(&byte)
}

/// Go's `unescape` of a path: `None` on a bad `%` escape.
fn unescape(path: &str) -> Option<Vec<u8>> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Go's `escape(s, encodePath)`.
fn escape_path(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    for &byte in raw {
        if byte.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// RFC 3986 §5.2.4 as Go's `resolvePath` does it, always from `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// `example.com:8443` → `example.com`; IPv6 literals keep their brackets off.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_gains_a_slash_and_keeps_its_query() {
        assert_eq!(request_uri("health?full=1").unwrap().0, "/health?full=1");
        assert_eq!(request_uri("/v1/ok?x=a&y=b").unwrap().0, "/v1/ok?x=a&y=b");
    }

    #[test]
    fn path_is_escaped_like_go_and_fragment_dropped() {
        assert_eq!(request_uri("/a b'c#frag").unwrap().0, "/a%20b%27c");
        assert_eq!(request_uri("").unwrap().0, "/");
        // Valid as written: sent as written, like Go's EscapedPath.
        assert_eq!(request_uri("/it's/[x]").unwrap().0, "/it's/[x]");
        assert_eq!(request_uri("/a%20b").unwrap().0, "/a%20b");
        assert!(request_uri("/a b%zz").is_err());
    }

    #[test]
    fn dot_segments_are_resolved_like_go() {
        assert_eq!(request_uri("/status/../health").unwrap().0, "/health");
        assert_eq!(request_uri("/a/./b/..").unwrap().0, "/a/");
        assert_eq!(request_uri("../../x?y=../z").unwrap().0, "/x?y=../z");
        assert_eq!(request_uri("/v1/ok?x=a&y=b").unwrap().0, "/v1/ok?x=a&y=b");
    }

    #[test]
    fn the_method_is_sent_as_written() {
        assert_eq!(method(""), "GET");
        assert_eq!(method("post"), "post");
        assert_eq!(method("HEAD"), "HEAD");
    }

    #[test]
    fn absolute_urls_are_refused() {
        assert!(request_uri("http://evil/x").is_err());
        assert!(request_uri("//evil/x").is_err());
    }

    #[test]
    fn only_the_first_host_value_is_sent_like_go() {
        let check = NomadCheck {
            check_type: "http".into(),
            interval_ms: 1_000,
            timeout_ms: 1_000,
            headers: vec![
                crate::model::Header {
                    name: "Host".into(),
                    values: vec!["a.test".into(), "b.test".into()],
                },
                crate::model::Header {
                    name: "X-A".into(),
                    values: vec!["1".into(), "2".into()],
                },
            ],
            ..NomadCheck::default()
        };
        let plan = map(&ServiceContext::default(), &check, &Settings::default()).unwrap();
        let BackendCheck::Http(http) = plan.backend else {
            panic!("an http check")
        };
        let pairs = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            http.headers,
            [
                pairs("Host", "a.test"),
                pairs("X-A", "1"),
                pairs("X-A", "2"),
                pairs(
                    "User-Agent",
                    "Nomad/2.0.0 (+https://www.nomadproject.io/; go1.26.6)"
                ),
            ]
        );
    }

    fn http_of(check: &NomadCheck, settings: &[(&str, &str)]) -> Result<HttpCheck, String> {
        let settings: Settings = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let plan = map(&ServiceContext::default(), check, &settings)?;
        match plan.backend {
            BackendCheck::Http(http) => Ok(http),
            _ => Err("not an http check".into()),
        }
    }

    fn with_header(name: &str, values: &[&str]) -> NomadCheck {
        NomadCheck {
            check_type: "http".into(),
            interval_ms: 1_000,
            timeout_ms: 1_000,
            headers: vec![crate::model::Header {
                name: name.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            ..NomadCheck::default()
        }
    }

    #[test]
    fn an_empty_host_means_address_and_port_like_go() {
        let http = http_of(&with_header("Host", &["", "b.test"]), &[]).unwrap();
        assert!(http.default_host);
        assert!(!http.headers.iter().any(|(n, _)| n == "Host"));
    }

    #[test]
    fn the_job_user_agent_wins_and_the_version_is_a_setting() {
        let own = http_of(&with_header("user-agent", &["probe/1"]), &[]).unwrap();
        let agents: Vec<&str> = own
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(agents, ["probe/1"]);
        let set = http_of(&with_header("X-A", &["1"]), &[("nomad-version", "1.9.7")]).unwrap();
        assert!(set.headers.contains(&(
            "User-Agent".into(),
            "Nomad/1.9.7 (+https://www.nomadproject.io/; go1.26.6)".into()
        )));
        let whole = http_of(&with_header("X-A", &["1"]), &[("user-agent", "probe/2")]).unwrap();
        assert!(
            whole
                .headers
                .contains(&("User-Agent".into(), "probe/2".into()))
        );
        assert!(http_of(&with_header("X-A", &["1"]), &[("nomad-version", "1 0")]).is_err());
    }

    #[test]
    fn redirects_pass_or_fail_as_the_site_chooses() {
        let check = with_header("X-A", &["1"]);
        let status = |settings: &[(&str, &str)]| {
            http_of(&check, settings).map(|h| h.expect[0].pattern.clone())
        };
        assert_eq!(status(&[]).unwrap(), "200-399");
        assert_eq!(status(&[("redirects", "fail")]).unwrap(), "200-300,304-399");
        assert_eq!(
            status(&[("redirects", "fail"), ("expect-status", "200")]).unwrap(),
            "200"
        );
        assert!(status(&[("redirects", "follow")]).is_err());
    }

    #[test]
    fn what_haproxy_cannot_send_like_go_is_noted() {
        let (uri, notes) = request_uri("/h?q=a b&x=<1>|").unwrap();
        assert_eq!(uri, "/h?q=a%20b&x=<1>|");
        assert!(notes[0].contains("sends it raw"), "{notes:?}");
        assert!(request_uri("/h?x={1}").unwrap().1.is_empty());
        let mut check = with_header("X-A", &["1"]);
        check.method = "POST".into();
        check.body = "ping".into();
        let plan = map(&ServiceContext::default(), &check, &Settings::default()).unwrap();
        assert!(plan.notes.iter().any(|n| n.contains("chunked")));
    }

    #[test]
    fn sni_drops_the_port() {
        assert_eq!(strip_port("example.com:8443"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }
}
