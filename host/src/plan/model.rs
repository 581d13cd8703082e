//! The domain types of the planner: desired and actual HAProxy state, plain data.
//!
//! [`Desired`] is what the connector wants HAProxy to run, built from Nomad
//! and the mapping engine. [`Actual`] is what HAProxy runs, as the driver
//! read it (`show backend`, `show servers state`) plus what the driver itself
//! last wrote (the managed config file). Every value that reaches HAProxy is
//! already a validated [`Token`] or a name that [`names`] accepts.

pub use super::balance::{Balance, BalanceError};
pub use crate::vocab::DomainMatch;
use crate::vocab::names;
use crate::vocab::syntax::{Token, join};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The HAProxy state the connector wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Backends by name, shared with the service plans they come from.
    pub backends: BTreeMap<String, Arc<BackendSpec>>,
    /// Domain map entries (from `haproxy.domain*` tags) that the operator's
    /// frontend rules use to pick a backend.
    pub domains: Domains,
}

/// Domain map entries: (how it matches, pattern) → backend name. Patterns
/// are validated tokens (no blanks, `;` or `#`), lowercase for exact and
/// prefix matches.
pub type Domains = BTreeMap<(DomainMatch, String), String>;

impl Desired {
    /// Adds (or replaces) a backend, keyed by its name.
    pub fn insert(&mut self, backend: BackendSpec) {
        self.backends
            .insert(backend.name.clone(), Arc::new(backend));
    }
}

/// Who owns a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendClass {
    /// The connector owns the backend: it writes the whole section into the
    /// managed config file and owns every server in it.
    Dynamic,
    /// An operator's existing backend: the connector adds servers to it and
    /// owns only those (named with [`names::SERVER_PREFIX`]). Its check
    /// rules, mode and balance are the operator's, so [`BackendSpec::mode`],
    /// [`BackendSpec::balance`] and [`BackendSpec::check`] are ignored.
    Custom,
}

/// A backend's proxy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// `mode http`.
    #[default]
    Http,
    /// `mode tcp`.
    Tcp,
}

/// One backend the connector wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The backend name ([`names::backend_name`] for a dynamic one, the
    /// operator's name for a custom one).
    pub name: String,
    /// Who owns the backend.
    pub class: BackendClass,
    /// `mode` (dynamic backends only).
    pub mode: Mode,
    /// `balance` (dynamic backends only).
    pub balance: Balance,
    /// Check lines of the backend section, i.e. `RenderedCheck::backend`
    /// (dynamic backends only).
    pub check: Vec<Vec<Token>>,
    /// Servers by name.
    pub servers: BTreeMap<String, ServerSpec>,
}

impl BackendSpec {
    /// An empty connector-owned backend (HTTP, round robin, no check lines).
    pub fn dynamic(name: impl Into<String>) -> BackendSpec {
        BackendSpec {
            name: name.into(),
            class: BackendClass::Dynamic,
            mode: Mode::default(),
            balance: Balance::default(),
            check: Vec::new(),
            servers: BTreeMap::new(),
        }
    }

    /// An operator's backend that receives the connector's servers.
    pub fn custom(name: impl Into<String>) -> BackendSpec {
        BackendSpec {
            class: BackendClass::Custom,
            ..BackendSpec::dynamic(name)
        }
    }

    /// Adds (or replaces) a server, keyed by its name.
    pub fn insert(&mut self, server: ServerSpec) {
        self.servers.insert(server.name.clone(), server);
    }

    /// The lines of the section the connector writes for a dynamic backend:
    /// `mode`, `balance` (and `hash-type`), then the check lines.
    pub fn config_lines(&self) -> Vec<Vec<Token>> {
        let mode = match self.mode {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        };
        let mut lines = vec![vec![Token::keyword("mode"), Token::keyword(mode)]];
        lines.extend(self.balance.lines());
        lines.extend(self.check.iter().cloned());
        lines
    }

