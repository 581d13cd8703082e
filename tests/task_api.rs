//! The connector run as a Nomad job is meant to run: through the Task API
//! socket, authenticated by its workload identity, with its rights from the
//! policy attached to its job (examples/packaging/connector.nomad.hcl).

use hnc_tests::backends::HttpBackend;
use hnc_tests::haproxy::{Layout, wait_until};
use hnc_tests::world::{World, http_check, job, readyz};
use nomad_sim::{Acl, AclToken, Capabilities, JobPolicy, SimConfig};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const CONNECTOR_JOB: &str = "haproxy-nomad-connector";

/// A world whose Nomad has ACLs on, a Task API socket, and the connector's
/// policy (`connector-acl.policy.hcl`: read-job everywhere) attached to the
/// connector's job; the connector's own allocation and its identity.
async fn task_api_world(dir: &tempfile::TempDir, policy_job: &str) -> (World, String) {
    let world = World::start_with(
        SimConfig {
            task_api_socket: Some(dir.path().join("api.sock")),
            acl: Some(Acl {
                tokens: vec![AclToken::management("root")],
                job_policies: vec![JobPolicy::for_job(
                    "default",
                    policy_job,
                    Capabilities::read(&["*"]),
                )],
                ..Acl::default()
            }),
            ..SimConfig::default()
        },
        Layout::default(),
    )
    .await;
    world
        .sim
        .register_job(job(CONNECTOR_JOB, "connector-admin", &[], None));
    let alloc = world.place(CONNECTOR_JOB, "g", &[("http", 9180)]);
    let identity = world
        .sim
        .workload_identity(&alloc, "t")
        .expect("the connector's task has an identity");
    (world, identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_syncs_through_the_task_api_with_its_workload_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, identity) = task_api_world(&dir, CONNECTOR_JOB).await;
    let web = HttpBackend::start().await;
    w.sim.register_job(job(
        "web",
        "web",
        &["haproxy.enable=true"],
        Some(http_check("/health")),
    ));
    w.place("web", "g", &[("http", web.port)]);

    // What the job's env and identity blocks give the task: NOMAD_ADDR on
    // the socket, NOMAD_TOKEN the identity. The agent's TCP address is
    // never given, so every read goes through the socket.
    let mut config = w.config();
    config.nomad.address = w.sim.task_api_url();
    config.nomad.token = Some(identity);
    w.start_daemon_with(config);

    let row = wait_until(
        "web UP in HAProxy with its job-spec check",
        WAIT,
        || async {
            let row = w
                .haproxy
                .stat()
                .await
                .into_iter()
                .find(|r| r["pxname"] == "default_web")?;
            (row["status"] == "UP").then_some(row)
        },
    )
    .await;
    assert!(row["addr"].ends_with(&format!(":{}", web.port)), "{row:?}");
    assert!(row["check_status"].ends_with("L7OK"), "{row:?}");
    assert_eq!(web.last_check().unwrap().0, "/health");
    assert!(w.sim.request_count("/v1/job/") > 0, "job specs were read");
    w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_policy_on_its_job_the_identity_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, identity) = task_api_world(&dir, "some-other-job").await;
    w.sim
        .register_job(job("web", "web", &["haproxy.enable=true"], None));
    w.place("web", "g", &[("http", 8080)]);
    let (mut config, admin) = w.config_with_admin();
    config.nomad.address = w.sim.task_api_url();
    config.nomad.token = Some(identity);
    // One namespace: its list answers 403 (a `*` event stream refused by
    // Nomad 1.11.2+ just ends, and a `*` list leaves out what it may not read).
    config.nomad.namespaces = Some(vec!["default".into()]);
    w.start_daemon_with(config);

    let text = wait_until("/readyz naming the refusal", WAIT, || async {
        let (ready, text) = readyz(admin).await;
        (!ready && text.contains("Permission denied")).then_some(text)
    })
    .await;
    assert!(text.contains("not ready"), "{text}");
    assert!(
        w.haproxy
            .backends()
            .await
            .iter()
            .all(|b| b != "default_web")
    );
    w.stop_daemon().await;
}
