//! `/v1/event/stream`: framing, heartbeats, start index, filters, deletion
//! types, wire formats, restarts and cuts.

use std::time::{Duration, Instant};

use nomad_sim::{PlaceAlloc, RestartKind, Sim, SimConfig, StopKind, StreamMode};
use serde_json::{Value, json};

use crate::common::*;

const SERVICES: &str = "/v1/event/stream?topic=Service";

#[tokio::test]
async fn heartbeat_first_then_every_interval() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "a"));
    let mut s = RawStream::open(sim.addr(), "/v1/event/stream?index=0", &[]).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(s.header("cache-control"), Some("no-cache"));
    // `{}` before the replayed batch.
    assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
    assert_ne!(s.frame().await, json!({}));
    let t = Instant::now();
    assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(120), "{waited:?}");
    assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
}

#[tokio::test]
async fn one_frame_per_raft_index_with_nomad_event_shape() {
    let sim = start().await;
    sim.register_job(web_job("webapp"));
    let mut s = RawStream::open(sim.addr(), SERVICES, &[]).await;
    let alloc = sim.place_alloc(
        PlaceAlloc::new("webapp", "web")
            .port("http", 24071)
            .port("admin", 24072),
    );
    let f = s.event_frame().await;
    let index = f["Index"].as_u64().unwrap();
    let events = f["Events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        2,
        "group + task service in one client apply: {f}"
    );
    for e in events {
        assert_eq!(e["Index"], index);
        assert_eq!(e["Topic"], "Service");
        assert_eq!(e["Type"], "ServiceRegistration");
        assert_eq!(e["Namespace"], "default");
        assert_eq!(e["Key"], e["Payload"]["Service"]["ID"]);
        let svc = &e["Payload"]["Service"];
        assert_eq!(e["FilterKeys"], json!(["webapp", svc["ServiceName"]]));
        assert_eq!(svc["AllocID"], alloc);
        assert_eq!(svc["CreateIndex"], index);
        assert_eq!(svc["ModifyIndex"], index);
    }
    let web = events
        .iter()
        .find(|e| e["Payload"]["Service"]["ServiceName"] == "webapp-web")
        .unwrap();
    assert_eq!(web["Payload"]["Service"]["Port"], 24071);
    // Plan apply, registration apply, client running apply: three indexes.
    assert_eq!(sim.last_index(), index + 1);
}

#[tokio::test]
async fn start_index_is_inclusive_and_zero_replays() {
    let sim = start().await;
    let mut indexes = Vec::new();
    for i in 0..3 {
        indexes.push(
            sim.register_job(simple_job("default", &format!("j{i}"), "s"))
                .index,
        );
    }
    let mut s = RawStream::open(
        sim.addr(),
        &format!("/v1/event/stream?topic=Job&index={}", indexes[1]),
        &[],
    )
    .await;
    assert_eq!(s.event_frame().await["Index"], indexes[1]);
    assert_eq!(s.event_frame().await["Index"], indexes[2]);

    let mut all = RawStream::open(sim.addr(), "/v1/event/stream?topic=Job&index=0", &[]).await;
    for i in &indexes {
        assert_eq!(all.event_frame().await["Index"], *i);
    }
    let live = sim.register_job(simple_job("default", "live", "s")).index;
    assert_eq!(all.event_frame().await["Index"], live);
}

#[tokio::test]
async fn too_old_index_starts_at_oldest_and_too_new_gets_newest() {
    let sim = Sim::start(SimConfig {
        buffer_size: 3,
        ..cfg()
    })
    .await
    .unwrap();
    let indexes: Vec<u64> = (0..6)
        .map(|i| {
            sim.register_job(simple_job("default", &format!("j{i}"), "s"))
                .index
        })
        .collect();
    let mut old = RawStream::open(sim.addr(), "/v1/event/stream?topic=Job&index=1", &[]).await;
    assert_eq!(
        old.event_frame().await["Index"],
        indexes[3],
        "silently starts at the oldest buffered"
    );

    let ahead = sim.last_index() + 100;
    let mut new = RawStream::open(
        sim.addr(),
        &format!("/v1/event/stream?topic=Job&index={ahead}"),
        &[],
    )
    .await;
    let f = new.event_frame().await;
    assert_eq!(
        f["Index"], indexes[5],
        "the newest batch comes although its index < requested"
    );
    assert!(f["Index"].as_u64().unwrap() < ahead);
}

