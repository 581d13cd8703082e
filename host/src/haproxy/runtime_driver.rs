//! The runtime driver: HAProxy's stats and master sockets plus the managed files.
//!
//! Server changes go over the stats socket, all of one apply in one batch
//! on one connection. Backend changes render the managed config file, pass
//! `haproxy -c` with the operator's config, dump the server states, and
//! reload through the master socket; the reload is confirmed when a new
//! worker answers on the stats socket. After every applied change the
//! managed file, the Host map and the state file are rewritten atomically,
//! so a reload or a restart from config brings everything back.

use super::actual::{Drains, assemble, parse_backends, parse_servers_state};
use super::config::Config;
use super::config_file::{self, write_atomic};
use super::driver::{ApplyReport, Driver, ReloadOutcome};
use super::error::{Error, Result};
use super::ledger::Ledger;
use super::reload::{self, Gate, ReloadGate};
use super::runtime::Socket;
use super::stats::{Snapshot, Stats};
use super::syntax::Token;
use super::validate::ConfigAlert;
use super::version::Version;
use crate::plan::{Actual, BackendChange, ChangeSet, Desired, diff};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

mod batch;
mod reconfigure;

/// How soon a failed server change is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(1);
/// How soon a failed reload is tried again (a refused render is not: it
/// waits for the desired state to change).
const RETRY_RELOAD: Duration = Duration::from_secs(5);

/// The default driver: runtime API first, validated reloads for the rest.
#[derive(Debug)]
pub struct RuntimeDriver {
    config: Config,
    stats_socket: Socket,
    master: Socket,
    version: Version,
    state_file: Token,
    host_map: Option<Token>,
    uri_map: Option<Token>,
    inner: Mutex<State>,
    stats: Stats,
}

#[derive(Debug)]
struct State {
    ledger: Ledger,
    drains: Drains,
    gate: ReloadGate,
    /// The last render `haproxy -c` refused: not validated (nor logged as
    /// an error) again until the desired state changes.
    rejected: Option<(String, Vec<ConfigAlert>, PathBuf)>,
}

fn path_token(path: &Path) -> Result<Token> {
    Token::restricted("path", &path.to_string_lossy(), "/._-+@", 512)
        .ok()
        .filter(|_| path.is_absolute())
        .ok_or_else(|| Error::UnsafePath { path: path.into() })
}

/// Reads a map file the driver wrote; creates it empty when missing (HAProxy
/// needs every map its config names to exist).
async fn read_map(path: Option<&Path>, set: impl FnMut(&str, &str)) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    match tokio::fs::read_to_string(path).await {
        Ok(text) => {
            config_file::parse_map(&text, set);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomic(path, "").await,
        Err(source) => Err(Error::ReadFailed {
            path: path.into(),
            source,
        }),
    }
}

impl RuntimeDriver {
    /// Connects to HAProxy, detects its version and reads the managed file
    /// (creating it, and the Host map, when missing).
    ///
    /// # Errors
    /// A path HAProxy's config cannot take (or a relative one), HAProxy's
    /// stats or master socket unreachable, HAProxy older than 2.6, or a
    /// managed file the connector did not write.
    pub async fn start(config: Config) -> Result<RuntimeDriver> {
        let state_file = path_token(&config.state_file)?;
        let host_map = config.host_map.as_deref().map(path_token).transpose()?;
        let uri_map = config.uri_map.as_deref().map(path_token).transpose()?;
        let stats_socket = Socket::new(&config.stats_socket, config.socket_timeout());
        let master = Socket::new(&config.master_socket, config.socket_timeout());
        let version = Version::from_show_info(&stats_socket.send("show info").await?)?;
        version.ensure_supported()?;
        // Reloads need the master socket: find out now, not at the first one.
        reload::parse_show_proc(&master.send("show proc").await?)?;
        let managed = &config.managed_config;
        let ledger = match tokio::fs::read_to_string(managed).await {
            Ok(text) => Ledger {
                dynamic: config_file::parse(&text, managed)?,
                ..Ledger::default()
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ledger = Ledger::default();
                write_atomic(managed, &config_file::render(&ledger.dynamic, &state_file)).await?;
                ledger
            }
            Err(source) => {
                return Err(Error::ReadFailed {
                    path: managed.clone(),
                    source,
                });
            }
        };
        let mut ledger = ledger;
        read_map(config.host_map.as_deref(), |k, v| {
            ledger.maps.entry(k.into()).or_default().host = Some(v.into());
        })
        .await?;
        read_map(config.uri_map.as_deref(), |k, v| {
            ledger.maps.entry(k.into()).or_default().uri = Some(v.into());
        })
        .await?;
        tracing::info!(
            version = %version,
            capabilities = ?version.capabilities(),
            managed_backends = ledger.dynamic.len(),
            "haproxy driver ready"
        );
        Ok(RuntimeDriver {
            stats_socket,
            master,
            version,
            state_file,
            host_map,
            uri_map,
            inner: Mutex::new(State {
                ledger,
                drains: Drains::new(),
                gate: ReloadGate::new(config.reload_delay()),
                rejected: None,
            }),
            stats: Stats::default(),
            config,
        })
    }

