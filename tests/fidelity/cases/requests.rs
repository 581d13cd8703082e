//! Cases on what the request carries: Host and other headers, methods,
//! paths and query strings, and TLS.

use super::Common;
use crate::fidelity::backends::Backends;
use crate::fidelity::case::{Case, SNI, get, host, http_with};
use hnc_tests::behaviour::{Route, Site};
use hnc_tests::nomad_checker::Verdict;
use serde_json::json;

/// The Host header (right, wrong, default, odd forms) and a token header.
pub(super) async fn headers(b: &mut Backends) -> Vec<Case> {
    const VHOST: &str = "serves only Host api.example.test (404 otherwise)";
    const TOKEN: &str = "serves only requests with X-Health-Token: s3cret (401 otherwise)";
    let route = || Route::new("/health", 200);
    let vhost = b
        .http(Site::with(vec![route().host("api.example.test")]))
        .await;
    let token = Site::with(vec![route().header("X-Health-Token", "s3cret")]);
    let token = b.http(token).await;
    let own = |port: u16| Site::with(vec![route().host(&format!("127.0.0.1:{port}"))]);
    let with_port = Site::with(vec![route().host("api.example.test:8080")]);
    let two_hosts = json!({"Header": {"Host": ["api.example.test", "www.example.test"]}});
    vec![
        Case::new(
            "host-header-right",
            http_with("/health", host("api.example.test")),
            VHOST,
            vhost,
        ),
        Case::new(
            "host-header-wrong",
            http_with("/health", host("www.example.test")),
            VHOST,
            vhost,
        ),
        Case::new("host-default-vs-vhost", get(), VHOST, vhost),
        Case::new(
            "host-default-is-addr-port",
            get(),
            "serves only Host 127.0.0.1:<its port>",
            b.http_self(own).await,
        ),
        Case::new(
            "host-header-with-port",
            http_with("/health", host("api.example.test:8080")),
            "serves only Host api.example.test:8080",
            b.http(with_port).await,
        ),
        Case::new(
            "host-header-lowercase-name",
            http_with("/health", json!({"Header": {"host": ["api.example.test"]}})),
            VHOST,
            vhost,
        ),
        Case::new(
            "host-header-two-values",
            http_with("/health", two_hosts),
            "serves only Host api.example.test; 400 to a request with two Host lines",
            vhost,
        ),
        Case::new(
            "header-token-right",
            http_with("/health", json!({"Header": {"X-Health-Token": ["s3cret"]}})),
            TOKEN,
            token,
        ),
        Case::new("header-token-missing", get(), TOKEN, token),
    ]
}

/// HEAD and POST, and paths with and without a query string or leading `/`.
pub(super) async fn methods_and_paths(b: &mut Backends, c: &Common) -> Vec<Case> {
    const QUERY: &str = "serves /health?ready=1 only (400 otherwise)";
    let only = |m: &[&str]| Site::with(vec![Route::new("/health", 200).methods(m)]);
    let method = |m: &str| http_with("/health", json!({ "Method": m }));
    let post_only = b.http(only(&["POST"])).await;
    let query = Site::with(vec![Route::new("/health", 200).query("ready=1")]);
    let query = b.http(query).await;
    vec![
        Case::new(
            "method-head-served",
            method("HEAD"),
            "serves only HEAD (405 otherwise)",
            b.http(only(&["HEAD"])).await,
        ),
        Case::new(
            "method-post-served",
            method("POST"),
            "serves only POST (405 otherwise)",
            post_only,
        ),
        Case::new(
            "method-get-on-post-only",
            get(),
            "serves only POST (405 otherwise)",
            post_only,
        ),
        Case::new(
            "method-post-on-get-only",
            method("POST"),
            "serves only GET (405 otherwise)",
            b.http(only(&["GET"])).await,
        ),
        Case::new("method-head-500", method("HEAD"), "answers 500", c.broken),
        Case::new(
            "query-right",
            http_with("/health?ready=1", json!({})),
            QUERY,
            query,
        ),
        Case::new("query-missing", get(), QUERY, query),
        Case::new(
            "query-wrong",
            http_with("/health?ready=0", json!({})),
            QUERY,
            query,
        ),
        Case::new(
            "path-without-slash",
            http_with("health", json!({})),
            "answers 200 on /health",
            c.ok,
        ),
        Case::new(
            "method-lowercase-on-post-only",
            method("post"),
            "serves only POST (405 otherwise)",
            post_only,
        ),
        Case::new(
            "path-dot-segments",
            http_with("/status/../health", json!({})),
            "answers 200 on /health",
            c.ok,
        ),
    ]
}

/// https with and without `tls_skip_verify`, protocol mismatches, and SNI.
pub(super) async fn tls(b: &mut Backends, c: &Common) -> Vec<Case> {
    let skip = || json!({"Protocol": "https", "TLSSkipVerify": true});
    let skip_host = || {
        json!({"Protocol": "https", "TLSSkipVerify": true,
            "Header": {"Host": ["api.example.test"]}})
    };
    let ok = b.https(Site::status("/health", 200), None).await;
    let vhost = Site::with(vec![Route::new("/health", 200).host("api.example.test")]);
    vec![
        Case::new(
            "https-skip-verify-200",
            http_with("/health", skip()),
            "https, self-signed, answers 200",
            ok,
        ),
        Case::new(
            "https-skip-verify-503",
            http_with("/health", skip()),
            "https, self-signed, answers 503",
            b.https(Site::status("/health", 503), None).await,
        ),
        Case::new(
            "https-verify-self-signed",
            http_with("/health", json!({"Protocol": "https"})),
            "https, self-signed, answers 200",
            ok,
        ),
        Case::new(
            "http-to-https-backend",
            get(),
            "https, self-signed, answers 200",
            ok,
        ),
        Case::new(
            "https-to-http-backend",
            http_with("/health", skip()),
            "clear-text http, answers 200",
            c.ok,
        ),
        Case::new(
            "https-host-header",
            http_with("/health", skip_host()),
            "https, serves only Host api.example.test",
            b.https(vhost, None).await,
        ),
        Case::new(
            "https-host-strict-sni",
            http_with("/health", skip_host()),
            "https, refuses a handshake without SNI api.example.test",
            b.https(Site::status("/health", 200), Some("api.example.test"))
                .await,
        )
        .deliberate(Verdict::Pass, &SNI),
    ]
}
