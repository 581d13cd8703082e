//! Each built-in mapping on real HAProxy 2.6: the rendered backend marks a
//! real healthy server UP and a real unhealthy one DOWN, as HAProxy itself
//! reports it (`show stat` status and check status).

use haproxy_nomad_connector::mapping::{self, Engine, Mapped};
use haproxy_nomad_connector::vocab::check::RenderContext;
use hnc_core::model::NomadCheck;
use hnc_tests::backends::{HttpBackend, TcpBackend};
use hnc_tests::grpc::GrpcHealthServer;
use hnc_tests::haproxy::{Haproxy, StatRow, free_port, wait_until};
use hnc_tests::mapping::service;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A check every 300 ms with a 1 s timeout.
fn check(check_type: &str) -> NomadCheck {
    NomadCheck {
        name: "probe".into(),
        check_type: check_type.into(),
        path: "/health".into(),
        interval_ms: 300,
        timeout_ms: 1_000,
        ..NomadCheck::default()
    }
}

/// The backend section for `servers` (name → port) with the mapped check.
fn backend(name: &str, mapped: &Mapped, servers: &[(&str, u16)]) -> String {
    let mut section = format!("\nbackend {name}\n");
    for line in mapped.rendered.backend_lines() {
        let _ = writeln!(section, "    {line}");
    }
    for (server, port) in servers {
        let _ = writeln!(
            section,
            "    server {server} 127.0.0.1:{port} {}",
            mapped.rendered.server_args()
        );
    }
    section
}

/// Waits until every server of `backend` shows the expected (status, check status).
async fn wait_for(
    haproxy: &Haproxy,
    backend: &str,
    expected: &[(&str, &str, &str)],
) -> Vec<StatRow> {
    let want: BTreeMap<String, (String, String)> = expected
        .iter()
        .map(|(s, status, check)| (s.to_string(), (status.to_string(), check.to_string())))
        .collect();
    wait_until(&format!("{backend}: {want:?}"), WAIT, || async {
        let rows: Vec<StatRow> = haproxy
            .stat()
            .await
            .into_iter()
            .filter(|r| r["pxname"] == backend)
            .collect();
        let seen: BTreeMap<String, (String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["svname"].clone(),
                    (
                        r["status"].clone(),
                        r["check_status"].trim_start_matches("* ").to_string(),
                    ),
                )
            })
            .collect();
        (seen == want).then_some(rows)
    })
    .await
}

fn engine_with_maps(hosts: &std::path::Path, uris: &std::path::Path) -> Engine {
    Engine::new(
        &mapping::Config::default(),
        RenderContext {
            host_map: Some(hosts.to_path_buf()),
            uri_map: Some(uris.to_path_buf()),
            ..RenderContext::default()
        },
    )
    .expect("built-ins")
}

#[tokio::test]
async fn http_check_passes_200_and_fails_404_and_500() {
    let ok = HttpBackend::start().await;
    let missing = HttpBackend::start().await;
    missing.set_health_status(404);
    let broken = HttpBackend::start().await;
    broken.set_health_status(500);
    let redirect = HttpBackend::start().await;
    redirect.set_health_status(302);
    let next_version = HttpBackend::start().await;

    // Two job versions with different check paths share one backend: each
    // server's URI and Nomad's default Host (address:port) come from maps
    // keyed by server name.
    let dir = tempfile::tempdir().unwrap();
    let (hosts, uris) = (dir.path().join("hosts.map"), dir.path().join("uris.map"));
    let engine = engine_with_maps(&hosts, &uris);
    let v1 = engine.map(&service("web", &[]), Some(&check("http")));
    let mut v2_check = check("http");
    v2_check.path = "/health/v2?deep=1".into();
    let v2 = engine.map(&service("web", &[]), Some(&v2_check));
    assert_eq!(v1.plugin.as_deref(), Some("builtin-http@0.1.0"));
    assert_eq!(
        v1.rendered.backend, v2.rendered.backend,
        "one backend check serves both versions"
    );

    let servers = [
        ("ok", ok.port),
        ("missing", missing.port),
        ("broken", broken.port),
        ("redirect", redirect.port),
        ("next", next_version.port),
    ];
    let uri_of = |server: &str| {
        if server == "next" { &v2 } else { &v1 }
            .rendered
            .uri_entry
            .clone()
            .unwrap()
    };
    let host_entries: String = servers
        .iter()
        .map(|(s, p)| format!("{s} 127.0.0.1:{p}\n"))
        .collect();
    let uri_entries: String = servers
        .iter()
        .map(|(s, _)| format!("{s} {}\n", uri_of(s)))
        .collect();
    std::fs::write(&hosts, host_entries).unwrap();
    std::fs::write(&uris, uri_entries).unwrap();
    let haproxy = Haproxy::start(&backend("be_http", &v1, &servers)).await;

    wait_for(
        &haproxy,
        "be_http",
        &[
            ("ok", "UP", "L7OK"),
            ("missing", "DOWN", "L7STS"),
            ("broken", "DOWN", "L7STS"),
            ("redirect", "UP", "L7OK"),
            ("next", "UP", "L7OK"),
        ],
    )
    .await;
    let (path, host) = ok.last_check().expect("checked");
    assert_eq!(path, "/health");
    assert_eq!(
        host,
        Some(format!("127.0.0.1:{}", ok.port)),
        "Nomad's default Host header"
    );
    let (path, _) = next_version.last_check().expect("checked");
    assert_eq!(
        path, "/health/v2?deep=1",
        "the next version's server keeps its own path"
    );
}

