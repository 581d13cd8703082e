//! What the list and the event stream deliver: changes, job events for the check cache, and event counts.

use super::*;

#[tokio::test]
async fn watcher_opens_the_stream_then_lists_and_skips_what_the_list_holds() {
    let mut h = Harness::new();
    let a = reg("a", "web", 80, 10);
    h.set(10, std::slice::from_ref(&a));
    let b = reg("b", "web", 81, 11);
    // Opened before the list, the stream replays Nomad's buffer from 0:
    // a's registration is already in the list, b's comes after it.
    h.script(body(
        vec![
            Bytes::from_static(b"{}\n"),
            frame(10, &[svc_event("ServiceRegistration", &a, 10)]),
            frame(11, &[svc_event("ServiceRegistration", &b, 11)]),
        ],
        true,
    ));
    let (changes, _) = h.steps(5).await;
    assert_eq!(ids(&changes), ["=a", "+b"]);
    assert_eq!(h.stream_requests(), ["stream * 0"]);
    let health = h.health.get();
    assert!(health.connected);
    assert_eq!(health.last_index, 11);
}

#[tokio::test]
async fn frames_older_than_requested_are_dropped() {
    let mut h = Harness::new();
    let a = reg("a", "web", 80, 10);
    h.set(10, std::slice::from_ref(&a));
    let x = reg("x", "web", 82, 5);
    h.script(body(
        vec![
            frame(5, &[svc_event("ServiceRegistration", &x, 5)]),
            frame(12, &[svc_event("PlanResult", &a, 12)]),
        ],
        true,
    ));
    let (changes, _) = h.steps(4).await;
    assert_eq!(ids(&changes), ["=a", "-a"]);
}

#[tokio::test]
async fn job_events_reach_the_cache_and_become_job_changed_for_watched_jobs() {
    let mut h = Harness::new();
    h.set(10, &[reg("a", "web", 80, 10)]);
    let alloc = r#"{"Topic":"Allocation","Type":"PlanResult","Key":"alloc-a","Namespace":"default","Index":12,"Payload":{"Allocation":{"ID":"alloc-a","JobID":"job","Namespace":"default"}}}"#;
    h.script(body(
        vec![
            frame(11, &[job_event("job", 11), job_event("unwatched", 11)]),
            frame(12, &[alloc.to_string()]),
        ],
        true,
    ));
    let (changes, _) = h.steps(4).await;
    assert_eq!(ids(&changes), ["=a", "job job", "job job"]);
    assert_eq!(
        h.rec.0.lock().unwrap().as_slice(),
        [
            "job default/job v1 deleted=false",
            "job default/unwatched v1 deleted=false",
            "alloc alloc-a"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn events_are_counted_by_topic_and_each_frame_or_heartbeat_resets_the_lag() {
    let mut h = Harness::new();
    h.set(10, &[]);
    let b = reg("b", "web", 81, 11);
    let node = r#"{"Topic":"Node","Type":"NodeRegistration","Key":"n1","Namespace":"","Index":12,"Payload":{}}"#;
    h.script(body(
        vec![
            Bytes::from_static(b"{}\n"),
            frame(
                11,
                &[svc_event("ServiceRegistration", &b, 11), job_event("j", 11)],
            ),
            frame(12, &[job_event("j", 12), node.to_string()]),
        ],
        true,
    ));
    h.steps(2).await;
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(h.health.get().stream_lag(), Some(Duration::from_secs(20)));
    h.steps(1).await;
    assert_eq!(h.health.get().stream_lag(), Some(Duration::ZERO));
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(h.health.get().stream_lag(), Some(Duration::from_secs(7)));
    h.steps(2).await;
    let health = h.health.get();
    assert_eq!(health.stream_lag(), Some(Duration::ZERO));
    let topics: Vec<_> = health.events.into_iter().collect();
    assert_eq!(topics, [("Job", 2), ("Service", 1), ("other", 1)]);
}
