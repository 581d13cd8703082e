//! Deployments end to end: canaries get the share of traffic their tags ask
//! for, return to a normal share on promotion, and drain (HAProxy's drain
//! state) when their deployment fails; all of it without a reload of
//! HAProxy. Shares are
//! measured with real requests through HAProxy to backends that count what
//! they get.

use hnc_tests::backends::HttpBackend;
use hnc_tests::haproxy::{Haproxy, StatRow, all_up, wait_until};
use hnc_tests::load;
use hnc_tests::world::{World, http_check};
use nomad_sim::{DeploymentEnd, PlaceAlloc, StopKind};
use serde_json::{Value, json};
use std::time::Duration;

const ON: &str = "haproxy.enable=true";
const BACKEND: &str = "default_web";
const WAIT: Duration = Duration::from_secs(30);
/// Requests per share measurement.
const REQUESTS: u64 = 2_000;

/// Job `web` (group `g`, service `web` on label `http`) whose canaries
/// register `canary_tags`; `meta` makes a new version.
fn canary_job(canary_tags: &[&str], meta: &str) -> Value {
    json!({
        "ID": "web", "Namespace": "default", "Type": "service", "Meta": {"v": meta},
        "TaskGroups": [{"Name": "g", "Count": 3,
            "Update": {"Canary": 1, "MaxParallel": 1},
            "Services": [{"Name": "web", "PortLabel": "http", "Provider": "nomad",
                          "Tags": [ON], "CanaryTags": canary_tags,
                          "Checks": [http_check("/health")]}],
            "Tasks": [{"Name": "t"}]}]
    })
}

/// The `show stat` row of the server on `port`.
async fn row(haproxy: &Haproxy, port: u16) -> Option<StatRow> {
    haproxy
        .stat()
        .await
        .into_iter()
        .find(|r| r["pxname"] == BACKEND && r["addr"].ends_with(&format!(":{port}")))
}

