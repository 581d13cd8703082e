//! Cases on answers a simple site never gives: interim 1xx answers,
//! HTTP/1.0 close-delimited bodies, stalls after the head, huge or malformed
//! answers, and connections reset before or after the request.

use super::Common;
use crate::fidelity::backends::Backends;
use crate::fidelity::case::{BUFFER, Case, INTERIM, get, http_with};
use crate::fidelity::raw::{Then, fixed};
use hnc_tests::nomad_checker::Verdict;
use serde_json::json;

/// The end of an empty answer's head.
const EMPTY: &str = "content-length: 0\r\nconnection: close\r\n\r\n";

/// `status` with a `Content-Length: 0` head and nothing else.
fn head(status: u16) -> String {
    format!("HTTP/1.1 {status} X\r\n{EMPTY}")
}

async fn raw(b: &mut Backends, bytes: String, then: Then) -> u16 {
    b.raw(fixed(bytes, then)).await
}

/// Interim answers before the final one.
pub(super) async fn interim(b: &mut Backends) -> Vec<Case> {
    let mut out = Vec::new();
    for (name, interim, status, behaviour) in [
        (
            "interim-100-then-200",
            "100 Continue",
            200,
            "100 Continue, then 200",
        ),
        (
            "interim-102-then-200",
            "102 Processing",
            200,
            "102 Processing, then 200",
        ),
        (
            "interim-103-then-200",
            "103 Early Hints",
            200,
            "103 Early Hints (with a Link header), then 200",
        ),
        (
            "interim-100-then-500",
            "100 Continue",
            500,
            "100 Continue, then 500",
        ),
    ] {
        let link = if interim.starts_with("103") {
            "link: </app.css>; rel=preload\r\n"
        } else {
            ""
        };
        let bytes = format!("HTTP/1.1 {interim}\r\n{link}\r\n{}", head(status));
        let port = b.raw(fixed(bytes, Then::Close)).await;
        let case = Case::new(name, get(), behaviour, port);
        out.push(if status == 200 {
            case.deliberate(Verdict::Fail, &INTERIM)
        } else {
            case
        });
    }
    out
}

/// Framing: HTTP/1.0 and close-delimited bodies, stalls, huge and broken
/// answers.
pub(super) async fn framing(b: &mut Backends) -> Vec<Case> {
    let big = "a".repeat(20_000);
    let many: String = (0..150).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    let huge_body = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: 4194304\r\nconnection: close\r\n\r\n{}",
        "b".repeat(4_194_304)
    );
    vec![
        Case::new(
            "http10-close-delimited-200",
            get(),
            "HTTP/1.0 200, body until close, no length",
            raw(b, "HTTP/1.0 200 OK\r\n\r\nok".into(), Then::Close).await,
        ),
        Case::new(
            "http10-close-delimited-503",
            get(),
            "HTTP/1.0 503, body until close, no length",
            raw(b, "HTTP/1.0 503 Busy\r\n\r\nno".into(), Then::Close).await,
        ),
        Case::new(
            "http11-close-delimited-200",
            get(),
            "HTTP/1.1 200, Connection: close, body until close",
            raw(
                b,
                "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nok".into(),
                Then::Close,
            )
            .await,
        ),
        Case::new(
            "stall-after-head-200",
            get(),
            "200 with Content-Length 100, 2 bytes of body, then silence",
            raw(
                b,
                "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nok".into(),
                Then::Stall,
            )
            .await,
        ),
        Case::new(
            "stall-after-head-503",
            get(),
            "503 with Content-Length 100, 2 bytes of body, then silence",
            raw(
                b,
                "HTTP/1.1 503 Busy\r\ncontent-length: 100\r\n\r\nno".into(),
                Then::Stall,
            )
            .await,
        ),
        Case::new(
            "stall-mid-head",
            get(),
            "half a head, then silence",
            raw(b, "HTTP/1.1 200 OK\r\ncontent-le".into(), Then::Stall).await,
        ),
        Case::new(
            "stall-chunked-200",
            get(),
            "200, chunked, one chunk, then silence",
            raw(
                b,
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n".into(),
                Then::Stall,
            )
            .await,
        ),
        Case::new(
            "huge-body-200",
            get(),
            "200 with a 4 MB body",
            raw(b, huge_body, Then::Close).await,
        ),
        Case::new(
            "truncated-body-200",
            get(),
            "200 with Content-Length 100, 2 bytes, then close",
            raw(
                b,
                "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nok".into(),
                Then::Close,
            )
            .await,
        ),
        Case::new(
            "malformed-chunked-200",
            get(),
            "200, chunked, a chunk size that is not hex",
            raw(
                b,
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n".into(),
                Then::Close,
            )
            .await,
        )
        .deliberate(Verdict::Fail, &BUFFER),
        Case::new(
            "malformed-chunked-500",
            get(),
            "500, chunked, a chunk size that is not hex",
            raw(
                b,
                "HTTP/1.1 500 Err\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nno\r\n0\r\n\r\n"
                    .into(),
                Then::Close,
            )
            .await,
        ),
        Case::new(
            "not-http-answer",
            get(),
            "answers an SSH banner",
            raw(b, "SSH-2.0-OpenSSH_9.2\r\n".into(), Then::Close).await,
        ),
        Case::new(
            "empty-answer",
            get(),
            "reads the request, closes without a word",
            raw(b, String::new(), Then::Close).await,
        ),
        Case::new(
            "header-8k-200",
            get(),
            "200 with an 8 kB header",
            raw(
                b,
                format!(
                    "HTTP/1.1 200 OK\r\nx-big: {}\r\n{}",
                    "a".repeat(8_000),
                    EMPTY
                ),
                Then::Close,
            )
            .await,
        ),
        Case::new(
            "header-20k-200",
            get(),
            "200 with a 20 kB header",
            raw(
                b,
                format!("HTTP/1.1 200 OK\r\nx-big: {big}\r\n{}", EMPTY),
                Then::Close,
            )
            .await,
        )
        .deliberate(Verdict::Fail, &BUFFER),
        Case::new(
            "header-20k-500",
            get(),
            "500 with a 20 kB header",
            raw(
                b,
                format!("HTTP/1.1 500 Err\r\nx-big: {big}\r\n{}", EMPTY),
                Then::Close,
            )
            .await,
        ),
        Case::new(
            "headers-150-200",
            get(),
            "200 with 150 header lines",
            raw(
                b,
                format!("HTTP/1.1 200 OK\r\n{many}{}", EMPTY),
                Then::Close,
            )
            .await,
        )
        .deliberate(Verdict::Fail, &BUFFER),
    ]
}

/// Connections reset before or after the request; a TLS handshake that
/// never comes.
pub(super) async fn resets(b: &mut Backends, c: &Common) -> Vec<Case> {
    let at_once = b.reset_at_once().await;
    let after_request = b.raw(fixed(Vec::new(), Then::Reset)).await;
    let https = || json!({"Protocol": "https", "TLSSkipVerify": true});
    vec![
        // No TCP check against this backend: whether a connect sees the
        // reset (Go's dial checks SO_ERROR after the handshake) is a race
        // on loopback, for Nomad and HAProxy alike.
        Case::new(
            "reset-at-accept",
            get(),
            "resets every connection as it accepts it",
            at_once,
        ),
        Case::new(
            "reset-after-request",
            get(),
            "reads the request, then resets",
            after_request,
        ),
        Case::new(
            "https-handshake-never-answered",
            http_with("/health", https()),
            "accepts the connection, never answers the TLS handshake",
            c.open,
        ),
    ]
}
