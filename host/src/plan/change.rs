//! The change set `diff` returns: server-level (runtime) and backend-level (reload) changes.

use super::model::ServerSpec;
use std::time::Duration;

/// What the driver must do to turn the actual state into the desired one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Server-level changes, applied over the runtime API, never reloading.
    pub servers: Vec<ServerChange>,
    /// Backend-level changes, applied by rendering the managed config file,
    /// validating it and reloading HAProxy (one reload for all of them).
    pub backends: Vec<BackendChange>,
    /// Parts of the desired state the connector will not apply, and why.
    pub refusals: Vec<Refusal>,
    /// Plan again after this long even if nothing else happens: the earliest
    /// end of a drain grace period.
    pub requeue_after: Option<Duration>,
}

impl ChangeSet {
    /// Nothing to do (refusals aside).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.backends.is_empty()
    }

    /// Whether applying needs a reload.
    pub fn needs_reload(&self) -> bool {
        !self.backends.is_empty()
    }

    pub(super) fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
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
            | Refusal::StaticBalance { backend, .. } => backend,
        }
    }
}
