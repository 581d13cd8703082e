//! Cases on Nomad's request as Go sends it: the default `User-Agent`, an
//! empty Host value, the query string as written, and request bodies.

use super::Common;
use crate::fidelity::backends::Backends;
use crate::fidelity::case::{CHUNKED, Case, QUERY_BLANK, get, http_with};
use crate::fidelity::raw::{Head, Reply, Script, plain};
use hnc_tests::behaviour::{Route, Site};
use hnc_tests::nomad_checker::Verdict;
use serde_json::json;
use std::sync::Arc;

/// A server that answers 200 when `pass` says so, else `otherwise`.
fn judged(pass: impl Fn(&Head) -> bool + Send + Sync + 'static, otherwise: u16) -> Script {
    Arc::new(move |head: &Head| -> Reply {
        if pass(head) {
            plain(200)
        } else {
            plain(otherwise)
        }
    })
}

fn agent(head: &Head) -> &str {
    head.header("user-agent").unwrap_or("")
}

/// User-Agent-sensitive servers.
pub(super) async fn user_agent(b: &mut Backends) -> Vec<Case> {
    let nomad_only = b.raw(judged(|h| agent(h).starts_with("Nomad/"), 403)).await;
    let nomad_blocked = b
        .raw(judged(|h| !agent(h).starts_with("Nomad/"), 403))
        .await;
    let probe_only = b.raw(judged(|h| agent(h) == "probe/1", 403)).await;
    let any_agent = b.raw(judged(|h| !agent(h).is_empty(), 403)).await;
    vec![
        Case::new(
            "ua-nomad-required",
            get(),
            "403 unless the User-Agent starts with Nomad/",
            nomad_only,
        ),
        Case::new(
            "ua-nomad-blocked",
            get(),
            "403 when the User-Agent starts with Nomad/",
            nomad_blocked,
        ),
        Case::new(
            "ua-set-by-the-job",
            http_with("/health", json!({"Header": {"User-Agent": ["probe/1"]}})),
            "403 unless the User-Agent is probe/1",
            probe_only,
        ),
        Case::new(
            "ua-empty-refused",
            get(),
            "403 to a request without a User-Agent (a WAF rule)",
            any_agent,
        ),
    ]
}

/// An empty Host value, and Host values after an empty one.
pub(super) async fn empty_host(b: &mut Backends) -> Vec<Case> {
    let own = |port: u16| {
        Site::with(vec![
            Route::new("/health", 200).host(&format!("127.0.0.1:{port}")),
        ])
    };
    let vhost = Site::with(vec![Route::new("/health", 200).host("api.example.test")]);
    let vhost = b.http(vhost).await;
    vec![
        Case::new(
            "host-empty-value",
            http_with("/health", json!({"Header": {"Host": [""]}})),
            "serves only Host 127.0.0.1:<its port>",
            b.http_self(own).await,
        ),
        Case::new(
            "host-empty-then-vhost",
            http_with(
                "/health",
                json!({"Header": {"Host": ["", "api.example.test"]}}),
            ),
            "serves only Host api.example.test",
            vhost,
        ),
    ]
}

/// The request target as sent: the query string raw, the path escaped.
pub(super) async fn targets(b: &mut Backends, c: &Common) -> Vec<Case> {
    let exactly = |target: &'static str| judged(move |h| h.target == target, 400);
    let strict = judged(|h| h.parts == 3, 400);
    vec![
        Case::new(
            "query-raw-pipe",
            http_with("/health?x=a|b", json!({})),
            "400 unless the target is exactly /health?x=a|b",
            b.raw(exactly("/health?x=a|b")).await,
        ),
        Case::new(
            "query-raw-braces",
            http_with("/health?x={1}", json!({})),
            "400 unless the target is exactly /health?x={1}",
            b.raw(exactly("/health?x={1}")).await,
        ),
        Case::new(
            "query-percent-kept",
            http_with("/health?x=%41", json!({})),
            "400 unless the target is exactly /health?x=%41",
            b.raw(exactly("/health?x=%41")).await,
        ),
        Case::new(
            "query-blank",
            http_with("/health?q=a b", json!({})),
            "a strict server: 400 to a request line that is not three words",
            b.raw(strict).await,
        )
        .deliberate(Verdict::Pass, &QUERY_BLANK),
        Case::new(
            "path-percent-kept",
            http_with("/he%6Clth", json!({})),
            "400 unless the target is exactly /he%6Clth",
            b.raw(exactly("/he%6Clth")).await,
        ),
        Case::new(
            "path-blank-escaped",
            http_with("/a b", json!({})),
            "400 unless the target is exactly /a%20b",
            b.raw(exactly("/a%20b")).await,
        ),
        Case::new(
            "fragment-dropped",
            http_with("/health#top", json!({})),
            "answers 200 on /health",
            c.ok,
        ),
    ]
}

/// Methods with and without a body, and how the body is framed.
pub(super) async fn bodies(b: &mut Backends) -> Vec<Case> {
    let with = |method: &str, body: &str| json!({"Method": method, "Body": body});
    let no_chunks = judged(|h| h.header("transfer-encoding").is_none(), 411);
    let framed = judged(
        |h| h.header("content-length").is_some() || h.header("transfer-encoding").is_some(),
        411,
    );
    let put_only = judged(|h| h.method == "PUT", 405);
    let delete_only = judged(|h| h.method == "DELETE", 405);
    let any = judged(|_| true, 500);
    vec![
        Case::new(
            "post-body-chunked-refused",
            http_with("/health", with("POST", "ping")),
            "411 to a chunked request body",
            b.raw(no_chunks).await,
        )
        .deliberate(Verdict::Pass, &CHUNKED),
        Case::new(
            "post-body-any-framing",
            http_with("/health", with("POST", "ping")),
            "answers 200 to any request",
            b.raw(any).await,
        ),
        Case::new(
            "post-empty-needs-length",
            http_with("/health", json!({"Method": "POST"})),
            "411 to a POST without Content-Length or Transfer-Encoding",
            b.raw(framed).await,
        ),
        Case::new(
            "put-with-body",
            http_with("/health", with("PUT", "x")),
            "serves only PUT (405 otherwise)",
            b.raw(put_only).await,
        ),
        Case::new(
            "delete-served",
            http_with("/health", json!({"Method": "DELETE"})),
            "serves only DELETE (405 otherwise)",
            b.raw(delete_only).await,
        ),
    ]
}