#[tokio::test]
async fn tcp_check_passes_open_and_fails_closed() {
    let open = TcpBackend::start().await;
    let closed = free_port();
    let mapped = hnc_tests::mapping::builtin_engine().map(&service("db", &[]), Some(&check("tcp")));
    assert_eq!(mapped.plugin.as_deref(), Some("builtin-tcp@0.1.0"));
    let haproxy = Haproxy::start(&backend(
        "be_tcp",
        &mapped,
        &[("open", open.port), ("closed", closed)],
    ))
    .await;
    wait_for(
        &haproxy,
        "be_tcp",
        &[("open", "UP", "L4OK"), ("closed", "DOWN", "L4CON")],
    )
    .await;
}

#[tokio::test]
async fn script_check_falls_back_to_tcp_on_real_haproxy() {
    let open = TcpBackend::start().await;
    let closed = free_port();
    let mut script = check("script");
    script.command = "/bin/check".into();
    let mapped = hnc_tests::mapping::builtin_engine().map(&service("batch", &[]), Some(&script));
    assert_eq!(mapped.plugin.as_deref(), Some("builtin-script@0.1.0"));
    assert!(
        mapped
            .notes
            .iter()
            .any(|n| n.contains("cannot run in HAProxy"))
    );
    let haproxy = Haproxy::start(&backend(
        "be_script",
        &mapped,
        &[("open", open.port), ("closed", closed)],
    ))
    .await;
    wait_for(
        &haproxy,
        "be_script",
        &[("open", "UP", "L4OK"), ("closed", "DOWN", "L4CON")],
    )
    .await;
}

/// gRPC servers: SERVING, NOT_SERVING, and one that does not know the service.
async fn grpc_servers(
    service_name: &str,
) -> (GrpcHealthServer, GrpcHealthServer, GrpcHealthServer) {
    let serving = GrpcHealthServer::start().await.unwrap();
    serving.set(service_name, true).await;
    let not_serving = GrpcHealthServer::start().await.unwrap();
    not_serving.set(service_name, false).await;
    let unknown = GrpcHealthServer::start().await.unwrap();
    (serving, not_serving, unknown)
}

#[tokio::test]
async fn grpc_check_passes_serving_and_fails_not_serving() {
    let (serving, not_serving, unknown) = grpc_servers("greeter.Greeter").await;
    // A Nomad-native gRPC service: a tcp check in Nomad, the gRPC probe from tags.
    let tags = [
        "haproxy.check.type=grpc",
        "haproxy.check.grpc_service=greeter.Greeter",
    ];
    let mapped =
        hnc_tests::mapping::builtin_engine().map(&service("greeter", &tags), Some(&check("tcp")));
    assert_eq!(mapped.plugin.as_deref(), Some("builtin-grpc@0.1.0"));
    let servers = [
        ("serving", serving.addr.port()),
        ("not_serving", not_serving.addr.port()),
        ("unknown", unknown.addr.port()),
    ];
    let haproxy = Haproxy::start(&backend("be_grpc", &mapped, &servers)).await;
    let rows = wait_for(
        &haproxy,
        "be_grpc",
        &[
            ("serving", "UP", "L7OK"),
            ("not_serving", "DOWN", "L7STS"),
            ("unknown", "DOWN", "L7STS"),
        ],
    )
    .await;
    assert!(rows.iter().all(|r| r["pxname"] == "be_grpc"));
    // The unknown service fails on the server's error status, not by
    // timeout, and HAProxy says why.
    let unknown_row = rows.iter().find(|r| r["svname"] == "unknown").unwrap();
    assert!(
        unknown_row["last_chk"].contains("gRPC error status: unknown service"),
        "{unknown_row:?}"
    );

    // NOT_SERVING → SERVING flips the server UP.
    not_serving.set("greeter.Greeter", true).await;
    wait_for(
        &haproxy,
        "be_grpc",
        &[
            ("serving", "UP", "L7OK"),
            ("not_serving", "UP", "L7OK"),
            ("unknown", "DOWN", "L7STS"),
        ],
    )
    .await;
}

#[tokio::test]
async fn grpc_overall_health_without_a_service_name() {
    let serving = GrpcHealthServer::start().await.unwrap();
    let not_serving = GrpcHealthServer::start().await.unwrap();
    not_serving.set("", false).await;
    let mapped =
        hnc_tests::mapping::builtin_engine().map(&service("rpc", &[]), Some(&check("grpc")));
    let servers = [
        ("serving", serving.addr.port()),
        ("not_serving", not_serving.addr.port()),
    ];
    let haproxy = Haproxy::start(&backend("be_grpc_all", &mapped, &servers)).await;
    wait_for(
        &haproxy,
        "be_grpc_all",
        &[("serving", "UP", "L7OK"), ("not_serving", "DOWN", "L7STS")],
    )
    .await;
}

#[tokio::test]
async fn site_plugin_grpc_mapping_works_on_real_haproxy() {
    let (serving, not_serving, _unknown) = grpc_servers("greeter.Greeter").await;
    let config = crate::site_plugin::site_config();
    let engine = Engine::new(&config.mapping, config.render_context()).unwrap();
    let mut grpc = check("grpc");
    grpc.grpc_service = "greeter.Greeter".into();
    let mapped = engine.map(&service("greeter", &[]), Some(&grpc));
    assert_eq!(mapped.plugin.as_deref(), Some("site-grpc@0.1.0"));
    let servers = [
        ("serving", serving.addr.port()),
        ("not_serving", not_serving.addr.port()),
    ];
    let haproxy = Haproxy::start(&backend("be_site", &mapped, &servers)).await;
    // The site maps fall 3: NOT_SERVING takes three failed checks to go DOWN.
    wait_for(
        &haproxy,
        "be_site",
        &[("serving", "UP", "L7OK"), ("not_serving", "DOWN", "L7STS")],
    )
    .await;
}