    /// The HAProxy version detected at start.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The driver's counters.
    pub fn stats(&self) -> Snapshot {
        self.stats.snapshot()
    }

    async fn read_actual(&self, st: &mut State) -> Result<Actual> {
        let replies = self
            .stats_socket
            .batch(&["show backend", "show servers state"])
            .await?;
        let [backends, state] = replies.as_slice() else {
            return Err(Error::BadReply {
                what: "show backend; show servers state",
                reply: replies.concat().chars().take(200).collect(),
            });
        };
        let rows = parse_servers_state(state)?;
        let State { ledger, drains, .. } = st;
        Ok(assemble(
            &parse_backends(backends),
            rows,
            ledger,
            drains,
            Instant::now(),
            self.config.drain_grace(),
        ))
    }
}

fn creates(changes: &ChangeSet) -> BTreeSet<String> {
    changes
        .backends
        .iter()
        .filter(|c| matches!(c, BackendChange::Create(_)))
        .map(|c| c.backend().to_string())
        .collect()
}

impl Driver for RuntimeDriver {
    async fn actual(&self) -> Result<Actual> {
        let mut st = self.inner.lock().await;
        self.read_actual(&mut st).await
    }

    async fn apply(&self, desired: &Desired, changes: &ChangeSet) -> Result<ApplyReport> {
        let mut st = self.inner.lock().await;
        st.ledger.adopt(desired, changes);
        let mut report = ApplyReport {
            refusals: changes.refusals.clone(),
            ..ApplyReport::default()
        };
        if let Some(after) = changes.requeue_after {
            report.requeue(after);
        }
        let mut servers = changes.servers.clone();
        let mut waiting = creates(changes);
        let mut restore_up = BTreeSet::new();
        if !changes.needs_reload() {
            st.gate.close();
        } else if let Gate::Wait(after) = st.gate.poll(Instant::now()) {
            self.stats.update(|s| s.reloads_deferred += 1);
            report.reload = ReloadOutcome::Deferred(after);
            report.requeue(after);
        } else {
            st.gate.close();
            let backends = changes
                .backends
                .iter()
                .map(|c| c.backend().to_string())
                .collect();
            match self.reload(&mut st, desired, &changes.backends).await {
                Ok((reloaded, up)) => {
                    tracing::info!(worker = reloaded.worker_pid, ?backends, "haproxy reloaded");
                    report.reload = ReloadOutcome::Done {
                        worker_pid: reloaded.worker_pid,
                        backends,
                    };
                    restore_up = up;
                    // The reload changed what HAProxy runs (new backends,
                    // operator backends that lost runtime servers): plan
                    // the server changes again from a fresh snapshot.
                    let fresh = self.read_actual(&mut st).await?;
                    let again = diff(desired, &fresh);
                    servers = again.servers.clone();
                    waiting = creates(&again);
                    report.refusals = again.refusals.clone();
                    if let Some(after) = again.requeue_after {
                        report.requeue(after);
                    }
                }
                Err(Error::ValidationFailed { alerts, kept_at }) => {
                    report.reload = ReloadOutcome::Rejected { alerts, kept_at };
                }
                Err(e @ (Error::ReloadFailed { .. } | Error::ManagedFileNotLoaded { .. })) => {
                    tracing::error!(error = %e, "haproxy reload failed");
                    report.reload = ReloadOutcome::Failed {
                        reason: e.to_string(),
                    };
                    report.requeue(RETRY_RELOAD);
                }
                Err(e) => return Err(e),
            }
        }
        let (todo, later): (Vec<_>, Vec<_>) = servers
            .into_iter()
            .partition(|c| !waiting.contains(&c.backend));
        report.waiting = later.len();
        self.run(&mut st, &todo, &restore_up, &mut report).await?;
        if !report.applied.is_empty() || matches!(report.reload, ReloadOutcome::Done { .. }) {
            self.persist(&st).await?;
        }
        if !report.failed.is_empty() {
            report.requeue(RETRY_FAILED);
        }
        self.stats
            .update(|s| s.refusals += report.refusals.len() as u64);
        Ok(report)
    }
}