#[tokio::test]
async fn namespace_param_filters_and_star_sees_all() {
    let sim = start().await;
    sim.register_job(simple_job("default", "d", "svc-d"));
    sim.register_job(simple_job("apps", "a", "svc-a"));
    let mut def =
        RawStream::open(sim.addr(), "/v1/event/stream?topic=Service&topic=Node", &[]).await;
    let mut star = RawStream::open(
        sim.addr(),
        "/v1/event/stream?topic=Service&namespace=*",
        &[],
    )
    .await;
    let mut apps = RawStream::open(
        sim.addr(),
        "/v1/event/stream?topic=Service&namespace=apps",
        &[],
    )
    .await;
    place_simple(&sim, "apps", "a", 9001);
    let d_alloc = place_simple(&sim, "default", "d", 9002);

    let f = def.event_frame().await;
    assert_eq!(f["Events"][0]["Namespace"], "default");
    assert_eq!(apps.event_frame().await["Events"][0]["Namespace"], "apps");
    assert_eq!(star.event_frame().await["Events"][0]["Namespace"], "apps");
    assert_eq!(
        star.event_frame().await["Events"][0]["Namespace"],
        "default"
    );

    // Node events have no namespace and are never filtered by it.
    sim.stop_alloc(&d_alloc, StopKind::NodeDown);
    let f = def.event_frame().await;
    let topics: Vec<&str> = f["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Topic"].as_str().unwrap())
        .collect();
    assert!(topics.contains(&"Node"), "{f}");
    let node = f["Events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Topic"] == "Node")
        .unwrap();
    assert_eq!(node["Namespace"], "");
    assert_eq!(node["FilterKeys"], Value::Null);
}

#[tokio::test]
async fn filter_keys_wildcards_and_duplicates() {
    let sim = start().await;
    sim.register_job(simple_job("default", "job1", "svc1"));
    sim.register_job(simple_job("default", "job2", "svc2"));
    let addr = sim.addr();
    let open = |q: &'static str| async move {
        RawStream::open(addr, &format!("/v1/event/stream?{q}"), &[]).await
    };
    let mut by_name = open("topic=Service:svc1").await;
    let mut by_job = open("topic=Service:job1").await;
    let mut twice = open("topic=Service:job1&topic=Service:svc1").await;
    let mut star_plus = open("topic=Service:*&topic=Service:svc2").await;
    let mut alloc_by_job = open("topic=Allocation:job1").await;
    place_simple(&sim, "default", "job1", 9001);

    for s in [&mut by_name, &mut by_job] {
        let f = s.event_frame().await;
        assert_eq!(f["Events"].as_array().unwrap().len(), 1);
        assert_eq!(f["Events"][0]["Payload"]["Service"]["ServiceName"], "svc1");
    }
    let f = twice.event_frame().await;
    let evs = f["Events"].as_array().unwrap();
    assert_eq!(evs.len(), 2, "an event matching two keys is emitted twice");
    assert_eq!(evs[0], evs[1]);
    // `*` is a wildcard only as the sole key: svc1 does not match `*` + `svc2`.
    assert!(
        star_plus
            .maybe_event_frame(Duration::from_millis(400))
            .await
            .is_none()
    );

    let f = alloc_by_job.event_frame().await;
    let e = &f["Events"][0];
    assert_eq!(e["Topic"], "Allocation");
    assert_eq!(e["Type"], "PlanResult");
    assert_eq!(e["FilterKeys"], json!(["job1", ""]));
    assert!(
        e["Payload"]["Allocation"]
            .get("Job")
            .is_none_or(Value::is_null),
        "Job is stripped"
    );
    assert_eq!(
        alloc_by_job.event_frame().await["Events"][0]["Type"],
        "AllocationUpdated"
    );
}

