//! Control surface: request counts, injected failures and delays, the `/sim`
//! HTTP API and the binary.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::*;

#[test]
fn sim_handle_is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<nomad_sim::Sim>();
}

#[tokio::test]
async fn counts_failures_and_delays() {
    let sim = start().await;
    sim.register_job(simple_job("default", "a", "web"));
    let alloc = place_simple(&sim, "default", "a", 9000);
    get(&sim, "/v1/job/a", &[]).await;
    get(&sim, "/v1/job/a/versions", &[]).await;
    get(&sim, &format!("/v1/allocation/{alloc}"), &[]).await;
    assert_eq!(sim.request_count("/v1/job/"), 2);
    assert_eq!(sim.request_count("/v1/allocation/"), 1);
    assert_eq!(sim.request_count("/v1/services"), 0);

    sim.fail_requests("/v1/job/", 503, "No cluster leader", Some(2));
    for _ in 0..2 {
        let (s, h, b) = get(&sim, "/v1/job/a", &[]).await;
        assert_eq!((s, b.as_str()), (503, "No cluster leader"));
        assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    }
    assert_eq!(get(&sim, "/v1/job/a", &[]).await.0, 200);
    assert_eq!(
        sim.request_count("/v1/job/"),
        5,
        "failed requests count too"
    );

    sim.fail_requests("/v1/service", 500, "rpc error: boom", None);
    for _ in 0..3 {
        assert_eq!(get(&sim, "/v1/services", &[]).await.0, 500);
    }
    sim.set_delay("/v1/allocation/", Duration::from_millis(600));
    let t = Instant::now();
    get(&sim, &format!("/v1/allocation/{alloc}"), &[]).await;
    assert!(t.elapsed() >= Duration::from_millis(600));
    sim.clear_faults();
    assert_eq!(get(&sim, "/v1/services", &[]).await.0, 200);
    let t = Instant::now();
    get(&sim, &format!("/v1/allocation/{alloc}"), &[]).await;
    assert!(t.elapsed() < Duration::from_millis(600));
}

async fn post(sim: &nomad_sim::Sim, path: &str, body: Option<Value>) -> Value {
    let mut req = client().post(format!("{}{path}", sim.url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn http_control_api_mirrors_the_library() {
    let sim = start().await;
    post(&sim, "/sim/jobs", Some(simple_job("default", "a", "web"))).await;
    let placed = post(
        &sim,
        "/sim/allocs",
        Some(json!({"job_id": "a", "group": "g", "ports": [["http", 8080]]})),
    )
    .await;
    let id = placed["id"].as_str().unwrap().to_string();
    assert_eq!(get_json(&sim, "/v1/service/web").await.1[0]["Port"], 8080);
    get_json(&sim, "/v1/services").await;
    let counts = {
        let (_, _, b) = get(&sim, "/sim/counts", &[]).await;
        serde_json::from_str::<Value>(&b).unwrap()
    };
    assert_eq!(counts["/v1/services"], 1);
    assert_eq!(counts["/v1/service/web"], 1);
    let stopped = post(
        &sim,
        &format!("/sim/allocs/{id}/stop?how=plan_terminal"),
        None,
    )
    .await;
    assert_eq!(stopped["stopped"], true);
    assert_eq!(sim.services_snapshot(), Vec::<Value>::new());
    let bad = client()
        .post(format!("{}/sim/allocs/{id}/stop?how=sideways", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    post(&sim, "/sim/restart?kind=wipe", None).await;
    assert_eq!(sim.last_index(), 0);
    assert_eq!(
        sim.request_count("/sim"),
        0,
        "control calls are not counted"
    );
}

#[tokio::test]
async fn binary_serves_a_scenario() {
    let dir = std::env::temp_dir().join(format!("nomad-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    let body = json!({
        "jobs": [simple_job("default", "demo", "demo-web")],
        "allocs": [{"job_id": "demo", "group": "g", "ports": [["http", 18080]]}]
    });
    std::fs::write(&scenario, body.to_string()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nomad-sim"))
        .args(["--listen", "127.0.0.1:0", "--heartbeat", "1s", "--scenario"])
        .arg(&scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(SOON, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let regs: Value = reqwest::get(format!("{url}/v1/service/demo-web"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(regs[0]["Port"], 18080);
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
