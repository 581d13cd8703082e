//! How long the watcher waits between retries after failures, and when that wait starts over.

use super::*;
use crate::nomad::error::Error;

/// Asserts that each gap between attempts is within the jittered back-off
/// of its failure: `min · 2ⁿ` capped at `max` (100 ms and 10 s here).
fn assert_doubling(gaps: &[Duration]) {
    for (n, gap) in gaps.iter().enumerate() {
        let base = (100 * MS * 2u32.pow(n.min(10) as u32)).min(10_000 * MS);
        assert!(
            *gap >= base / 2 && *gap <= base,
            "gap {n}: {gap:?} vs {base:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn permission_denied_doubles_up_to_the_cap_and_a_fixed_token_is_seen_at_the_next_retry() {
    let h = Harness::new();
    h.set(10, &[reg("a", "web", 80, 10)]);
    h.api.state().list_error =
        Some(|| Error::from_status("GET /v1/services".into(), 403, "Permission denied"));
    let (tx, mut rx) = mpsc::channel(16);
    let api = h.api.clone();
    let task = tokio::spawn(h.lp.run(tx));
    tokio::time::sleep(Duration::from_secs(120)).await;
    let err = h.health.get().last_error.unwrap();
    assert!(
        err.contains("permission denied") && err.contains("read-job"),
        "{err}"
    );
    // The operator fixes the token: the next retry lists the service.
    let fixed = Instant::now();
    api.state().list_error = None;
    let change = rx.recv().await.expect("the list after the fix");
    let noticed = fixed.elapsed();
    task.abort();
    assert_eq!(ids(&[change]), ["=a"]);
    assert!(noticed <= 10_000 * MS, "noticed after {noticed:?}");
    let calls = api.calls("services");
    let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    assert_doubling(&gaps);
    // Doubling, then the cap: no hot loop (at most 1 + 7 + 120 / 5 calls).
    assert!((13..=32).contains(&calls.len()), "{} attempts", calls.len());
}

#[tokio::test(start_paused = true)]
async fn a_successful_list_starts_the_back_off_over() {
    let mut h = Harness::new();
    h.set(10, &[reg("a", "web", 80, 10)]);
    let down: fn() -> Error =
        || Error::from_status("GET /v1/services".into(), 500, "No cluster leader");
    // A first outage: six failed lists in a row.
    h.api.state().list_error = Some(down);
    let mut delays = Vec::new();
    for _ in 0..6 {
        let (_, action) = h.steps(2).await;
        let Action::RetryAfter(d) = action else {
            panic!("a failed list must wait")
        };
        delays.push(d);
    }
    assert_doubling(&delays);
    // Nomad is back: the list works and the stream delivers an event.
    h.api.state().list_error = None;
    h.script(body(vec![frame(11, &[job_event("j", 11)])], false));
    let (changes, _) = h.steps(3).await;
    assert_eq!(ids(&changes), ["=a"]);
    // A second outage: the stream ends, and Nomad refuses it again. The
    // retry waits from backoff_min, not from 6.4 s where the first stopped.
    h.script(Script::Fail(down()));
    let (_, action) = h.steps(2).await;
    assert!(
        matches!(action, Action::RetryAfter(d) if d <= 100 * MS),
        "{action:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_refused_after_every_successful_list_still_backs_off() {
    let mut h = Harness::new();
    h.set(10, &[reg("a", "web", 80, 10)]);
    let mut delays = Vec::new();
    for _ in 0..5 {
        // Nomad 1.11.2+ refuses a subscription by closing it at once.
        h.script(body(Vec::new(), false));
        let (changes, action) = h.steps(3).await;
        assert_eq!(ids(&changes), ["=a"]);
        let Action::RetryAfter(d) = action else {
            panic!("a refused stream must wait")
        };
        delays.push(d);
    }
    assert_doubling(&delays);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_delivered_events_starts_the_stream_back_off_over() {
    let mut h = Harness::new();
    h.set(10, &[]);
    for _ in 0..4 {
        h.script(body(Vec::new(), false));
        h.steps(3).await;
    }
    // A stream that works for a while, then times out in silence.
    h.script(body(vec![frame(11, &[job_event("j", 11)])], true));
    h.steps(3).await;
    let (_, action) = h.steps(1).await;
    assert!(
        matches!(action, Action::RetryAfter(d) if d <= 100 * MS),
        "{action:?}"
    );
    let err = h.health.get().last_error.unwrap();
    assert!(err.contains("nothing received"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn other_failures_back_off_exponentially_with_jitter_up_to_the_cap() {
    let h = Harness::new();
    h.api.state().list_error =
        Some(|| Error::from_status("GET /v1/services".into(), 500, "No cluster leader"));
    let (tx, _rx) = mpsc::channel(16);
    let api = h.api.clone();
    let _ = tokio::time::timeout(Duration::from_secs(120), h.lp.run(tx)).await;
    let calls = api.calls("services");
    let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, gap) in gaps.iter().enumerate() {
        let base = (100 * MS * 2u32.pow(n.min(10) as u32)).min(10_000 * MS);
        assert!(
            *gap >= base / 2 && *gap <= base,
            "gap {n}: {gap:?} vs {base:?}"
        );
    }
    assert!(gaps.len() >= 12);
}