#[tokio::test]
async fn deletion_types_follow_the_raft_message_not_the_change() {
    let sim = start().await;
    sim.register_job(web_job("w"));
    let place = |p| {
        sim.place_alloc(
            PlaceAlloc::new("w", "web")
                .port("http", p)
                .port("admin", p + 1),
        )
    };
    let cases = [
        (StopKind::ClientDeregister, "ServiceDeregistration"),
        (StopKind::ClientTerminal, "AllocationUpdated"),
        (StopKind::PlanTerminal, "PlanResult"),
        (StopKind::NodeDown, "NodeStreamEvent"),
    ];
    for (i, (how, expected)) in cases.into_iter().enumerate() {
        let alloc = place(20000 + 10 * i as u16);
        let before = sim.last_index();
        let mut s = RawStream::open(
            sim.addr(),
            &format!("/v1/event/stream?topic=Service&index={}", before + 1),
            &[],
        )
        .await;
        let regs_before: Vec<Value> = sim
            .services_snapshot()
            .into_iter()
            .filter(|r| r["AllocID"] == alloc)
            .collect();
        assert_eq!(regs_before.len(), 2);
        assert!(sim.stop_alloc(&alloc, how));
        let mut deleted = Vec::new();
        while deleted.len() < 2 {
            let f = s.event_frame_from(before + 1).await;
            for e in f["Events"].as_array().unwrap() {
                assert_eq!(e["Type"], expected, "{how:?}: {f}");
                deleted.push(e["Payload"]["Service"].clone());
            }
        }
        for d in &deleted {
            assert!(regs_before.contains(d), "payload is the before-state: {d}");
        }
        assert!(
            sim.services_snapshot()
                .iter()
                .all(|r| r["AllocID"] != alloc)
        );
        assert!(!sim.stop_alloc(&alloc, how), "already terminal");
    }
}

#[tokio::test]
async fn bad_params_are_plain_text_400_and_non_get_405() {
    let sim = start().await;
    let (status, headers, body) = get(&sim, "/v1/event/stream?index=abc", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "Unable to parse index: strconv.Atoi: parsing \"abc\": invalid syntax"
    );
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    let (status, _, body) = get(&sim, "/v1/event/stream?topic=Service:a:b", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Service:a:b"
    );
    let resp = client()
        .post(format!("{}/v1/event/stream", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.text().await.unwrap(), "Invalid method");
}

#[tokio::test]
async fn hijacked_mode_is_close_delimited_and_errors_just_close() {
    let sim = start().await;
    let mut s = RawStream::open(sim.addr(), SERVICES, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.header("content-length"), None);
    assert_eq!(s.header("transfer-encoding"), None);
    assert_eq!(
        s.header("content-encoding"),
        None,
        "no gzip on the hijacked stream"
    );
    assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
    sim.restart(RestartKind::KeepState);
    let rest = s.rest(SOON).await;
    assert!(s.eof, "connection closed");
    let rest = String::from_utf8_lossy(&rest).into_owned();
    assert!(
        rest.split_terminator('\n').all(|l| l == "{}"),
        "no trailing error text: {rest:?}"
    );
    assert!(rest.is_empty() || rest.ends_with('\n'));
}

#[tokio::test]
async fn chunked_mode_appends_the_error_after_frames() {
    let sim = Sim::start(SimConfig {
        stream_mode: StreamMode::Chunked,
        ..cfg()
    })
    .await
    .unwrap();
    let mut s = RawStream::open(sim.addr(), SERVICES, &[]).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.header("transfer-encoding"), Some("chunked"));
    assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
    sim.restart(RestartKind::KeepState);
    let rest = String::from_utf8(s.rest(SOON).await).unwrap();
    assert!(
        rest.ends_with("subscription closed by server, client should resubscribe"),
        "{rest:?}"
    );
    assert!(s.ended, "terminal chunk follows");
}

