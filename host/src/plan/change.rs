//! The change set `diff` returns: runtime changes (servers, domain map entries) and backend-level (reload) changes.

use super::model::{DomainMatch, ServerSpec};
use super::requeue::{Earliest, Requeue};
use std::collections::BTreeSet;
use std::time::Duration;

/// What the driver must do to turn the actual state into the desired one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Server-level changes, applied over the runtime API, never reloading.
    pub servers: Vec<ServerChange>,
    /// Domain map entries to add, repoint or remove, applied over the
    /// runtime API after the server changes, never reloading.
    pub domains: Vec<DomainChange>,
    /// Backend-level changes, applied by rendering the managed config file,
    /// validating it and reloading HAProxy (one reload for all of them).
    pub backends: Vec<BackendChange>,
    /// Parts of the desired state the connector will not apply, and why.
    pub refusals: Vec<Refusal>,
    /// Plan again after this long even if nothing else happens: the earliest
    /// end of a drain grace period.
    pub requeue_after: Requeue,
    /// The backends compared (`None`: all of them).
    pub scope: Option<BTreeSet<String>>,
}

impl ChangeSet {
    /// Nothing to do (refusals aside).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.domains.is_empty() && self.backends.is_empty()
    }

    /// Whether applying needs a reload.
    pub fn needs_reload(&self) -> bool {
        !self.backends.is_empty()
    }

    pub(super) fn requeue(&mut self, after: Duration) {
        self.requeue_after.earliest(after);
    }
}

/// A change to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerChange {
    /// The backend.
    pub backend: String,
    /// The server.
    pub server: String,
    /// What to do.
    pub action: ServerAction,
}

/// What to do to a server; each is one batch of runtime commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAction {
    /// Add it so that it takes no traffic before its first passing check.
    Add(ServerSpec),
    /// Delete it and add it again: its static arguments (check, `maxconn`,
    /// `backup`) changed in an operator's backend, where no reload can
    /// rewrite them (in the connector's own backends a reload does).
    Replace(ServerSpec),
    /// Change its address and port.
    Readdress(ServerSpec),
    /// Rewrite its entries in the driver's maps (Host, URI): a new address
    /// or a new check URI, applied without a reload.
    SetMaps(ServerSpec),
    /// Change its weight.
    SetWeight(u16),
    /// Take it out of maintenance without letting traffic in before its
    /// next passing check.
    Enable(ServerSpec),
    /// End a drain: the instance came back.
    Undrain,
    /// Start draining it: no new sessions, existing ones go on.
    Drain,
    /// Maintenance, shut its sessions, delete it (and its map entries).
    Remove,
}

impl ServerAction {
    /// A short name for logs and counters.
    pub fn verb(&self) -> &'static str {
        match self {
            ServerAction::Add(_) => "add",
            ServerAction::Replace(_) => "replace",
            ServerAction::Readdress(_) => "readdress",
            ServerAction::SetMaps(_) => "set-maps",
            ServerAction::SetWeight(_) => "set-weight",
            ServerAction::Enable(_) => "enable",
            ServerAction::Undrain => "undrain",
            ServerAction::Drain => "drain",
            ServerAction::Remove => "remove",
        }
    }
}

/// A change to one entry of a domain map (the map of its [`DomainMatch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainChange {
    /// Which map.
    pub kind: DomainMatch,
    /// The entry's key, exactly as HAProxy stores it.
    pub pattern: String,
    /// What to do.
    pub action: DomainAction,
}

impl DomainChange {
    /// The backend the entry points to afterwards (`None` for a removal).
    pub fn backend(&self) -> Option<&str> {
        match &self.action {
            DomainAction::Add(b) | DomainAction::Set(b) | DomainAction::Reset(b) => Some(b),
            DomainAction::Remove => None,
        }
    }
}

/// What to do to a domain map entry; each is one or two runtime commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainAction {
    /// `add map`: a new entry pointing at this backend.
    Add(String),
    /// `set map`: point the entry at another backend.
    Set(String),
    /// `del map`, then `add map`: HAProxy holds the key more than once (an
    /// operator's `add map`), and must hold it once.
    Reset(String),
    /// `del map`: nobody claims the pattern any more.
    Remove,
}

impl DomainAction {
    /// A short name for logs and counters.
    pub fn verb(&self) -> &'static str {
        match self {
            DomainAction::Add(_) => "add",
            DomainAction::Set(_) => "set",
            DomainAction::Reset(_) => "reset",
            DomainAction::Remove => "remove",
        }
    }
}

/// How a [`DomainMatch`] is named in refusals, config keys and docs.
pub fn kind_name(kind: DomainMatch) -> &'static str {
    match kind {
        DomainMatch::Exact => "exact",
        DomainMatch::Prefix => "prefix",
        DomainMatch::Regex => "regex",
    }
}

/// A change to a connector-owned backend; each needs a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendChange {
    /// Write a new backend section.
    Create(String),
    /// Rewrite a backend section.
    Update {
        /// The backend.
        backend: String,
        /// Its own lines (mode, balance, check rules) changed.
        lines_changed: bool,
        /// Servers whose static arguments (check, `maxconn`, `backup`) changed.
        servers_changed: Vec<String>,
    },
    /// Remove a backend section that has no servers left.
    Delete(String),
}

impl BackendChange {
    /// The backend it changes.
    pub fn backend(&self) -> &str {
        match self {
            BackendChange::Create(b) | BackendChange::Delete(b) => b,
            BackendChange::Update { backend, .. } => backend,
        }
    }
}

