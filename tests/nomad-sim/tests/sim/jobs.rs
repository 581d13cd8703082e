//! `/v1/job/:id`, versions, allocations, `/v1/allocation/:id`, and Job events.

use nomad_sim::PlaceAlloc;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn versions_bump_only_on_spec_change() {
    let sim = start().await;
    let first = sim.register_job(web_job("shop"));
    assert_eq!((first.version, first.changed), (0, true));
    let same = sim.register_job(web_job("shop"));
    assert_eq!(
        (same.version, same.changed),
        (0, false),
        "unchanged spec: only an evaluation"
    );
    assert_eq!(same.job_modify_index, first.index);
    let mut v1 = web_job("shop");
    v1["Meta"]["env"] = json!("staging");
    let second = sim.register_job(v1);
    assert_eq!((second.version, second.changed), (1, true));

    let (idx, job) = get_json(&sim, "/v1/job/shop").await;
    assert_eq!(job["Version"], 1);
    assert_eq!(job["ModifyIndex"], idx);
    assert_eq!(job["JobModifyIndex"], second.index);
    assert_eq!(job["CreateIndex"], first.index);
    assert_eq!(job["Status"], "pending");
    let (_, versions) = get_json(&sim, "/v1/job/shop/versions").await;
    assert_eq!(versions["Diffs"], Value::Null);
    let v: Vec<u64> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["Version"].as_u64().unwrap())
        .collect();
    assert_eq!(v, [1, 0], "newest first");
}

#[tokio::test]
async fn allocation_embeds_the_version_it_runs() {
    let sim = start().await;
    sim.register_job(web_job("shop"));
    let old = sim.place_alloc(
        PlaceAlloc::new("shop", "web")
            .port("http", 31000)
            .port("admin", 31001),
    );
    let mut v1 = web_job("shop");
    v1["TaskGroups"][0]["Services"][0]["Tags"] = json!(["v2"]);
    sim.register_job(v1);
    let new = sim.place_alloc(
        PlaceAlloc::new("shop", "web")
            .port("http", 31002)
            .port("admin", 31003),
    );

    let (idx, a) = get_json(&sim, &format!("/v1/allocation/{old}")).await;
    assert_eq!(a["ModifyIndex"], idx);
    assert_eq!(a["Job"]["Version"], 0);
    assert_eq!(a["TaskGroup"], "web");
    assert_eq!(a["Name"], "shop.web[0]");
    assert_eq!(
        (&a["ClientStatus"], &a["DesiredStatus"]),
        (&json!("running"), &json!("run"))
    );
    assert_eq!(
        a["AllocatedResources"]["Shared"]["Ports"],
        json!([
            {"Label": "http", "Value": 31000, "To": 8080, "HostIP": "127.0.0.1"},
            {"Label": "admin", "Value": 31001, "To": 0, "HostIP": "127.0.0.1"}
        ])
    );
    assert!(
        a.get("DeploymentID").is_none(),
        "omitempty: zero-valued fields are absent"
    );
    let (_, b) = get_json(&sim, &format!("/v1/allocation/{new}")).await;
    assert_eq!(b["Job"]["Version"], 1);
    assert_eq!(b["Name"], "shop.web[1]");

    let (_, stubs) = get_json(&sim, "/v1/job/shop/allocations").await;
    let mut versions: Vec<(String, u64)> = stubs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["ID"].as_str().unwrap().to_string(),
                s["JobVersion"].as_u64().unwrap(),
            )
        })
        .collect();
    versions.sort_by_key(|(_, v)| *v);
    assert_eq!(versions, [(old.clone(), 0), (new, 1)]);
    for s in stubs.as_array().unwrap() {
        for k in [
            "ID",
            "JobID",
            "TaskGroup",
            "Namespace",
            "ClientStatus",
            "DesiredStatus",
            "DeploymentStatus",
            "JobVersion",
        ] {
            assert!(s.get(k).is_some(), "{k}");
        }
    }
    let (_, job) = get_json(&sim, "/v1/job/shop").await;
    assert_eq!(job["Status"], "running");
}