    /// [`BackendSpec::config_lines`] as text, as the managed file holds them.
    pub fn fingerprint(&self) -> Vec<String> {
        self.config_lines().iter().map(|l| join(l)).collect()
    }
}

/// One server the connector wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server name ([`names::server_name`]).
    pub name: String,
    /// Its IP address (HAProxy's runtime API takes no host names).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Its weight, 0 to 256 (HAProxy's default is 1).
    pub weight: u16,
    /// Check arguments of the server, i.e. `RenderedCheck::server` (empty:
    /// no health check, the server takes traffic as soon as it is added).
    /// Shared with the mapping result it comes from.
    pub check_args: Arc<[Token]>,
    /// Put `name → addr:port` into the Host map (when
    /// `RenderedCheck::needs_host_entry`).
    pub host_entry: bool,
    /// The check's port when it is not the server's (`check port`): the
    /// Host-map entry is then `addr:check_port`, the address Nomad's checker
    /// dials and names in its default `Host` (the fidelity matrix).
    pub check_port: Option<u16>,
    /// The server's own check URI for the URI map
    /// (`RenderedCheck::uri_entry`): it changes without a reload.
    pub uri_entry: Option<Token>,
    /// `maxconn`, if any.
    pub maxconn: Option<u32>,
    /// `backup`.
    pub backup: bool,
    /// Drained (`set server … state drain`): checked, but no new requests
    /// (a canary of a failed or cancelled deployment).
    pub drain: bool,
}

impl ServerSpec {
    /// A server with weight 1 and no check.
    pub fn new(name: impl Into<String>, addr: IpAddr, port: u16) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            addr,
            port,
            weight: 1,
            check_args: Arc::default(),
            host_entry: false,
            check_port: None,
            uri_entry: None,
            maxconn: None,
            backup: false,
            drain: false,
        }
    }

    /// The arguments that cannot change at runtime on HAProxy 2.6:
    /// `maxconn`, `backup` and the check arguments, in that order.
    pub fn static_args(&self) -> Vec<Token> {
        let mut args = Vec::new();
        if let Some(n) = self.maxconn {
            args.extend([Token::keyword("maxconn"), Token::number(n)]);
        }
        if self.backup {
            args.push(Token::keyword("backup"));
        }
        args.extend(self.check_args.iter().cloned());
        args
    }

    /// [`ServerSpec::static_args`] as text, as the managed file holds them.
    pub fn fingerprint(&self) -> String {
        join(&self.static_args())
    }

    /// Whether the server has a health check (`check` among its arguments).
    pub fn has_check(&self) -> bool {
        self.check_args.iter().any(|t| t.as_str() == "check")
    }

    /// Whether the server has an agent check.
    pub fn has_agent(&self) -> bool {
        self.check_args.iter().any(|t| t.as_str() == "agent-check")
    }

    /// `addr:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        socket_text(self.addr, self.port)
    }

    /// Its Host-map value: `addr:port` of where the check connects (the
    /// check port if it has one), as Go's client sends it.
    pub fn host_value(&self) -> String {
        socket_text(self.addr, self.check_port.unwrap_or(self.port))
    }

    /// The entries the server should have in the driver's maps.
    pub fn map_entries(&self) -> MapEntries {
        MapEntries {
            host: self.host_entry.then(|| self.host_value()),
            uri: self.uri_entry.as_ref().map(|t| t.as_str().to_string()),
        }
    }
}

/// A server's entries in the maps the driver keeps (key: the server name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEntries {
    /// Its value in the Host map: `addr:port`.
    pub host: Option<String>,
    /// Its value in the URI map: its check URI.
    pub uri: Option<String>,
}

impl MapEntries {
    /// No entry in any map.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.uri.is_none()
    }
}