/// A part of the desired state the connector refuses, where HAProxy would
/// refuse it or where applying it would harm what the operator owns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A backend or server name HAProxy would not accept.
    #[error(
        "backend {backend:?}: invalid name {name:?} (letters, digits, '-', '_', '.', ':'; at most 100)"
    )]
    InvalidName {
        /// The backend.
        backend: String,
        /// The refused name.
        name: String,
    },
    /// A dynamic backend would take the name of an operator's backend.
    #[error(
        "backend {backend:?}: the operator's config already has a backend of that name; the connector will not create or change it (rename the service or declare the backend custom)"
    )]
    NameCollision {
        /// The backend.
        backend: String,
    },
    /// A custom backend that HAProxy does not run.
    #[error("backend {backend:?}: declared custom, but HAProxy has no such backend")]
    NoSuchBackend {
        /// The backend.
        backend: String,
    },
    /// A custom backend that is one of the connector's own.
    #[error(
        "backend {backend:?}: declared custom, but it is a connector-owned (dynamic) backend in the managed file"
    )]
    ClassConflict {
        /// The backend.
        backend: String,
    },
    /// A server for an operator's backend without the connector's prefix:
    /// the connector could never tell it from the operator's own.
    #[error("backend {backend:?}: server {server:?} lacks the connector's prefix `_nomad-`")]
    NotConnectorServer {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
    },
    /// A weight above HAProxy's 256.
    #[error("backend {backend:?}: server {server:?} has weight {weight}, above HAProxy's 256")]
    WeightOutOfRange {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
        /// The weight.
        weight: u16,
    },
    /// HAProxy refused to add a server to the backend because of its
    /// balance algorithm (found on apply, for an operator's backend).
    #[error(
        "backend {backend:?}: HAProxy refuses servers added at runtime with its balance algorithm ({reply}); use roundrobin, leastconn, first, random or a consistent hash"
    )]
    StaticBalance {
        /// The backend.
        backend: String,
        /// HAProxy's reply.
        reply: String,
    },
    /// A domain pattern outside the grammar of its kind: never sent.
    #[error(
        "domain {pattern:?} ({} match) of backend {backend:?}: {reason}",
        kind_name(*.kind)
    )]
    InvalidDomain {
        /// How it matches.
        kind: DomainMatch,
        /// The pattern.
        pattern: String,
        /// The backend that claims it.
        backend: String,
        /// Why the grammar refuses it.
        reason: String,
    },
    /// A domain of a kind whose map the driver is configured without.
    #[error(
        "domain {pattern:?} ({} match) of backend {backend:?}: no domain_map_{} is configured in [haproxy]",
        kind_name(*.kind),
        kind_name(*.kind)
    )]
    DomainMapOff {
        /// How it matches.
        kind: DomainMatch,
        /// The pattern.
        pattern: String,
        /// The backend that claims it.
        backend: String,
    },
    /// A domain whose map HAProxy has not loaded: no frontend rule of the
    /// operator's uses the file, so the entry could not take effect.
    #[error(
        "domain {pattern:?} ({} match) of backend {backend:?}: HAProxy has not loaded the {} domain map; the operator's frontend must use it (see docs/haproxy-driver.md)",
        kind_name(*.kind),
        kind_name(*.kind)
    )]
    DomainMapNotLoaded {
        /// How it matches.
        kind: DomainMatch,
        /// The pattern.
        pattern: String,
        /// The backend that claims it.
        backend: String,
    },
    /// A domain routed to a backend the desired state lacks, or that is
    /// refused: requests would go to another backend (or none).
    #[error(
        "domain {pattern:?} ({} match): backend {backend:?} is not in the desired state or is refused",
        kind_name(*.kind)
    )]
    DomainBackendUnknown {
        /// How it matches.
        kind: DomainMatch,
        /// The pattern.
        pattern: String,
        /// The backend it names.
        backend: String,
    },
    /// HAProxy refused the entry (a regex its library cannot compile).
    #[error(
        "domain {pattern:?} ({} match) of backend {backend:?}: HAProxy refused it: {reply}",
        kind_name(*.kind)
    )]
    DomainRefused {
        /// How it matches.
        kind: DomainMatch,
        /// The pattern.
        pattern: String,
        /// The backend that claims it.
        backend: String,
        /// HAProxy's reply.
        reply: String,
    },
}

impl Refusal {
    /// The backend it concerns.
    pub fn backend(&self) -> &str {
        match self {
            Refusal::InvalidName { backend, .. }
            | Refusal::NameCollision { backend }
            | Refusal::NoSuchBackend { backend }
            | Refusal::ClassConflict { backend }
            | Refusal::NotConnectorServer { backend, .. }
            | Refusal::WeightOutOfRange { backend, .. }
            | Refusal::StaticBalance { backend, .. }
            | Refusal::InvalidDomain { backend, .. }
            | Refusal::DomainMapOff { backend, .. }
            | Refusal::DomainMapNotLoaded { backend, .. }
            | Refusal::DomainBackendUnknown { backend, .. }
            | Refusal::DomainRefused { backend, .. } => backend,
        }
    }

    /// Whether it refuses a whole backend (not one server or domain of it).
    pub fn refuses_backend(&self) -> bool {
        match self {
            Refusal::InvalidName { backend, name } => backend == name,
            Refusal::NameCollision { .. }
            | Refusal::NoSuchBackend { .. }
            | Refusal::ClassConflict { .. } => true,
            _ => false,
        }
    }

    /// Whether it refuses a domain map entry.
    pub fn is_domain(&self) -> bool {
        matches!(
            self,
            Refusal::InvalidDomain { .. }
                | Refusal::DomainMapOff { .. }
                | Refusal::DomainMapNotLoaded { .. }
                | Refusal::DomainBackendUnknown { .. }
                | Refusal::DomainRefused { .. }
        )
    }
}
