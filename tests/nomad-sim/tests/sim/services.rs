//! `/v1/services`, `/v1/service/:name`: shapes, registration fields, canaries,
//! blocking queries, indexes and errors.

use std::time::{Duration, Instant};

use nomad_sim::{PlaceAlloc, StopKind};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn unknown_service_is_an_empty_array_not_404() {
    let sim = start().await;
    let (status, headers, body) = get(&sim, "/v1/service/nope", &[]).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    assert_eq!(headers["x-nomad-index"], "1", "max(1, table index)");
    assert_eq!(headers["x-nomad-knownleader"], "true");
    assert_eq!(headers["x-nomad-lastcontact"], "0");
    assert_eq!(headers["content-type"], "application/json");
    sim.register_job(simple_job("default", "a", "web"));
    place_simple(&sim, "default", "a", 9000);
    assert_eq!(
        get_json(&sim, "/v1/service/web?namespace=*").await.1,
        json!([])
    );
    assert_eq!(
        get_json(&sim, "/v1/service/web?namespace=other").await.1,
        json!([])
    );
    assert_eq!(
        get_json(&sim, "/v1/services?namespace=other").await.1,
        json!([])
    );
}

#[tokio::test]
async fn registrations_are_interpolated_per_alloc_and_spec_stays_literal() {
    let sim = start().await;
    sim.register_job(web_job("shop"));
    let alloc = sim.place_alloc(
        PlaceAlloc::new("shop", "web")
            .port("http", 31000)
            .port("admin", 31001),
    );
    let (_, regs) = get_json(&sim, "/v1/service/shop-web").await;
    let r = &regs[0];
    assert_eq!(regs.as_array().unwrap().len(), 1);
    assert_eq!(
        r["ID"],
        format!("_nomad-task-{alloc}-group-web-shop-web-http")
    );
    assert_eq!(r["ServiceName"], "shop-web");
    assert_eq!(r["Tags"], json!(["v1", "front"]));
    assert_eq!(r["Port"], 31000);
    assert_eq!(r["Address"], "127.0.0.1");
    assert_eq!(r["Datacenter"], "dc1");
    assert_eq!(
        (&r["JobID"], &r["AllocID"], &r["Namespace"]),
        (&json!("shop"), &json!(alloc), &json!("default"))
    );
    assert!(r["NodeID"].as_str().unwrap().len() == 36);
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "ID",
        "ServiceName",
        "Namespace",
        "NodeID",
        "Datacenter",
        "JobID",
        "AllocID",
        "Tags",
        "Address",
        "Port",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    assert_eq!(keys.len(), 12, "no Meta, no checks, no health");

    let (_, admin) = get_json(&sim, "/v1/service/admin").await;
    assert_eq!(
        admin[0]["ID"],
        format!("_nomad-task-{alloc}-server-admin-admin")
    );
    assert_eq!(admin[0]["Tags"], Value::Null);
    assert_eq!(
        get_json(&sim, "/v1/service/consul-only").await.1,
        json!([]),
        "provider consul never registers"
    );

    let (_, job) = get_json(&sim, "/v1/job/shop").await;
    assert_eq!(
        job["TaskGroups"][0]["Services"][0]["Name"],
        "${NOMAD_JOB_NAME}-web"
    );
    assert_eq!(
        job["TaskGroups"][0]["Services"][0]["Tags"],
        json!(["v1", "${NOMAD_META_tier}"])
    );
    let (_, by_job) = get_json(&sim, "/v1/job/shop/services").await;
    assert_eq!(by_job.as_array().unwrap().len(), 2);
    let (_, by_alloc) = get_json(&sim, &format!("/v1/allocation/{alloc}/services")).await;
    assert_eq!(by_alloc, by_job);
}

#[tokio::test]
async fn canaries_register_canary_tags_until_promoted() {
    let sim = start().await;
    sim.register_job(web_job("shop"));
    let alloc = sim.place_alloc(PlaceAlloc {
        canary: true,
        ..PlaceAlloc::new("shop", "web")
            .port("http", 31000)
            .port("admin", 31001)
    });
    let (_, before) = get_json(&sim, "/v1/service/shop-web").await;
    assert_eq!(before[0]["Tags"], json!(["canary"]));
    let (_, a) = get_json(&sim, &format!("/v1/allocation/{alloc}")).await;
    assert_eq!(a["DeploymentStatus"]["Canary"], true);
    assert!(!a["DeploymentID"].as_str().unwrap().is_empty());

    let from = sim.last_index() + 1;
    let mut s = RawStream::open(
        sim.addr(),
        &format!("/v1/event/stream?topic=Allocation&topic=Service&index={from}"),
        &[],
    )
    .await;
    assert!(sim.promote(&alloc));
    assert_eq!(
        types_of(&s.event_frame_from(from).await, "Allocation"),
        ["DeploymentPromotion"]
    );
    assert_eq!(
        types_of(&s.event_frame().await, "Service"),
        ["ServiceRegistration"]
    );
    let (_, after) = get_json(&sim, "/v1/service/shop-web").await;
    assert_eq!(after[0]["Tags"], json!(["v1", "front"]));
    assert_eq!(after[0]["CreateIndex"], before[0]["CreateIndex"]);
    assert!(after[0]["ModifyIndex"].as_u64() > before[0]["ModifyIndex"].as_u64());
    assert!(!sim.promote(&alloc), "no longer a canary");
}

