//! Several checks of one service: one sequence, or a TCP check of every port.

use super::*;
use crate::vocab::syntax::Token;
use std::path::PathBuf;

fn engine(uri_map: bool) -> Engine {
    let render = RenderContext {
        uri_map: uri_map.then(|| PathBuf::from("/run/hnc/uris.map")),
        host_map: Some(PathBuf::from("/run/hnc/hosts.map")),
        ..RenderContext::default()
    };
    Engine::new(&Config::default(), render).expect("built-ins")
}

fn service() -> ServiceContext {
    ServiceContext {
        name: "web".into(),
        namespace: "default".into(),
        address: "10.0.0.5".into(),
        port: 8080,
        ..ServiceContext::default()
    }
}

fn check(kind: &str, path: &str, port: Option<u16>, interval_ms: u64) -> NomadCheck {
    NomadCheck {
        name: format!("{kind}{path}"),
        check_type: kind.into(),
        path: path.into(),
        check_port: port,
        interval_ms,
        timeout_ms: 2_000,
        ..NomadCheck::default()
    }
}

#[test]
fn every_check_is_a_step_with_its_own_uri_port_and_host() {
    let checks = [
        check("http", "/health", None, 10_000),
        check("http", "/ready", Some(9000), 5_000),
        check("tcp", "", Some(9001), 10_000),
    ];
    let mapped = engine(true).map_all(&service(), &checks);
    assert!(mapped.fallback.is_none(), "{:?}", mapped.fallback);
    let lines = mapped.rendered.backend_lines();
    let connects: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("http-check connect"))
        .collect();
    assert_eq!(connects.len(), 3, "{lines:#?}");
    assert!(connects[1].contains("field(5,#)"), "{lines:#?}");
    assert!(connects[2].contains("field(8,#)"), "{lines:#?}");
    let sends = lines
        .iter()
        .filter(|l| l.starts_with("http-check send"))
        .count();
    assert_eq!(sends, 2, "{lines:#?}");
    assert_eq!(
        mapped.rendered.uri_entry.as_ref().map(Token::as_str),
        Some("/health#8080#10.0.0.5:8080#/ready#9000#10.0.0.5:9000##9001#10.0.0.5:9001")
    );
    assert!(!mapped.rendered.needs_host_entry);
    let args = mapped.rendered.server_args();
    assert!(
        args.contains("inter 5000ms"),
        "the shortest interval: {args}"
    );
    assert!(
        mapped.notes.iter().any(|n| n.contains("intervals differ")),
        "{:?}",
        mapped.notes
    );
}

#[test]
fn tcp_checks_on_two_ports_are_a_tcp_check_sequence() {
    let checks = [
        check("tcp", "", None, 10_000),
        check("tcp", "", Some(9001), 10_000),
    ];
    let mapped = engine(true).map_all(&service(), &checks);
    let lines = mapped.rendered.backend_lines();
    assert_eq!(lines[0], "option tcp-check");
    assert_eq!(lines[1], "tcp-check connect");
    assert!(
        lines[2].starts_with("tcp-check connect port "),
        "{lines:#?}"
    );
}

#[test]
fn an_unmappable_check_turns_the_service_into_a_tcp_check_of_every_port() {
    let checks = [
        check("http", "/health", None, 10_000),
        check("nonsense", "", Some(9001), 10_000),
    ];
    let mapped = engine(true).map_all(&service(), &checks);
    let fallback = mapped.fallback.as_ref().expect("a fallback");
    assert!(fallback.reason.contains("nonsense"), "{}", fallback.reason);
    let lines = mapped.rendered.backend_lines();
    assert_eq!(lines[0], "option tcp-check", "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("http")),
        "no HTTP probe: {lines:#?}"
    );
    assert_eq!(
        mapped.rendered.uri_entry.as_ref().map(Token::as_str),
        Some("#8080#10.0.0.5:8080##9001#10.0.0.5:9001")
    );
}

#[test]
fn without_a_uri_map_only_the_first_check_is_mapped_and_said_so() {
    let checks = [
        check("http", "/health", None, 10_000),
        check("http", "/ready", None, 10_000),
    ];
    let mapped = engine(false).map_all(&service(), &checks);
    let lines = mapped.rendered.backend_lines();
    assert!(lines.iter().any(|l| l.contains("/health")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("/ready")), "{lines:#?}");
    assert!(
        mapped.notes.iter().any(|n| n.contains("uri_map")),
        "{:?}",
        mapped.notes
    );
}

#[test]
fn a_refused_sequence_falls_back_to_a_tcp_check_of_every_port() {
    let checks = [
        check("http", "/health", None, 10_000),
        check("http", "/ready", Some(9000), 5_000),
    ];
    let engine = engine(true);
    let mapped = engine.map_all(&service(), &checks);
    assert!(mapped.fallback.is_none(), "{:?}", mapped.fallback);
    let refused =
        engine.refused_by_haproxy(&service(), &checks, &mapped, "HAProxy refused it".into());
    assert_eq!(
        refused.fallback.as_ref().map(|f| f.cause),
        Some("haproxy-refused")
    );
    let lines = refused.rendered.backend_lines();
    assert_eq!(lines[0], "option tcp-check", "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("http")),
        "no HTTP probe: {lines:#?}"
    );
    assert_eq!(
        refused.rendered.uri_entry.as_ref().map(Token::as_str),
        Some("#8080#10.0.0.5:8080##9000#10.0.0.5:9000"),
        "both ports are checked"
    );
    let args = refused.rendered.server_args();
    assert!(
        args.contains("inter 5000ms"),
        "the shortest interval: {args}"
    );
}
