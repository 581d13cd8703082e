//! The Task API: the same endpoints on a Unix socket, always authenticated,
//! and workload identities whose rights come from policies attached to the job.

use nomad_sim::{Acl, AclToken, Capabilities, JobPolicy, Sim, SimConfig};

use crate::common::*;

/// GET through the Task API socket with an optional `X-Nomad-Token`.
async fn get_unix(sim: &Sim, path: &str, token: Option<&str>) -> (u16, String) {
    let socket = sim
        .task_api_url()
        .and_then(|u| u.strip_prefix("unix://").map(String::from))
        .expect("a task API socket");
    let http = reqwest::Client::builder()
        .unix_socket(std::path::PathBuf::from(socket))
        .build()
        .expect("client");
    let mut req = http.get(format!("http://localhost{path}"));
    if let Some(t) = token {
        req = req.header("X-Nomad-Token", t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

fn task_api_cfg(dir: &tempfile::TempDir, acl: Option<Acl>) -> SimConfig {
    SimConfig {
        task_api_socket: Some(dir.path().join("api.sock")),
        acl,
        ..cfg()
    }
}

/// A sim with the `simple_job` "web" placed, plus an allocation of a job
/// "connector" whose task `t` asks for its identity; its token.
async fn with_connector(acl: Option<Acl>) -> (tempfile::TempDir, Sim, String) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(task_api_cfg(&dir, acl)).await.unwrap();
    sim.register_job(simple_job("default", "web", "web"));
    place_simple(&sim, "default", "web", 8080);
    sim.register_job(simple_job("default", "connector", "connector-admin"));
    let alloc = place_simple(&sim, "default", "connector", 9000);
    let token = sim.workload_identity(&alloc, "t").expect("task t exists");
    (dir, sim, token)
}

#[tokio::test]
async fn the_task_api_wants_a_credential_even_with_acls_disabled() {
    let (_dir, sim, token) = with_connector(None).await;
    assert_eq!(get_unix(&sim, "/v1/service/web", None).await.0, 401);
    let (status, body) = get_unix(&sim, "/v1/service/web", Some("forged.jwt.x")).await;
    assert_eq!((status, body.as_str()), (403, "Permission denied"));
    let (status, body) = get_unix(&sim, "/v1/service/web", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ServiceName\":\"web\""), "{body}");
    // The agent's HTTP address still needs nothing when ACLs are disabled.
    assert_eq!(get(&sim, "/v1/service/web", &[]).await.0, 200);
}

#[tokio::test]
async fn a_workload_identity_gets_the_policies_attached_to_its_job() {
    let acl = Acl {
        tokens: vec![AclToken::management("root")],
        job_policies: vec![JobPolicy::for_job(
            "default",
            "connector",
            Capabilities::read(&["*"]),
        )],
        ..Acl::default()
    };
    let (_dir, sim, token) = with_connector(Some(acl)).await;
    assert_eq!(get_unix(&sim, "/v1/job/web", Some(&token)).await.0, 200);
    assert_eq!(
        get(&sim, "/v1/job/web", &[("X-Nomad-Token", &token)])
            .await
            .0,
        200
    );
    assert_eq!(get_unix(&sim, "/v1/job/web", Some("root")).await.0, 200);
    // The anonymous policy never applies on the Task API.
    assert_eq!(get_unix(&sim, "/v1/job/web", None).await.0, 401);

    // The same job's identity without an attached policy reads nothing.
    let bare = Acl {
        job_policies: vec![JobPolicy::for_job(
            "default",
            "other-job",
            Capabilities::read(&["*"]),
        )],
        ..Acl::default()
    };
    let (_dir, sim, token) = with_connector(Some(bare)).await;
    let (status, body) = get_unix(&sim, "/v1/job/web", Some(&token)).await;
    assert_eq!((status, body.as_str()), (403, "Permission denied"));
}
