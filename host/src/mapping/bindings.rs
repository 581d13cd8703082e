//! The one `bindgen!` of `wit/mapping.wit`, and conversions to and from the model.

#![allow(missing_docs)]

use hnc_core::model as m;

// Borrowed parameter types: the host lowers the service and the check into
// the guest straight from its own strings, without cloning them first.
wasmtime::component::bindgen!({
    world: "mapper",
    path: "../wit",
    ownership: Borrowing { duplicate_if_necessary: true },
});

use haproxy_nomad::mapping::types as w;

/// The WIT package version this host speaks, as in `wit/mapping.wit`.
pub const WIT_PACKAGE: &str = "haproxy-nomad:mapping";
/// The semver-compatible version prefix of imports this host accepts.
pub const WIT_COMPATIBLE: &str = "0.1.";

/// The string slices the borrowed WIT types point into (lists of strings
/// are `&[&str]` there), built once per call.
pub(super) struct Borrowed<'a> {
    tags: Vec<&'a str>,
    args: Vec<&'a str>,
    header_values: Vec<Vec<&'a str>>,
    /// The plugin's settings as the call takes them.
    pub(super) settings: Vec<(&'a str, &'a str)>,
}

impl<'a> Borrowed<'a> {
    pub(super) fn new(
        s: &'a m::ServiceContext,
        c: &'a m::NomadCheck,
        settings: &'a m::Settings,
    ) -> Self {
        let strs = |v: &'a [String]| v.iter().map(String::as_str).collect();
        Borrowed {
            tags: strs(&s.tags),
            args: strs(&c.args),
            header_values: c.headers.iter().map(|h| strs(&h.values)).collect(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }

    /// The check's headers as WIT records.
    pub(super) fn headers(&'a self, c: &'a m::NomadCheck) -> Vec<w::Header<'a>> {
        c.headers
            .iter()
            .zip(&self.header_values)
            .map(|(h, values)| w::Header {
                name: &h.name,
                values,
            })
            .collect()
    }
}

/// Nomad's empty value as WIT's `none`: nothing to copy into the guest.
fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// An empty list as `none`, for the same reason.
fn opt_list<T>(v: &[T]) -> Option<&[T]> {
    (!v.is_empty()).then_some(v)
}

pub(super) fn service_to_wit<'a>(
    s: &'a m::ServiceContext,
    b: &'a Borrowed<'a>,
) -> w::ServiceContext<'a> {
    w::ServiceContext {
        name: &s.name,
        namespace: &s.namespace,
        job: &s.job,
        group: &s.group,
        task: opt(&s.task),
        provider: &s.provider,
        tags: &b.tags,
        address: &s.address,
        port: s.port,
    }
}

pub(super) fn check_to_wit<'a>(
    c: &'a m::NomadCheck,
    headers: &'a [w::Header<'a>],
    b: &'a Borrowed<'a>,
) -> w::NomadCheck<'a> {
    w::NomadCheck {
        name: &c.name,
        check_type: &c.check_type,
        path: &c.path,
        method: opt(&c.method),
        protocol: opt(&c.protocol),
        headers: opt_list(headers),
        body: opt(&c.body),
        port_label: opt(&c.port_label),
        check_port: c.check_port,
        interval_ms: c.interval_ms,
        timeout_ms: c.timeout_ms,
        tls_skip_verify: c.tls_skip_verify,
        tls_server_name: opt(&c.tls_server_name),
        grpc_service: opt(&c.grpc_service),
        grpc_use_tls: c.grpc_use_tls,
        command: opt(&c.command),
        args: opt_list(&b.args),
        success_before_passing: c.success_before_passing,
        failures_before_critical: c.failures_before_critical,
        failures_before_warning: c.failures_before_warning,
        on_update: opt(&c.on_update),
    }
}

pub(super) fn info_from_wit(i: w::PluginInfo) -> m::PluginInfo {
    m::PluginInfo {
        name: i.name,
        version: i.version,
        check_types: i.check_types,
    }
}

pub(super) fn level_from_wit(l: w::LogLevel) -> m::LogLevel {
    match l {
        w::LogLevel::Debug => m::LogLevel::Debug,
        w::LogLevel::Info => m::LogLevel::Info,
        w::LogLevel::Warn => m::LogLevel::Warn,
        w::LogLevel::Error => m::LogLevel::Error,
    }
}