#[tokio::test]
async fn restart_keep_state_drops_buffer_but_keeps_index() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "sa"));
    place_simple(&sim, "default", "a", 9000);
    let before = sim.last_index();
    sim.restart(RestartKind::KeepState);
    assert_eq!(sim.last_index(), before);
    assert_eq!(sim.services_snapshot().len(), 1);
    let mut s = RawStream::open(sim.addr(), "/v1/event/stream?index=0", &[]).await;
    assert!(
        s.maybe_event_frame(Duration::from_millis(300))
            .await
            .is_none(),
        "buffer is empty"
    );
    let next = sim.register_job(simple_job("default", "b", "sb")).index;
    assert_eq!(next, before + 1);
    assert_eq!(s.event_frame().await["Index"], next);
}

#[tokio::test]
async fn restart_wipe_resets_state_and_index_and_drops_connections() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "sa"));
    place_simple(&sim, "default", "a", 9000);
    let (idx, _) = get_json(&sim, "/v1/services").await;
    assert!(idx > 1);
    let mut s = RawStream::open(sim.addr(), SERVICES, &[]).await;
    assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
    sim.restart(RestartKind::Wipe);
    s.rest(SOON).await;
    assert!(s.eof);
    assert_eq!(sim.last_index(), 0);
    assert!(sim.services_snapshot().is_empty());
    let (idx, body) = get_json(&sim, "/v1/services").await;
    assert_eq!((idx, body), (1, json!([])));
    assert_eq!(sim.register_job(simple_job("default", "a", "sa")).index, 1);
}

#[tokio::test]
async fn cut_mid_frame_writes_half_a_frame_then_closes() {
    for mode in [StreamMode::Hijacked, StreamMode::Chunked] {
        let sim = Sim::start(SimConfig {
            stream_mode: mode,
            ..cfg()
        })
        .await
        .unwrap();
        sim.register_job(simple_job("default", "a", "sa"));
        let mut s = RawStream::open(sim.addr(), "/v1/event/stream?topic=Job", &[]).await;
        assert_eq!(s.line(SOON).await.as_deref(), Some("{}"));
        assert_eq!(s.event_frame().await["Index"], 1, "replayed before the cut");
        sim.cut_streams_mid_frame();
        let mut later = RawStream::open(sim.addr(), "/v1/event/stream?topic=Job", &[]).await;
        sim.register_job(simple_job("default", "b", "sb"));
        let rest = s.rest(SOON).await;
        assert!(s.eof, "{mode:?}: closed");
        let text = String::from_utf8_lossy(&rest).into_owned();
        let partial = text.trim_start_matches("{}\n");
        assert!(partial.starts_with("{\"Index\":"), "{mode:?}: {text:?}");
        assert!(
            !partial.contains('\n'),
            "{mode:?}: no complete frame: {text:?}"
        );
        assert!(serde_json::from_str::<Value>(partial).is_err());
        if mode == StreamMode::Chunked {
            assert!(s.truncated, "EOF inside the chunk");
        }
        // Streams opened after the cut are not affected.
        assert_eq!(later.event_frame_from(2).await["Events"][0]["Key"], "b");
    }
}

#[tokio::test]
async fn gzip_applies_to_the_chunked_stream_only() {
    use std::io::Read;
    let sim = Sim::start(SimConfig {
        stream_mode: StreamMode::Chunked,
        ..cfg()
    })
    .await
    .unwrap();
    let mut s = RawStream::open(sim.addr(), SERVICES, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(s.header("content-encoding"), Some("gzip"));
    sim.restart(RestartKind::KeepState);
    let body = s.rest(SOON).await;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with("{}\n"), "{text:?}");
    assert!(text.ends_with("client should resubscribe"), "{text:?}");
}