#[tokio::test]
async fn list_groups_by_namespace_and_dedupes_tags() {
    let sim = start().await;
    let mut job = simple_job("default", "a", "web");
    job["TaskGroups"][0]["Services"][0]["Tags"] = json!(["x", "y"]);
    sim.register_job(job);
    place_simple(&sim, "default", "a", 9000);
    place_simple(&sim, "default", "a", 9001);
    sim.register_job(simple_job("apps", "b", "api"));
    place_simple(&sim, "apps", "b", 9002);

    let (_, list) = get_json(&sim, "/v1/services").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["Namespace"], "default");
    let mut tags: Vec<String> =
        serde_json::from_value(list[0]["Services"][0]["Tags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, ["x", "y"]);
    let (_, all) = get_json(&sim, "/v1/services?namespace=*").await;
    let mut namespaces: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Namespace"].as_str().unwrap())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["apps", "default"]);
    let (_, apps) = get_json(&sim, "/v1/services?namespace=apps").await;
    assert_eq!(
        apps,
        json!([{"Namespace": "apps", "Services": [{"ServiceName": "api", "Tags": ["t"]}]}])
    );
}

#[tokio::test]
async fn blocking_query_wakes_on_change() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "web"));
    let (idx, _) = get_json(&sim, "/v1/service/web").await;
    let bg = sim.clone();
    let waker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        place_simple(&bg, "default", "a", 9000);
    });
    let t = Instant::now();
    let (new_idx, regs) = get_json(&sim, &format!("/v1/service/web?index={idx}&wait=10s")).await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(new_idx > idx);
    assert_eq!(regs.as_array().unwrap().len(), 1);
    waker.await.unwrap();

    // The list endpoint blocks too.
    let (list_idx, _) = get_json(&sim, "/v1/services").await;
    let bg = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        place_simple(&bg, "default", "a", 9001);
    });
    let (after, _) = get_json(&sim, &format!("/v1/services?index={list_idx}&wait=10s")).await;
    assert!(after > list_idx);
}

#[tokio::test]
async fn blocking_query_times_out_with_the_same_index() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "web"));
    place_simple(&sim, "default", "a", 9000);
    let (idx, body) = get_json(&sim, "/v1/service/web").await;
    // A change elsewhere (another job registered) does not wake it.
    sim.register_job(simple_job("default", "b", "other"));
    let t = Instant::now();
    let (same, again) = get_json(&sim, &format!("/v1/service/web?index={idx}&wait=300ms")).await;
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(same, idx);
    assert_eq!(again, body);
    // An index from the past returns at once.
    let t = Instant::now();
    get_json(&sim, &format!("/v1/service/web?index={}&wait=5s", idx - 1)).await;
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn index_moves_on_deletes() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "web"));
    let alloc = place_simple(&sim, "default", "a", 9000);
    let (before, _) = get_json(&sim, "/v1/service/web").await;
    sim.stop_alloc(&alloc, StopKind::ClientTerminal);
    let (after, regs) = get_json(&sim, "/v1/service/web").await;
    assert!(after > before);
    assert_eq!(regs, json!([]));
}

#[tokio::test]
async fn errors_are_plain_text_with_nomad_messages() {
    let sim = start().await;
    for (path, status, body) in [
        ("/v1/service/", 400, "missing service name"),
        ("/v1/service/a/b/c", 400, "invalid URI"),
        ("/v1/service/web?index=abc", 400, "Invalid index"),
        ("/v1/service/web?index=-1", 400, "Invalid index"),
        ("/v1/services?wait=soon", 400, "Invalid wait time"),
        ("/v1/job/nope", 404, "job not found"),
        ("/v1/job/nope/versions", 404, "job versions not found"),
        ("/v1/allocation/nope", 404, "alloc not found"),
        ("/v1/allocation/nope/services", 404, "allocation not found"),
        ("/v1/allocation/a/b/c", 404, "resource not found"),
    ] {
        let (s, headers, b) = get(&sim, path, &[]).await;
        assert_eq!((s, b.as_str()), (status, body), "{path}");
        assert_eq!(
            headers["content-type"], "text/plain; charset=utf-8",
            "{path}"
        );
    }
    let resp = client()
        .put(format!("{}/v1/service/web", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.text().await.unwrap(), "Invalid method");
    let (s, _, b) = get(&sim, "/v1/nothing-here", &[]).await;
    assert_eq!((s, b.as_str()), (404, ""));
}

#[tokio::test]
async fn pretty_pagination_and_gzip() {
    use std::io::Read;
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "web"));
    for p in 0..3 {
        place_simple(&sim, "default", "a", 9000 + p);
    }
    let (_, _, pretty) = get(&sim, "/v1/service/web?pretty", &[]).await;
    assert!(
        pretty.starts_with("[\n    {\n        \"Address\": \"127.0.0.1\",\n"),
        "{pretty}"
    );
    assert!(pretty.ends_with("}\n]\n"), "{pretty}");
    let (_, headers, page) = get(&sim, "/v1/service/web?per_page=2", &[]).await;
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);
    let next = headers["x-nomad-nexttoken"].to_str().unwrap().to_string();
    let (_, rest) = get_json(
        &sim,
        &format!("/v1/service/web?per_page=2&next_token={next}"),
    )
    .await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(format!("default.{}", rest[0]["ID"].as_str().unwrap()), next);

    let mut raw = RawStream::open(
        sim.addr(),
        "/v1/service/web",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(raw.header("content-encoding"), Some("gzip"));
    assert_eq!(raw.header("vary"), Some("Accept-Encoding"));
    let body = raw.rest(SOON).await;
    assert!(
        raw.ended && !raw.eof,
        "Content-Length body, connection kept alive"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
