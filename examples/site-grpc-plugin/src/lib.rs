//! An example site plugin: gRPC health checks the way one site wants them.
//!
//! This site routes gRPC by `:authority`, so every health probe must carry
//! `<service>.<domain>` instead of the built-in's `localhost`; and it wants a
//! slower fall (3 failures) than Nomad's single-result semantics. Swap it in
//! with config alone:
//!
//! ```toml
//! [mapping.plugins]
//! grpc = "/etc/haproxy-nomad-connector/plugins/site_grpc_plugin.wasm"
//! [mapping.settings.grpc]
//! domain = "svc.example.internal"
//! ```
//!
//! Build: `cargo run -p hnc-plugin-builder --bin hnc-plugin-build -- --manifest
//! examples/site-grpc-plugin/Cargo.toml --package site-grpc-plugin --out site-grpc.wasm`.

use hnc_plugin_sdk::core::builtin::h2;
use hnc_plugin_sdk::{
    BackendCheck, CheckPlan, LogLevel, NomadCheck, PluginInfo, ServerCheck, ServiceContext,
    Settings, TcpCheckRule, TcpConnect, TcpExpect, TcpMatch, TlsVerify,
};

struct SiteGrpc;

impl hnc_plugin_sdk::Plugin for SiteGrpc {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "site-grpc".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            check_types: vec!["grpc".into()],
        }
    }

    fn map_check(
        service: ServiceContext,
        check: NomadCheck,
        settings: Settings,
    ) -> Result<CheckPlan, String> {
        let mut domain = None;
        for (key, value) in &settings {
            match key.as_str() {
                "domain" => domain = Some(value.as_str()),
                other => return Err(format!("unknown setting '{other}' (known: domain)")),
            }
        }
        let domain = domain.ok_or("setting 'domain' is required")?;
        let authority = format!("{}.{domain}", service.name);
        if check.grpc_service.is_empty() {
            hnc_plugin_sdk::log(
                LogLevel::Debug,
                &format!("{}: checking the server's overall health", service.name),
            );
        }
        let probe = h2::health_check_request(&check.grpc_service, &authority, check.grpc_use_tls)?;
        let expect = |matcher, pattern: &str, error_status: Option<&str>, comment: &str| {
            TcpCheckRule::Expect(TcpExpect {
                negate: false,
                matcher,
                pattern: pattern.into(),
                min_recv: error_status.map(|_| 0),
                error_status: error_status.map(Into::into),
                comment: Some(comment.into()),
            })
        };
        Ok(CheckPlan {
            backend: BackendCheck::TcpCheck(vec![
                TcpCheckRule::Connect(TcpConnect {
                    ssl: check.grpc_use_tls,
                    alpn: check.grpc_use_tls.then(|| "h2".into()),
                    ..TcpConnect::default()
                }),
                TcpCheckRule::SendBinary(probe),
                expect(
                    TcpMatch::Rbinary,
                    h2::ANY_RESPONSE_HEX_REGEX,
                    None,
                    "response",
                ),
                expect(
                    TcpMatch::Binary,
                    h2::SERVING_RESPONSE_HEX,
                    Some("L7STS"),
                    "SERVING",
                ),
            ]),
            timeout_check_ms: (check.timeout_ms > 0).then(|| check.timeout_ms.min(60_000) as u32),
            server: ServerCheck {
                enabled: true,
                inter_ms: (check.interval_ms > 0).then(|| check.interval_ms.min(3_600_000) as u32),
                rise: Some(1),
                fall: Some(3),
                port: check.check_port,
                verify: if check.tls_skip_verify {
                    TlsVerify::None
                } else {
                    TlsVerify::Required
                },
                ..ServerCheck::default()
            },
            notes: vec![format!("site gRPC probe with :authority {authority}")],
            warnings: Vec::new(),
        })
    }
}

hnc_plugin_sdk::plugin!(SiteGrpc);