/// `addr:port`, with brackets around an IPv6 address (HAProxy's syntax both
/// in the config and on the runtime socket).
pub fn socket_text(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The HAProxy state as the driver read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actual {
    /// Backends HAProxy runs, plus the connector's backends that are in
    /// the managed file but not running.
    pub backends: BTreeMap<String, ActualBackend>,
    /// How long a removed server drains before it is deleted (the driver's
    /// setting, carried here so that [`diff`](super::diff::diff) stays pure).
    pub drain_grace: Duration,
    /// The domain maps as HAProxy holds them (`show map`), by how they
    /// match; a kind missing here has no map configured, and its entries
    /// are refused.
    pub domain_maps: BTreeMap<DomainMatch, DomainMap>,
}

/// One of the connector's domain maps as HAProxy holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DomainMap {
    /// Configured, but HAProxy has not loaded it: no rule of the operator's
    /// config uses the file, so its entries cannot take effect.
    #[default]
    NotLoaded,
    /// Its entries: pattern → every backend HAProxy holds for it, in
    /// HAProxy's order (more than one after a duplicate `add map`).
    Loaded(BTreeMap<String, Vec<String>>),
}

impl DomainMap {
    /// A loaded map from `(pattern, backend)` entries in HAProxy's order.
    pub fn loaded<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> DomainMap {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (pattern, backend) in entries {
            map.entry(pattern.to_string())
                .or_default()
                .push(backend.to_string());
        }
        DomainMap::Loaded(map)
    }
}

/// One backend as the driver sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActualBackend {
    /// Its name.
    pub name: String,
    /// Whether HAProxy runs it (`show backend`).
    pub running: bool,
    /// For a connector-owned backend, its section lines in the managed file
    /// ([`BackendSpec::fingerprint`] of what was applied); `None` for an
    /// operator's backend.
    pub managed: Option<Vec<String>>,
    /// Its servers by name.
    pub servers: BTreeMap<String, ActualServer>,
}

/// A server's operational state (`srv_op_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OpState {
    /// Stopped: DOWN.
    #[default]
    Down,
    /// Starting (slow start).
    Starting,
    /// Running: UP.
    Up,
    /// Stopping: NOLB.
    Stopping,
}

/// A server's administrative state (`srv_admin_state`, a bit mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AdminState {
    /// In maintenance (forced, inherited or by resolution: bits 0x23).
    pub maint: bool,
    /// Draining (forced or inherited: bits 0x18).
    pub drain: bool,
}

/// One server as HAProxy reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualServer {
    /// Its name.
    pub name: String,
    /// Its address; `None` when HAProxy has none (an unresolved name).
    pub addr: Option<IpAddr>,
    /// Its port.
    pub port: u16,
    /// Operational state.
    pub op: OpState,
    /// Administrative state.
    pub admin: AdminState,
    /// Current (user) weight.
    pub weight: u16,
    /// The last check's status as HAProxy names it (`L7OK`, `L4CON`,
    /// `INI`, …; `UNK` when no check ran).
    pub check_status: String,
    /// Health checks are configured on the server.
    pub check_configured: bool,
    /// Health checks are enabled (a runtime-added server needs
    /// `enable health` first).
    pub check_enabled: bool,
    /// How long it has been draining, as far as the driver knows.
    pub drained_for: Option<Duration>,
    /// [`ServerSpec::fingerprint`] of what the driver last applied; `None`
    /// when unknown (then it is not compared).
    pub applied: Option<String>,
    /// Its entries in the driver's maps, as the driver last wrote them.
    pub maps: MapEntries,
}

impl ActualServer {
    /// A server in the given states, for tests and fixtures.
    pub fn new(name: impl Into<String>, addr: IpAddr, port: u16) -> ActualServer {
        ActualServer {
            name: name.into(),
            addr: Some(addr),
            port,
            op: OpState::Up,
            admin: AdminState::default(),
            weight: 1,
            check_status: "UNK".into(),
            check_configured: false,
            check_enabled: false,
            drained_for: None,
            applied: None,
            maps: MapEntries::default(),
        }
    }
}

/// Whether the connector may change this server of a backend of the given
/// ownership: every server of its own backends, only its prefixed servers in
/// an operator's.
pub fn owns_server(backend: &ActualBackend, server: &str) -> bool {
    backend.managed.is_some() || names::is_connector_server(server)
}