/// Waits until each backend port has the given HAProxy weight.
async fn weights_become(haproxy: &Haproxy, want: &[(u16, &str)], what: &str) {
    wait_until(what, WAIT, || async {
        for (port, weight) in want {
            if row(haproxy, *port).await?["weight"] != *weight {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// Sends [`REQUESTS`] through HAProxy; the percentage that reached `canary`
/// (each backend counts the ordinary requests it gets).
async fn canary_share(haproxy: &Haproxy, all: &[&HttpBackend], canary: &HttpBackend) -> f64 {
    let before: Vec<u64> = all.iter().map(|b| b.requests()).collect();
    let canary_before = canary.requests();
    for _ in 0..REQUESTS {
        let code = load::get(haproxy.port, BACKEND).await.expect("a response");
        assert_eq!(code, 200);
    }
    let served: u64 = all.iter().zip(&before).map(|(b, n)| b.requests() - n).sum();
    assert_eq!(
        served, REQUESTS,
        "every request reached one of the backends"
    );
    100.0 * (canary.requests() - canary_before) as f64 / REQUESTS as f64
}

fn place(w: &World, port: u16, canary: bool) -> String {
    w.sim.place_alloc(PlaceAlloc {
        canary,
        ..PlaceAlloc::new("web", "g").port("http", port)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_share_before_and_after_promotion_without_reload() {
    let mut w = World::start().await;
    let normal = [
        HttpBackend::start().await,
        HttpBackend::start().await,
        HttpBackend::start().await,
    ];
    let canary = HttpBackend::start().await;
    let tags = [ON, "haproxy.canary.share=10"];
    w.sim.register_job(canary_job(&tags, "1"));
    for b in &normal {
        place(&w, b.port, false);
    }
    w.start_daemon();
    all_up(&w.haproxy, BACKEND, 3).await;
    let (reloads, failed) = w.haproxy.reloads().await;
    assert_eq!(failed, 0);

    // A new version's canary, asking for 10 % of the traffic. Three normal
    // servers of weight 1 cannot leave a whole weight 10 %: they get 3
    // each and the canary 1 (naively it would get 1/4 = 25 %).
    w.sim.register_job(canary_job(&tags, "2"));
    let alloc = place(&w, canary.port, true);
    all_up(&w.haproxy, BACKEND, 4).await;
    let mut want: Vec<(u16, &str)> = normal.iter().map(|b| (b.port, "3")).collect();
    want.push((canary.port, "1"));
    weights_become(&w.haproxy, &want, "the canary at weight 1, the others at 3").await;
    let all: Vec<&HttpBackend> = normal.iter().chain([&canary]).collect();
    let share = canary_share(&w.haproxy, &all, &canary).await;
    println!("canary share before promotion: {share:.1}% (asked 10%)");
    assert!((share - 10.0).abs() <= 5.0, "canary share {share}%");

    // Promotion: every server back to weight 1, the canary at 1/(3+1).
    assert!(w.sim.promote(&alloc));
    let want: Vec<(u16, &str)> = all.iter().map(|b| (b.port, "1")).collect();
    weights_become(
        &w.haproxy,
        &want,
        "every server at weight 1 after promotion",
    )
    .await;
    let share = canary_share(&w.haproxy, &all, &canary).await;
    println!("canary share after promotion: {share:.1}% (normal: 25%)");
    assert!((share - 25.0).abs() <= 5.0, "promoted share {share}%");

    assert_eq!(
        w.haproxy.reloads().await,
        (reloads, 0),
        "no reload across the whole deployment"
    );
    w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_drains_its_canaries_without_reload() {
    let mut w = World::start().await;
    let normal = [HttpBackend::start().await, HttpBackend::start().await];
    let canary = HttpBackend::start().await;
    let tags = [ON, "haproxy.canary.share=20"];
    w.sim.register_job(canary_job(&tags, "1"));
    for b in &normal {
        place(&w, b.port, false);
    }
    w.start_daemon();
    all_up(&w.haproxy, BACKEND, 2).await;
    let (reloads, failed) = w.haproxy.reloads().await;
    assert_eq!(failed, 0);

    w.sim.register_job(canary_job(&tags, "2"));
    let alloc = place(&w, canary.port, true);
    all_up(&w.haproxy, BACKEND, 3).await;
    // 20 % next to two servers of weight 1: 2, 2 and 1 (1/5).
    let mut want: Vec<(u16, &str)> = normal.iter().map(|b| (b.port, "2")).collect();
    want.push((canary.port, "1"));
    weights_become(&w.haproxy, &want, "the canary at 1/5 of the weight").await;
    let all: Vec<&HttpBackend> = normal.iter().chain([&canary]).collect();
    let share = canary_share(&w.haproxy, &all, &canary).await;
    assert!((share - 20.0).abs() <= 5.0, "canary share {share}%");

    // The deployment fails: the canary keeps running (and registered with
    // its canary tags) until Nomad stops it, but gets no more requests.
    assert!(w.sim.end_deployment(&alloc, DeploymentEnd::Failed));
    let mut want: Vec<(u16, &str)> = normal.iter().map(|b| (b.port, "1")).collect();
    want.push((canary.port, "0"));
    weights_become(&w.haproxy, &want, "the failed canary at weight 0").await;
    // HAProxy itself holds it in drain (admin state, `set server … state
    // drain`), still checked and passing, at weight 0.
    let drained = wait_until("HAProxy reports the canary in drain", WAIT, || async {
        row(&w.haproxy, canary.port)
            .await
            .filter(|r| r["status"] == "DRAIN")
    })
    .await;
    assert_eq!(
        (
            drained["weight"].as_str(),
            drained["check_status"].trim_start_matches("* ")
        ),
        ("0", "L7OK")
    );
    let state = w.haproxy.servers_state(BACKEND).await;
    let admin = state
        .iter()
        .find(|r| r["srv_port"] == canary.port.to_string())
        .map(|r| r["srv_admin_state"].parse::<u32>().expect("a number"))
        .expect("the canary in show servers state");
    assert_ne!(
        admin & 0x08,
        0,
        "SRV_ADMF_FDRAIN in srv_admin_state {admin}"
    );
    let share = canary_share(&w.haproxy, &all, &canary).await;
    assert_eq!(share, 0.0, "a drained canary gets no requests");

    // Nomad stops it: it leaves HAProxy.
    w.sim.stop_alloc(&alloc, StopKind::PlanTerminal);
    wait_until("the failed canary removed", WAIT, || async {
        row(&w.haproxy, canary.port).await.is_none().then_some(())
    })
    .await;
    assert_eq!(
        w.haproxy.reloads().await,
        (reloads, 0),
        "no reload across the failed deployment"
    );
    w.stop_daemon().await;
}
