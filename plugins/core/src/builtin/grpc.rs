//! The built-in `grpc` mapping: the gRPC health protocol as a raw HTTP/2 `tcp-check`.
//!
//! Consul (which runs `grpc` checks for `provider = "consul"` services, and
//! for tag-declared gRPC checks here) passes when `grpc.health.v1.Health/Check`
//! answers SERVING. HAProxy gets the same request as bytes and expects the
//! SERVING response; NOT_SERVING fails at once (`error-status L7STS`), and
//! so does an error status such as NOT_FOUND for an unknown service, as
//! Consul's check fails on it.

use super::common::{checked_settings, timed_plan};
use super::h2::{
    ANSWER_HEX_REGEX, ANY_RESPONSE_HEX_REGEX, SERVING_RESPONSE_HEX, health_check_request,
};
use crate::model::{
    BackendCheck, CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings, TcpCheckRule,
    TcpConnect, TcpExpect, TcpMatch, TlsVerify,
};

/// What HAProxy reports when the server answered with a gRPC error status
/// (NOT_FOUND, UNIMPLEMENTED...) instead of a response. Short, because
/// HAProxy cuts `last_chk` (its own text, then the comment) at ~128 bytes,
/// and without a comma, which would split the field for a naive reader of
/// `show stat`.
const NO_RESPONSE: &str = "gRPC error status: unknown service or no health service";

/// Settings of this plugin besides `rise`/`fall`.
const KEYS: &[&str] = &["authority"];

/// The plugin's self-description.
pub fn info() -> PluginInfo {
    PluginInfo {
        name: "builtin-grpc".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        check_types: vec!["grpc".into()],
    }
}

/// Maps a `grpc` check for `GRPCService`, over TLS when `GRPCUseTLS`.
///
/// # Errors
/// An unknown setting, or a service name or authority too long for the probe.
pub fn map(
    _service: &ServiceContext,
    check: &NomadCheck,
    settings: &Settings,
) -> Result<CheckPlan, String> {
    let get = checked_settings(settings, KEYS)?;
    let mut plan = timed_plan(check, &get)?;
    let authority = get.get("authority").unwrap_or("localhost");
    let tls = check.grpc_use_tls;
    let probe = health_check_request(&check.grpc_service, authority, tls)?;
    let sni = (!check.tls_server_name.is_empty()).then(|| check.tls_server_name.clone());

    plan.backend = BackendCheck::TcpCheck(vec![
        TcpCheckRule::Connect(TcpConnect {
            port: None,
            ssl: tls,
            sni,
            alpn: tls.then(|| "h2".to_string()),
        }),
        TcpCheckRule::SendBinary(probe),
        // Wait for an answer: the response message, or an error status.
        TcpCheckRule::Expect(TcpExpect {
            negate: false,
            matcher: TcpMatch::Rbinary,
            pattern: ANSWER_HEX_REGEX.into(),
            min_recv: None,
            error_status: None,
            comment: Some("gRPC answer received".into()),
        }),
        // An error status fails now, not after `timeout check`.
        TcpCheckRule::Expect(TcpExpect {
            negate: false,
            matcher: TcpMatch::Rbinary,
            pattern: ANY_RESPONSE_HEX_REGEX.into(),
            min_recv: Some(0),
            error_status: Some("L7STS".into()),
            comment: Some(NO_RESPONSE.into()),
        }),
        TcpCheckRule::Expect(TcpExpect {
            negate: false,
            matcher: TcpMatch::Binary,
            pattern: SERVING_RESPONSE_HEX.into(),
            min_recv: Some(0),
            error_status: Some("L7STS".into()),
            comment: Some("SERVING".into()),
        }),
    ]);
    if tls {
        plan.server.verify = if check.tls_skip_verify {
            TlsVerify::None
        } else {
            TlsVerify::Required
        };
    }
    let service = if check.grpc_service.is_empty() {
        "the server's overall health".to_string()
    } else {
        format!("service '{}'", check.grpc_service)
    };
    plan.notes.push(format!(
        "gRPC health Check of {service} as a raw HTTP/2 tcp-check"
    ));
    Ok(plan)
}
