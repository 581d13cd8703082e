//! How failed requests, refused or broken streams and oversized frames are reported and recovered from.

use super::super::failures::with_causes;
use super::*;
use crate::nomad::error::Error;

#[tokio::test]
async fn trailing_text_truncated_frames_and_silent_closes_are_reported() {
    let mut h = Harness::new();
    h.set(10, &[]);
    h.script(body(
        vec![
            Bytes::from_static(b"{}\n"),
            Bytes::from_static(b"subscription closed by server, client should resubscribe"),
        ],
        false,
    ));
    h.steps(5).await;
    assert!(
        h.health
            .get()
            .last_error
            .unwrap()
            .contains("subscription closed")
    );
    h.script(body(
        vec![Bytes::from_static(b"{}\n{\"Index\":11,\"Eve")],
        false,
    ));
    h.steps(4).await;
    assert!(h.health.get().last_error.unwrap().contains("mid-frame"));
    h.script(body(Vec::new(), false));
    let (_, action) = h.steps(3).await;
    let err = h.health.get().last_error.unwrap();
    assert!(err.contains("before its first heartbeat"), "{err}");
    assert!(matches!(action, Action::RetryAfter(_)));
    assert!(!h.health.get().connected);
}

#[tokio::test]
async fn a_stream_refused_with_500_permission_denied_is_reported_and_retried() {
    let mut h = Harness::new();
    h.set(10, &[]);
    h.script(Script::Fail(Error::from_status(
        "GET /v1/event/stream".into(),
        500,
        "Permission denied",
    )));
    let (_, action) = h.steps(1).await;
    assert!(
        matches!(action, Action::RetryAfter(d) if d <= 100 * MS),
        "{action:?}"
    );
    let err = h.health.get().last_error.unwrap();
    assert!(
        err.contains("HTTP 500") && err.contains("every namespace"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_request_is_reported_with_its_root_cause_once() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let source = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/v1/services"))
        .send()
        .await
        .unwrap_err();
    let text = with_causes(&Error::RequestFailed {
        what: "GET /v1/services".into(),
        source,
    });
    assert!(text.contains("Connection refused"), "{text}");
    assert_eq!(text.matches("error sending request").count(), 1, "{text}");
}

#[tokio::test]
async fn a_frame_over_the_cap_drops_the_stream_and_relists() {
    let mut h = Harness::new();
    h.lp.max_frame = 64 << 10;
    let a = reg("a", "web", 80, 10);
    h.set(10, std::slice::from_ref(&a));
    let half = Bytes::from(vec![b' '; 40 << 10]);
    let mut start = b"{\"Index\":11,\"Events\":[".to_vec();
    start.extend_from_slice(&half);
    // A server that would go on sending the frame for ever.
    h.script(body(
        vec![Bytes::from_static(b"{}\n"), Bytes::from(start), half],
        true,
    ));
    let (changes, action) = h.steps(5).await;
    assert_eq!(ids(&changes), ["=a"]);
    assert!(matches!(action, Action::RetryAfter(_)));
    let err = h.health.get().last_error.unwrap();
    assert!(
        err.contains("max_frame_bytes") && err.contains(&(80 * 1024 + 22).to_string()),
        "{err}"
    );
    assert!(matches!(h.state, Some(State::Relist)));
    // The frame's Job events are lost with it: cached job specs are dropped.
    assert_eq!(*h.rec.0.lock().unwrap(), ["reset"]);
    // The re-list opens a new stream and lists again.
    let (changes, _) = h.steps(2).await;
    assert_eq!(ids(&changes), ["=a"]);
    // The new stream starts after the refused frame, which would come back.
    assert_eq!(h.stream_requests(), ["stream * 0", "stream * 12"]);
}
