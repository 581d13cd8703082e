//! Conversions between the generated WIT types and the plain model types (guest side).

use crate::wit::haproxy_nomad::mapping::types as w;
use hnc_core::model as m;

/// Runs a plugin on WIT input and converts its answer back.
pub fn map_check<P: crate::Plugin>(
    service: w::ServiceContext,
    check: w::NomadCheck,
    settings: Vec<(String, String)>,
) -> Result<w::CheckPlan, String> {
    P::map_check(service_from_wit(service), check_from_wit(check), settings).map(plan_to_wit)
}

/// A plain [`m::PluginInfo`] as WIT.
pub fn info_to_wit(info: m::PluginInfo) -> w::PluginInfo {
    w::PluginInfo {
        name: info.name,
        version: info.version,
        check_types: info.check_types,
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn log_level(level: m::LogLevel) -> w::LogLevel {
    match level {
        m::LogLevel::Debug => w::LogLevel::Debug,
        m::LogLevel::Info => w::LogLevel::Info,
        m::LogLevel::Warn => w::LogLevel::Warn,
        m::LogLevel::Error => w::LogLevel::Error,
    }
}

fn service_from_wit(s: w::ServiceContext) -> m::ServiceContext {
    m::ServiceContext {
        name: s.name,
        namespace: s.namespace,
        job: s.job,
        group: s.group,
        task: s.task.unwrap_or_default(),
        provider: s.provider,
        tags: s.tags,
        address: s.address,
        port: s.port,
    }
}

/// A `none` from the host is Nomad's empty value in the plain model.
fn check_from_wit(c: w::NomadCheck) -> m::NomadCheck {
    m::NomadCheck {
        name: c.name,
        check_type: c.check_type,
        path: c.path,
        method: c.method.unwrap_or_default(),
        protocol: c.protocol.unwrap_or_default(),
        headers: c
            .headers
            .unwrap_or_default()
            .into_iter()
            .map(|h| m::Header {
                name: h.name,
                values: h.values,
            })
            .collect(),
        body: c.body.unwrap_or_default(),
        port_label: c.port_label.unwrap_or_default(),
        check_port: c.check_port,
        interval_ms: c.interval_ms,
        timeout_ms: c.timeout_ms,
        tls_skip_verify: c.tls_skip_verify,
        tls_server_name: c.tls_server_name.unwrap_or_default(),
        grpc_service: c.grpc_service.unwrap_or_default(),
        grpc_use_tls: c.grpc_use_tls,
        command: c.command.unwrap_or_default(),
        args: c.args.unwrap_or_default(),
        success_before_passing: c.success_before_passing,
        failures_before_critical: c.failures_before_critical,
        failures_before_warning: c.failures_before_warning,
        on_update: c.on_update.unwrap_or_default(),
    }
}

fn plan_to_wit(p: m::CheckPlan) -> w::CheckPlan {
    w::CheckPlan {
        backend: match p.backend {
            m::BackendCheck::Tcp => w::BackendCheck::Tcp,
            m::BackendCheck::Http(h) => w::BackendCheck::Http(http_to_wit(h)),
            m::BackendCheck::TcpCheck(rules) => {
                w::BackendCheck::TcpCheck(rules.into_iter().map(rule_to_wit).collect())
            }
        },
        timeout_check_ms: p.timeout_check_ms,
        server: server_to_wit(p.server),
        notes: p.notes,
        warnings: p.warnings,
    }
}

fn http_to_wit(h: m::HttpCheck) -> w::HttpCheck {
    w::HttpCheck {
        method: h.method,
        uri: h.uri,
        version: h.version,
        headers: h.headers,
        body: h.body,
        default_host: h.default_host,
        expect: h
            .expect
            .into_iter()
            .map(|e| w::HttpExpect {
                negate: e.negate,
                matcher: match e.matcher {
                    m::HttpMatch::Status => w::HttpMatch::Status,
                    m::HttpMatch::Rstatus => w::HttpMatch::Rstatus,
                    m::HttpMatch::String => w::HttpMatch::String,
                    m::HttpMatch::Rstring => w::HttpMatch::Rstring,
                },
                pattern: e.pattern,
            })
            .collect(),
    }
}

fn rule_to_wit(r: m::TcpCheckRule) -> w::TcpCheckRule {
    match r {
        m::TcpCheckRule::Connect(c) => w::TcpCheckRule::Connect(w::TcpConnect {
            port: c.port,
            ssl: c.ssl,
            sni: c.sni,
            alpn: c.alpn,
        }),
        m::TcpCheckRule::Send(s) => w::TcpCheckRule::Send(s),
        m::TcpCheckRule::SendBinary(b) => w::TcpCheckRule::SendBinary(b),
        m::TcpCheckRule::Expect(e) => w::TcpCheckRule::Expect(w::TcpExpect {
            negate: e.negate,
            matcher: match e.matcher {
                m::TcpMatch::String => w::TcpMatch::String,
                m::TcpMatch::Rstring => w::TcpMatch::Rstring,
                m::TcpMatch::Binary => w::TcpMatch::Binary,
                m::TcpMatch::Rbinary => w::TcpMatch::Rbinary,
            },
            pattern: e.pattern,
            min_recv: e.min_recv,
            error_status: e.error_status,
            comment: e.comment,
        }),
        m::TcpCheckRule::Comment(c) => w::TcpCheckRule::Comment(c),
    }
}

fn server_to_wit(s: m::ServerCheck) -> w::ServerCheck {
    w::ServerCheck {
        enabled: s.enabled,
        inter_ms: s.inter_ms,
        fastinter_ms: s.fastinter_ms,
        downinter_ms: s.downinter_ms,
        rise: s.rise,
        fall: s.fall,
        port: s.port,
        addr: s.addr,
        ssl: s.ssl,
        verify: match s.verify {
            m::TlsVerify::Required => w::TlsVerify::Required,
            m::TlsVerify::None => w::TlsVerify::None,
        },
        sni: s.sni,
        proto: s.proto,
        alpn: s.alpn,
        agent: s.agent.map(|a| w::AgentCheck {
            port: a.port,
            addr: a.addr,
            inter_ms: a.inter_ms,
            send: a.send,
        }),
    }
}