pub(super) fn plan_from_wit(p: w::CheckPlan) -> m::CheckPlan {
    m::CheckPlan {
        backend: match p.backend {
            w::BackendCheck::Tcp => m::BackendCheck::Tcp,
            w::BackendCheck::Http(h) => m::BackendCheck::Http(http_from_wit(h)),
            w::BackendCheck::TcpCheck(rules) => {
                m::BackendCheck::TcpCheck(rules.into_iter().map(rule_from_wit).collect())
            }
        },
        timeout_check_ms: p.timeout_check_ms,
        server: server_from_wit(p.server),
        notes: p.notes,
        warnings: p.warnings,
    }
}

fn http_from_wit(h: w::HttpCheck) -> m::HttpCheck {
    m::HttpCheck {
        method: h.method,
        uri: h.uri,
        version: h.version,
        headers: h.headers,
        body: h.body,
        default_host: h.default_host,
        expect: h
            .expect
            .into_iter()
            .map(|e| m::HttpExpect {
                negate: e.negate,
                matcher: match e.matcher {
                    w::HttpMatch::Status => m::HttpMatch::Status,
                    w::HttpMatch::Rstatus => m::HttpMatch::Rstatus,
                    w::HttpMatch::String => m::HttpMatch::String,
                    w::HttpMatch::Rstring => m::HttpMatch::Rstring,
                },
                pattern: e.pattern,
            })
            .collect(),
    }
}

fn rule_from_wit(r: w::TcpCheckRule) -> m::TcpCheckRule {
    match r {
        w::TcpCheckRule::Connect(c) => m::TcpCheckRule::Connect(m::TcpConnect {
            port: c.port,
            ssl: c.ssl,
            sni: c.sni,
            alpn: c.alpn,
        }),
        w::TcpCheckRule::Send(s) => m::TcpCheckRule::Send(s),
        w::TcpCheckRule::SendBinary(b) => m::TcpCheckRule::SendBinary(b),
        w::TcpCheckRule::Expect(e) => m::TcpCheckRule::Expect(m::TcpExpect {
            negate: e.negate,
            matcher: match e.matcher {
                w::TcpMatch::String => m::TcpMatch::String,
                w::TcpMatch::Rstring => m::TcpMatch::Rstring,
                w::TcpMatch::Binary => m::TcpMatch::Binary,
                w::TcpMatch::Rbinary => m::TcpMatch::Rbinary,
            },
            pattern: e.pattern,
            min_recv: e.min_recv,
            error_status: e.error_status,
            comment: e.comment,
        }),
        w::TcpCheckRule::Comment(c) => m::TcpCheckRule::Comment(c),
    }
}

fn server_from_wit(s: w::ServerCheck) -> m::ServerCheck {
    m::ServerCheck {
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
            w::TlsVerify::Required => m::TlsVerify::Required,
            w::TlsVerify::None => m::TlsVerify::None,
        },
        sni: s.sni,
        proto: s.proto,
        alpn: s.alpn,
        agent: s.agent.map(|a| m::AgentCheck {
            port: a.port,
            addr: a.addr,
            inter_ms: a.inter_ms,
            send: a.send,
        }),
    }
}

/// The bytes of a plan as the guest returned it: every string and list
/// counted, so the output cap bounds what the host holds and logs.
pub(super) fn plan_size(p: &w::CheckPlan) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let strings = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    let backend = match &p.backend {
        w::BackendCheck::Tcp => 0,
        w::BackendCheck::Http(h) => {
            h.method.len()
                + h.uri.len()
                + h.version.len()
                + h.body.len()
                + h.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
                + h.expect.iter().map(|e| e.pattern.len() + 8).sum::<usize>()
        }
        w::BackendCheck::TcpCheck(rules) => rules
            .iter()
            .map(|r| match r {
                w::TcpCheckRule::Connect(c) => opt(&c.sni) + opt(&c.alpn) + 8,
                w::TcpCheckRule::Send(s) | w::TcpCheckRule::Comment(s) => s.len(),
                w::TcpCheckRule::SendBinary(b) => b.len(),
                w::TcpCheckRule::Expect(e) => {
                    e.pattern.len() + opt(&e.error_status) + opt(&e.comment) + 8
                }
            })
            .sum(),
    };
    let s = &p.server;
    let agent = s
        .agent
        .as_ref()
        .map_or(0, |a| opt(&a.addr) + opt(&a.send) + 8);
    backend
        + strings(&p.notes)
        + strings(&p.warnings)
        + opt(&s.addr)
        + opt(&s.sni)
        + opt(&s.proto)
        + opt(&s.alpn)
        + agent
        + 64
}
