//! The example site plugin (examples/site-grpc-plugin) replaces the built-in
//! gRPC mapping through config alone.

use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::mapping::Engine;
use hnc_core::model::NomadCheck;
use hnc_tests::mapping::service;

/// The example plugin, built by tests/build.rs.
pub const SITE_GRPC_PLUGIN: &str = env!("SITE_GRPC_PLUGIN");

/// A config file that swaps gRPC handling to the site plugin.
pub fn site_config() -> Config {
    Config::parse(&format!(
        "[mapping.plugins]\ngrpc = {SITE_GRPC_PLUGIN:?}\n\n[mapping.settings.grpc]\ndomain = \"svc.example\"\n"
    ))
    .expect("a valid config")
}

fn grpc_check() -> NomadCheck {
    NomadCheck {
        name: "rpc".into(),
        check_type: "grpc".into(),
        grpc_service: "greeter.Greeter".into(),
        interval_ms: 2_000,
        timeout_ms: 1_000,
        ..NomadCheck::default()
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn site_plugin_replaces_grpc_mapping_through_config_only() {
    let config = site_config();
    let engine = Engine::new(&config.mapping, config.render_context()).expect("loads");
    let mapped = engine.map(&service("greeter", &[]), Some(&grpc_check()));
    assert_eq!(mapped.fallback, None);
    assert_eq!(mapped.plugin.as_deref(), Some("site-grpc@0.1.0"));
    let send = mapped
        .rendered
        .backend_lines()
        .into_iter()
        .find(|l| l.starts_with("tcp-check send-binary"))
        .expect("a probe");
    assert!(
        send.contains(&hex("greeter.svc.example")),
        "site authority in the probe"
    );
    assert!(!send.contains(&hex("localhost")));
    assert_eq!(
        mapped.rendered.server_args(),
        "check inter 2000ms rise 1 fall 3"
    );

    // Other types keep their built-ins.
    let http = engine.map(
        &service("web", &[]),
        Some(&hnc_tests::mapping::http_check("/")),
    );
    assert_eq!(http.plugin.as_deref(), Some("builtin-http@0.1.0"));
}

#[test]
fn site_plugin_settings_are_checked_at_start() {
    let config =
        Config::parse(&format!("[mapping.plugins]\ngrpc = {SITE_GRPC_PLUGIN:?}\n")).unwrap();
    let err = Engine::new(&config.mapping, config.render_context())
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(message.contains("mapping.settings.grpc"), "{message}");
    assert!(
        message.contains("setting 'domain' is required"),
        "{message}"
    );
}
