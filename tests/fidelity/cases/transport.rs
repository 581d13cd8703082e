//! Cases on where and how the check connects: tcp checks, a check port other
//! than the service's, and gRPC probes declared by tags.

use super::Common;
use crate::fidelity::backends::Backends;
use crate::fidelity::case::{Case, http_with, tcp};
use hnc_tests::behaviour::{Route, Site};
use serde_json::json;

/// tcp open and closed, and a check port label other than the service's.
pub(super) async fn tcp_and_ports(b: &mut Backends, c: &Common) -> Vec<Case> {
    let admin = || json!({"PortLabel": "admin"});
    let own = |port: u16| {
        Site::with(vec![
            Route::new("/health", 200).host(&format!("127.0.0.1:{port}")),
        ])
    };
    vec![
        Case::new("tcp-open", tcp(json!({})), "accepts connections", c.open),
        Case::new(
            "tcp-closed",
            tcp(json!({})),
            "nothing listens (connection refused)",
            c.closed,
        ),
        Case::new(
            "tcp-on-http-500",
            tcp(json!({})),
            "an HTTP server answering 500",
            c.broken,
        ),
        Case::new(
            "check-port-passes",
            http_with("/health", admin()),
            "service port answers 500; check port answers 200",
            c.broken,
        )
        .port("admin", c.ok),
        Case::new(
            "check-port-fails",
            http_with("/health", admin()),
            "service port answers 200; check port answers 500",
            c.ok,
        )
        .port("admin", c.broken),
        Case::new(
            "check-port-tcp-closed",
            tcp(admin()),
            "service port open; check port refuses",
            c.open,
        )
        .port("admin", c.closed),
        Case::new(
            "check-port-default-host",
            http_with("/health", admin()),
            "check port serves only Host 127.0.0.1:<check port>",
            c.ok,
        )
        .port("admin", b.http_self(own).await),
    ]
}

/// Nomad-native services declare a `tcp` check; tags declare the gRPC probe.
pub(super) async fn grpc(b: &mut Backends, c: &Common) -> Vec<Case> {
    let health = b
        .grpc_health(&[("app.Greeter", true), ("app.Down", false)])
        .await;
    let down = b.grpc_health(&[("", false)]).await;
    let bare = b.grpc_bare().await;
    [
        (
            "grpc-overall-serving",
            "",
            "health: overall SERVING",
            health,
        ),
        (
            "grpc-service-serving",
            "app.Greeter",
            "health: app.Greeter SERVING",
            health,
        ),
        (
            "grpc-service-not-serving",
            "app.Down",
            "health: app.Down NOT_SERVING",
            health,
        ),
        (
            "grpc-unknown-service",
            "app.Nope",
            "health: app.Nope unknown (NOT_FOUND)",
            health,
        ),
        (
            "grpc-overall-not-serving",
            "",
            "health: overall NOT_SERVING",
            down,
        ),
        (
            "grpc-health-unimplemented",
            "",
            "a gRPC server without the health service",
            bare,
        ),
        (
            "grpc-connection-refused",
            "",
            "nothing listens (connection refused)",
            c.closed,
        ),
    ]
    .into_iter()
    .map(|(name, service, behaviour, port)| {
        let case = Case::new(name, tcp(json!({})), behaviour, port).tag("haproxy.check.type=grpc");
        if service.is_empty() {
            case
        } else {
            case.tag(format!("haproxy.check.grpc_service={service}"))
        }
    })
    .collect()
}
