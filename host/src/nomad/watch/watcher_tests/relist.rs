//! How an ended stream is resumed or re-listed, and how a server whose index went backwards is handled.

use super::*;

#[tokio::test]
async fn an_ended_stream_resumes_at_once_and_relists_when_quiet() {
    let mut h = Harness::new();
    let a = reg("a", "web", 80, 10);
    h.set(10, std::slice::from_ref(&a));
    let b = reg("b", "web", 81, 11);
    h.script(body(
        vec![
            frame(11, &[svc_event("ServiceRegistration", &b, 11)]),
            frame(12, &[job_event("other", 12)]),
        ],
        false,
    ));
    let (changes, action) = h.steps(5).await;
    assert_eq!(ids(&changes), ["=a", "+b"]);
    // It delivered events: resumed after the last index, without a wait.
    assert_eq!(action, Action::Continue);

    // While away: c registered at 13 (dropped from Nomad's buffer), a
    // deleted at 14; the resumed stream starts at 14, then goes quiet.
    let c = reg("c", "api", 90, 13);
    h.set(14, &[b.clone(), c.clone()]);
    h.script(body(
        vec![frame(14, &[svc_event("ServiceDeregistration", &a, 14)])],
        true,
    ));
    let (changes, _) = h.steps(3).await;
    assert_eq!(ids(&changes), ["-a"]);
    // Quiet: the re-list repairs the gap, with a stream from after it.
    let (changes, _) = h.steps(2).await;
    assert_eq!(ids(&changes), ["=b,c"]);
    assert_eq!(
        h.stream_requests(),
        ["stream * 0", "stream * 13", "stream * 15"]
    );
    assert_eq!(h.health.get().reconnects, 2);
}

#[tokio::test]
async fn a_resumed_stream_that_ends_at_once_relists_without_a_back_off() {
    let mut h = Harness::new();
    let a = reg("a", "web", 80, 10);
    h.set(10, std::slice::from_ref(&a));
    h.script(body(vec![frame(11, &[job_event("other", 11)])], false));
    let (_, action) = h.steps(4).await;
    assert_eq!(action, Action::Continue);
    // Resumed too far behind: Nomad ends it before the first frame.
    h.script(body(vec![Bytes::from_static(b"{}\n")], false));
    let (_, action) = h.steps(3).await;
    assert_eq!(action, Action::Continue);
    let b = reg("b", "web", 81, 12);
    h.set(12, &[a.clone(), b.clone()]);
    let (changes, _) = h.steps(2).await;
    assert_eq!(ids(&changes), ["=a,b"]);
    assert_eq!(
        h.stream_requests(),
        ["stream * 0", "stream * 12", "stream * 12"]
    );
}

#[tokio::test]
async fn a_stream_that_ends_before_any_event_relists_after_a_back_off() {
    let mut h = Harness::new();
    let a = reg("a", "web", 80, 10);
    h.set(10, std::slice::from_ref(&a));
    h.script(body(vec![Bytes::from_static(b"{}\n")], false));
    let (changes, action) = h.steps(4).await;
    assert_eq!(ids(&changes), ["=a"]);
    assert!(matches!(action, Action::RetryAfter(d) if d <= 100 * MS));
    assert!(h.health.get().last_error.unwrap().contains("ended"));
    let c = reg("c", "api", 90, 13);
    h.set(14, &[a.clone(), c.clone()]);
    let (changes, _) = h.steps(2).await;
    assert_eq!(ids(&changes), ["=a,c"]);
    assert_eq!(h.stream_requests(), ["stream * 0", "stream * 11"]);
}

#[tokio::test]
async fn an_index_that_went_backwards_starts_over_from_the_servers_truth() {
    let mut h = Harness::new();
    h.set(50, &[reg("a", "web", 80, 50)]);
    h.script(body(vec![Bytes::from_static(b"{}\n")], false));
    h.steps(4).await;
    // The server was wiped: index 3, other instances.
    h.set(3, &[reg("z", "web", 80, 3)]);
    let (changes, _) = h.steps(3).await;
    assert_eq!(ids(&changes), ["=z"]);
    assert_eq!(h.health.get().index_resets, 1);
    assert_eq!(h.rec.0.lock().unwrap().as_slice(), ["reset"]);
    // The stream opened before the list asked for 51; the list showed the
    // reset, so it is opened again from the new server's index.
    assert_eq!(h.stream_requests()[1..], ["stream * 51", "stream * 4"]);
}