#[tokio::test]
async fn deregister_stops_allocs_and_purge_is_flagged() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "web"));
    place_simple(&sim, "default", "a", 9000);
    let from = sim.last_index() + 1;
    let mut s = RawStream::open(
        sim.addr(),
        &format!("/v1/event/stream?topic=Job&topic=Service&index={from}"),
        &[],
    )
    .await;
    assert!(sim.deregister_job("default", "a", false));
    let f = s.event_frame_from(from).await;
    assert_eq!(types_of(&f, "Job"), ["JobDeregistered"]);
    let job = &f["Events"][0]["Payload"]["Job"];
    assert_eq!((&job["Stop"], &job["Version"]), (&json!(true), &json!(1)));
    let f = s.event_frame().await;
    assert_eq!(
        types_of(&f, "Service"),
        ["PlanResult"],
        "plan stops the alloc and deletes its services"
    );
    assert!(sim.services_snapshot().is_empty());

    assert!(sim.deregister_job("default", "a", true));
    let purge = loop {
        let f = s.event_frame().await;
        if types_of(&f, "Job") == ["JobDeregistered"] {
            break f;
        }
    };
    assert_eq!(purge["Events"][0]["Payload"]["Deleted"], true);
    assert_eq!(get(&sim, "/v1/job/a", &[]).await.0, 404);
    assert!(!sim.deregister_job("default", "a", true));
}

#[tokio::test]
async fn bad_control_input_is_an_error_not_a_panic() {
    let sim = start().await;
    assert!(sim.try_register_job(json!({"Name": "no id"})).is_err());
    assert!(sim.try_register_job(json!("not an object")).is_err());
    sim.register_job(simple_job("default", "a", "web"));
    assert!(sim.try_place_alloc(PlaceAlloc::new("nope", "g")).is_err());
    assert!(sim.try_place_alloc(PlaceAlloc::new("a", "nope")).is_err());
    assert!(
        sim.try_place_alloc(PlaceAlloc {
            version: Some(9),
            ..PlaceAlloc::new("a", "g")
        })
        .is_err()
    );
    assert!(
        sim.try_place_alloc(PlaceAlloc {
            address: "0.0.0.0".into(),
            ..PlaceAlloc::new("a", "g")
        })
        .is_err()
    );
    assert!(!sim.stop_alloc("nope", nomad_sim::StopKind::ClientTerminal));
}

#[tokio::test]
async fn client_check_results_are_keyed_by_check_id_pending_until_set() {
    let sim = start().await;
    sim.register_job(json!({
        "ID": "api", "Name": "api",
        "TaskGroups": [{"Name": "g",
            "Services": [{"Name": "api", "PortLabel": "http", "Provider": "nomad",
                "Checks": [{"Name": "health", "Type": "http", "Path": "/h",
                            "Interval": 1_000_000_000_i64, "Timeout": 1_000_000_000_i64},
                           {"Type": "tcp", "OnUpdate": "ignore",
                            "Interval": 1_000_000_000_i64, "Timeout": 1_000_000_000_i64}]}],
            "Tasks": [{"Name": "t"}]}]
    }));
    let alloc = sim.place_alloc(PlaceAlloc::new("api", "g").port("http", 8080));
    let (_, body) = get_json(&sim, &format!("/v1/client/allocation/{alloc}/checks")).await;
    let results = body.as_object().expect("an object keyed by check ID");
    assert_eq!(results.len(), 2);
    for (id, r) in results {
        assert_eq!((r["ID"].as_str(), id.len()), (Some(id.as_str()), 64));
        assert_eq!(r["Status"], "pending");
        assert_eq!(r["Output"], "nomad: waiting to run");
        assert!(r.get("StatusCode").is_none() && r.get("Task").is_none());
        assert_eq!(r["Group"], "api.g[0]");
        assert_eq!(r["Service"], "api");
    }
    let by_check = |body: &Value, name: &str| {
        body.as_object()
            .unwrap()
            .values()
            .find(|r| r["Check"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_check(&body, "service: \"api\" check")["Mode"],
        "readiness"
    );
    sim.set_check_result(&alloc, "api", "health", nomad_sim::CheckOutcome::http_ok());
    let (_, body) = get_json(&sim, &format!("/v1/allocation/{alloc}/checks")).await;
    let health = by_check(&body, "health");
    assert_eq!(
        (
            &health["Mode"],
            &health["Status"],
            &health["StatusCode"],
            &health["Output"]
        ),
        (
            &json!("healthiness"),
            &json!("success"),
            &json!(200),
            &json!("nomad: http ok")
        )
    );
    let (status, _, text) = get(&sim, "/v1/client/allocation/nope/checks", &[]).await;
    assert_eq!((status, text.as_str()), (404, "alloc not found"));
}
