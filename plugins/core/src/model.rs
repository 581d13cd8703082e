//! The data model of `wit/mapping.wit`, as plain Rust types (one type per WIT type).

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Key/value settings of a plugin, from the connector's config.
pub type Settings = Vec<(String, String)>;

/// The Nomad service instance a check belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(default))]
pub struct ServiceContext {
    /// The service name as registered.
    pub name: String,
    /// The Nomad namespace.
    pub namespace: String,
    /// The job ID.
    pub job: String,
    /// The task group.
    pub group: String,
    /// The task, empty for a group service.
    pub task: String,
    /// `nomad` or `consul`.
    pub provider: String,
    /// The registration's tags.
    pub tags: Vec<String>,
    /// The instance address.
    pub address: String,
    /// The instance port.
    pub port: u16,
}

/// One HTTP header of a check, with all its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header values, in order.
    pub values: Vec<String>,
}

/// A Nomad `ServiceCheck`; durations in milliseconds, empty strings for "unset".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(default))]
pub struct NomadCheck {
    /// The check's name.
    pub name: String,
    /// `http`, `tcp`, `grpc`, `script`, or whatever the job says.
    pub check_type: String,
    /// HTTP path, possibly with a query string.
    pub path: String,
    /// HTTP method; empty means GET.
    pub method: String,
    /// `http`, `https` or empty.
    pub protocol: String,
    /// HTTP headers.
    pub headers: Vec<Header>,
    /// HTTP body.
    pub body: String,
    /// Port label of the check; empty means the service's.
    pub port_label: String,
    /// The resolved check port when it differs from the service's port.
    pub check_port: Option<u16>,
    /// Interval in milliseconds.
    pub interval_ms: u64,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
    /// `tls_skip_verify`.
    pub tls_skip_verify: bool,
    /// `tls_server_name`.
    pub tls_server_name: String,
    /// `grpc_service`.
    pub grpc_service: String,
    /// `grpc_use_tls`.
    pub grpc_use_tls: bool,
    /// Script command.
    pub command: String,
    /// Script arguments.
    pub args: Vec<String>,
    /// Consul's `success_before_passing`.
    pub success_before_passing: u32,
    /// Consul's `failures_before_critical`.
    pub failures_before_critical: u32,
    /// Consul's `failures_before_warning`.
    pub failures_before_warning: u32,
    /// `on_update`.
    pub on_update: String,
}

impl NomadCheck {
    /// The values of a header, matched case-insensitively as HTTP does.
    pub fn header(&self, name: &str) -> Option<&[String]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.values.as_slice())
    }
}

/// Certificate verification of a TLS check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum TlsVerify {
    /// Verify the certificate.
    #[default]
    Required,
    /// `verify none`.
    None,
}

/// The matchers of `http-check expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum HttpMatch {
    /// `status`: codes or ranges.
    Status,
    /// `rstatus`: a regex over the code.
    Rstatus,
    /// `string`: a substring of the body.
    String,
    /// `rstring`: a regex over the body.
    Rstring,
}

/// One `http-check expect` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct HttpExpect {
    /// `!` before the matcher.
    pub negate: bool,
    /// The matcher.
    pub matcher: HttpMatch,
    /// The pattern.
    pub pattern: String,
}

/// `option httpchk` with its send and expect rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct HttpCheck {
    /// Request method.
    pub method: String,
    /// Request URI (path and query).
    pub uri: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Body; empty for none.
    pub body: String,
    /// With no `Host` header: send each server's own `address:port`.
    pub default_host: bool,
    /// Expect rules.
    pub expect: Vec<HttpExpect>,
}

/// `tcp-check connect` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TcpConnect {
    /// Port override.
    pub port: Option<u16>,
    /// TLS.
    pub ssl: bool,
    /// SNI.
    pub sni: Option<String>,
    /// ALPN.
    pub alpn: Option<String>,
}

/// The matchers of `tcp-check expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum TcpMatch {
    /// A substring.
    String,
    /// A regex.
    Rstring,
    /// Hex bytes.
    Binary,
    /// A regex over the hex of the bytes.
    Rbinary,
}

/// One `tcp-check expect` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TcpExpect {
    /// `!` before the matcher.
    pub negate: bool,
    /// The matcher.
    pub matcher: TcpMatch,
    /// The pattern.
    pub pattern: String,
    /// `min-recv`.
    pub min_recv: Option<u32>,
    /// `error-status`.
    pub error_status: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
}

/// One `tcp-check` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum TcpCheckRule {
    /// `tcp-check connect`.
    Connect(TcpConnect),
    /// `tcp-check send`.
    Send(String),
    /// `tcp-check send-binary`.
    SendBinary(Vec<u8>),
    /// `tcp-check expect`.
    Expect(TcpExpect),
    /// `tcp-check comment`.
    Comment(String),
}

/// The backend-level part of a check, shared by all servers of a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum BackendCheck {
    /// A layer-4 connect check.
    #[default]
    Tcp,
    /// `option httpchk`.
    Http(HttpCheck),
    /// `option tcp-check`.
    TcpCheck(Vec<TcpCheckRule>),
}

/// `agent-check` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AgentCheck {
    /// `agent-port`.
    pub port: u16,
    /// `agent-addr`.
    pub addr: Option<String>,
    /// `agent-inter`.
    pub inter_ms: Option<u32>,
    /// `agent-send`.
    pub send: Option<String>,
}

/// The server-level check options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(default))]
pub struct ServerCheck {
    /// `check` on the server line.
    pub enabled: bool,
    /// `inter`.
    pub inter_ms: Option<u32>,
    /// `fastinter`.
    pub fastinter_ms: Option<u32>,
    /// `downinter`.
    pub downinter_ms: Option<u32>,
    /// `rise`.
    pub rise: Option<u32>,
    /// `fall`.
    pub fall: Option<u32>,
    /// `port`.
    pub port: Option<u16>,
    /// `addr`.
    pub addr: Option<String>,
    /// `check-ssl`.
    pub ssl: bool,
    /// `verify` for `check-ssl`.
    pub verify: TlsVerify,
    /// `check-sni`.
    pub sni: Option<String>,
    /// `check-proto`.
    pub proto: Option<String>,
    /// `check-alpn`.
    pub alpn: Option<String>,
    /// `agent-check`.
    pub agent: Option<AgentCheck>,
}

/// A plugin's answer: typed HAProxy check settings plus notes and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(default))]
pub struct CheckPlan {
    /// Backend-level rules.
    pub backend: BackendCheck,
    /// `timeout check`.
    pub timeout_check_ms: Option<u32>,
    /// Server-level options.
    pub server: ServerCheck,
    /// Informational notes.
    pub notes: Vec<String>,
    /// Warnings, logged by the host.
    pub warnings: Vec<String>,
}

impl CheckPlan {
    /// The ADR-003 fallback: a plain layer-4 check on the server's port.
    pub fn tcp_fallback() -> Self {
        CheckPlan {
            server: ServerCheck {
                enabled: true,
                ..ServerCheck::default()
            },
            ..CheckPlan::default()
        }
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Check types it maps.
    pub check_types: Vec<String>,
}

/// Log levels of the `log` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}
