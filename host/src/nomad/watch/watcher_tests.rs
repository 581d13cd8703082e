//! Tests of the watcher's state machine against a scripted Nomad.

use super::failures::with_causes;
use super::*;
use crate::nomad::config::Config;
use crate::nomad::error::Error;
use crate::nomad::fake::{FakeApi, Script};
use crate::nomad::watch::health::HealthWatch;
use crate::nomad::watch::wire::Registration;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

const MS: Duration = Duration::from_millis(1);

fn settings() -> Settings {
    let mut s = Config::default().resolve(&BTreeMap::new()).unwrap();
    s.backoff_min = 100 * MS;
    s.backoff_max = 10_000 * MS;
    s
}

fn reg(id: &str, name: &str, port: i64, index: u64) -> Registration {
    Registration {
        id: id.into(),
        service_name: name.into(),
        namespace: "default".into(),
        job_id: "job".into(),
        alloc_id: format!("alloc-{id}"),
        address: "10.0.0.1".into(),
        port,
        create_index: index,
        modify_index: index,
        ..Registration::default()
    }
}

fn svc_event(kind: &str, r: &Registration, index: u64) -> String {
    let payload = serde_json::json!({"Service": {
        "ID": r.id, "ServiceName": r.service_name, "Namespace": r.namespace,
        "JobID": r.job_id, "AllocID": r.alloc_id, "Address": r.address, "Port": r.port,
        "CreateIndex": r.create_index, "ModifyIndex": r.modify_index}});
    format!(
        r#"{{"Topic":"Service","Type":"{kind}","Key":"{}","Namespace":"default","Index":{index},"Payload":{payload}}}"#,
        r.id
    )
}

fn job_event(job: &str, index: u64) -> String {
    format!(
        r#"{{"Topic":"Job","Type":"JobRegistered","Key":"{job}","Namespace":"default","Index":{index},"Payload":{{"Job":{{"ID":"{job}","Namespace":"default","Version":1,"CreateIndex":2}}}}}}"#
    )
}

fn frame(index: u64, events: &[String]) -> Bytes {
    Bytes::from(format!(
        "{{\"Index\":{index},\"Events\":[{}]}}\n",
        events.join(",")
    ))
}

fn body(chunks: Vec<Bytes>, hang: bool) -> Script {
    Script::Body { chunks, hang }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Invalidate for Recorder {
    fn job_event(&self, ns: &str, job: &str, version: u64, _ci: u64, deleted: bool) {
        self.0
            .lock()
            .unwrap()
            .push(format!("job {ns}/{job} v{version} deleted={deleted}"));
    }
    fn alloc_planned(&self, _ns: &str, _job: &str, alloc: &str) {
        self.0.lock().unwrap().push(format!("alloc {alloc}"));
    }
    fn server_reset(&self) {
        self.0.lock().unwrap().push("reset".into());
    }
}

struct Harness {
    api: FakeApi,
    lp: ScopeLoop<FakeApi>,
    state: Option<State<crate::nomad::fake::FakeStream>>,
    health: HealthWatch,
    rec: Arc<Recorder>,
}

impl Harness {
    fn new() -> Harness {
        let api = FakeApi::default();
        let board = HealthBoard::new(["*".to_string()]);
        let rec = Arc::new(Recorder::default());
        let lp = ScopeLoop::new(
            api.clone(),
            Scope::All,
            &settings(),
            board.clone(),
            Some(rec.clone()),
        );
        Harness {
            api,
            lp,
            state: Some(State::Relist),
            health: board.watch(),
            rec,
        }
    }

    fn set(&self, index: u64, regs: &[Registration]) {
        let mut st = self.api.state();
        st.index = index;
        st.services.clear();
        for r in regs {
            st.services
                .entry((r.namespace.clone(), r.service_name.clone()))
                .or_default()
                .push(r.clone());
        }
    }

    fn script(&self, s: Script) {
        self.api.state().streams.push_back(s);
    }

    /// Steps until `n` steps are done; returns every change and the last action.
    async fn steps(&mut self, n: usize) -> (Vec<Change>, Action) {
        let mut changes = Vec::new();
        let mut action = Action::Continue;
        for _ in 0..n {
            let step = self.lp.step(self.state.take().unwrap()).await;
            changes.extend(step.changes);
            action = step.action;
            self.state = Some(step.next);
        }
        (changes, action)
    }

    fn stream_requests(&self) -> Vec<String> {
        self.api
            .state()
            .calls
            .iter()
            .filter(|(w, _)| w.starts_with("stream"))
            .map(|(w, _)| w.clone())
            .collect()
    }
}

fn ids(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upserted(i) => format!("+{}", i.id),
            Change::Removed(i) => format!("-{}", i.id),
            Change::Relisted { instances, .. } => format!(
                "={}",
                instances
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Change::JobChanged { job, .. } => format!("job {job}"),
            Change::Canaries(updates) => format!("canaries {}", updates.len()),
        })
        .collect()
}

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
