//! The runtime driver: HAProxy's stats and master sockets plus the managed files.
//!
//! Server changes go over the stats socket, all of one apply in one batch
//! (in `prompt` mode, split over connections of at most 8 KiB of commands
//! each, which every version takes whole). Backend changes render the managed config file, pass
//! `haproxy -c` with the operator's config, dump the server states, and
//! reload through the master socket; the reload is confirmed when a new
//! worker answers on the stats socket. Domain map entries change over the
//! stats socket too (`add map`, `set map`, `del map`), in the same batch.
//! After every applied change the managed file, the Host and URI maps, the
//! domain maps (as HAProxy holds them) and the state file are rewritten
//! atomically, so a reload or a restart from config brings everything back.

use super::actual::{Drains, assemble, parse_backends, parse_servers_state, parse_show_map};
use super::config::Config;
use super::driver::{ApplyReport, Driver, ReloadOutcome};
use super::error::{Error, Result};
use super::ledger::Ledger;
use super::managed_file::{self, write_atomic};
use super::reload::{self, Gate, ReloadGate};
use super::socket::Socket;
use super::stats::{Snapshot, Stats};
use super::validate::ConfigAlert;
use super::version::Version;
use crate::plan::model::DomainMap;
use crate::plan::{Actual, BackendChange, ChangeSet, Desired, ServerAction, diff, diff_within};
use crate::vocab::DomainMatch;
use crate::vocab::names;
use crate::vocab::syntax::Token;
use files::Files;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

mod batch;
mod files;
mod reconfigure;

/// How soon a failed server change is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(1);
/// How soon a failed reload is tried again (a refused render is not: it
/// waits for the desired state to change).
const RETRY_RELOAD: Duration = Duration::from_secs(5);
/// How often, at most, a sync that changed nothing compares the server
/// states with the state file, and rewrites it if they differ: it is
/// written with every change, when a new server has not passed its first
/// check yet, so a crash long after would otherwise restart HAProxy with
/// healthy servers DOWN until their next check.
const STATE_REFRESH: Duration = Duration::from_secs(1);
/// How often, at most, runtime changes are written to the managed file,
/// the maps and the state file: the passes of a burst share one write
/// instead of each starting one, and the pass requeued after this long
/// writes what they left. The write runs beside the syncs that follow (at
/// 10,000 servers it takes 100 ms and more); a reload waits for it and
/// writes at once, and so does [`RuntimeDriver::flush`] (at shutdown).
const PERSIST_EVERY: Duration = Duration::from_millis(500);
/// A pass that touches more backends than this reads them all at once.
const MAX_SCOPE: usize = 256;

/// The default driver: runtime API first, validated reloads for the rest.
#[derive(Debug)]
pub struct RuntimeDriver {
    config: Config,
    stats_socket: Socket,
    master: Socket,
    version: Version,
    host_map: Option<Token>,
    uri_map: Option<Token>,
    domain_maps: Vec<MapFile>,
    inner: Mutex<State>,
    stats: Arc<Stats>,
    files: Arc<Files>,
}

/// A configured domain map file.
#[derive(Debug, Clone)]
struct MapFile {
    kind: DomainMatch,
    path: PathBuf,
    /// The path as HAProxy's CLI names the map (`show map <token>`).
    token: Token,
}

impl MapFile {
    fn show(&self) -> String {
        format!("show map {}", self.token)
    }
}

#[derive(Debug)]
struct State {
    ledger: Ledger,
    drains: Drains,
    gate: ReloadGate,
    /// The last render `haproxy -c` refused: not validated (nor logged as
    /// an error) again until the desired state changes.
    rejected: Option<(String, Vec<ConfigAlert>, PathBuf)>,
    /// How many entries HAProxy held of each domain map key at the last
    /// read (more than one after an operator's duplicate `add map`).
    held: BTreeMap<(DomainMatch, String), usize>,
    /// The last `show servers state` read, while a refresh of the state
    /// file is due.
    dump: Option<String>,
    /// When the state file was last written or compared.
    state_checked: Instant,
    /// When the runtime changes were last written to the files (or that
    /// write started).
    persisted: Option<Instant>,
    /// Runtime changes applied since then (or that write failed).
    unpersisted: bool,
    /// The write of the files running beside the syncs.
    writing: Option<JoinHandle<Result<()>>>,
    /// The backends whose servers changed since the last write started:
    /// the next one dumps their states.
    unwritten: BTreeSet<String>,
    /// The next write dumps every backend's states (a write failed).
    dump_all: bool,
    /// The next sync compares every backend: the last one left changes
    /// for later (a deferred or failed reload, a failed command).
    compare_all: bool,
}

fn path_token(path: &Path) -> Result<Token> {
    Token::restricted("path", &path.to_string_lossy(), "/._-+@", 512)
        .ok()
        .filter(|_| path.is_absolute())
        .ok_or_else(|| Error::UnsafePath { path: path.into() })
}

/// Creates a map file empty when missing: HAProxy refuses a config that
/// names a missing map.
async fn ensure_exists(path: &Path) -> Result<()> {
    match tokio::fs::metadata(path).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomic(path, "").await,
        Err(source) => Err(Error::ReadFailed {
            path: path.into(),
            source,
        }),
    }
}

/// Reads a map file the driver wrote; creates it empty when missing (HAProxy
/// needs every map its config names to exist).
async fn read_map(path: Option<&Path>, set: impl FnMut(&str, &str)) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    match tokio::fs::read_to_string(path).await {
        Ok(text) => {
            managed_file::parse_map(&text, set);
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
    /// (creating it, the Host and URI maps and the domain maps when missing).
    ///
    /// # Errors
    /// A domain map sharing its path with another map, a path HAProxy's
    /// config cannot take (or a relative one), HAProxy's stats or master
    /// socket unreachable, HAProxy older than 2.6, or a managed file the
    /// connector did not write.
    pub async fn start(config: Config) -> Result<RuntimeDriver> {
        let state_file = path_token(&config.state_file)?;
        let host_map = config.host_map.as_deref().map(path_token).transpose()?;
        let uri_map = config.uri_map.as_deref().map(path_token).transpose()?;
        let mut domain_maps = Vec::new();
        let mut paths: BTreeSet<&Path> = [&config.host_map, &config.uri_map]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect();
        for kind in [DomainMatch::Exact, DomainMatch::Prefix, DomainMatch::Regex] {
            if let Some(path) = config.domain_map(kind) {
                if !paths.insert(path) {
                    return Err(Error::MapPathShared { path: path.into() });
                }
                let token = path_token(path)?;
                domain_maps.push(MapFile {
                    kind,
                    path: path.to_path_buf(),
                    token,
                });
            }
        }
        let stats_socket = Socket::new(&config.stats_socket, config.socket_timeout());
        let master = Socket::new(&config.master_socket, config.socket_timeout());
        let version = Version::from_show_info(&stats_socket.send("show info").await?)?;
        version.ensure_supported()?;
        // Reloads need the master socket: find out now, not at the first one.
        reload::parse_show_proc(&master.send("show proc").await?)?;
        let managed = &config.managed_config;
        let ledger = match tokio::fs::read_to_string(managed).await {
            Ok(text) => Ledger {
                dynamic: managed_file::parse(&text, managed)?,
                ..Ledger::default()
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ledger = Ledger::default();
                write_atomic(managed, &managed_file::render(&ledger.dynamic, &state_file)).await?;
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
        for map in &domain_maps {
            ensure_exists(&map.path).await?;
        }
        tracing::info!(
            version = %version,
            capabilities = ?version.capabilities(),
            managed_backends = ledger.dynamic.len(),
            "haproxy driver ready"
        );
        let stats = Arc::new(Stats::default());
        let files = Files::new(
            config.managed_config.clone(),
            config.host_map.clone(),
            config.uri_map.clone(),
            config.state_file.clone(),
            state_file,
            domain_maps.clone(),
            stats_socket.clone(),
            Arc::clone(&stats),
        );
        Ok(RuntimeDriver {
            stats_socket,
            master,
            version,
            host_map,
            uri_map,
            domain_maps,
            inner: Mutex::new(State {
                ledger,
                drains: Drains::new(),
                gate: ReloadGate::new(config.reload_delay()),
                rejected: None,
                held: BTreeMap::new(),
                dump: None,
                state_checked: Instant::now(),
                persisted: None,
                unpersisted: false,
                writing: None,
                unwritten: BTreeSet::new(),
                dump_all: true,
                compare_all: true,
            }),
            stats,
            files: Arc::new(files),
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

    /// Writes the runtime changes not yet in the managed file, the maps and
    /// the state file (they are written at most every 500 ms otherwise,
    /// beside the syncs), after the write in flight.
    ///
    /// # Errors
    /// HAProxy cannot be reached, or a file cannot be written.
    pub async fn flush(&self) -> Result<()> {
        let mut st = self.inner.lock().await;
        let written = self.finish_write(&mut st).await;
        if st.unpersisted {
            return self.persist(&mut st).await;
        }
        written
    }

    /// Reads the backends, the domain maps and the servers of the backends
    /// in `scope` (of every backend with `None`).
    async fn read_actual(
        &self,
        st: &mut State,
        scope: Option<&BTreeSet<String>>,
    ) -> Result<Actual> {
        let shows: Vec<String> = self.domain_maps.iter().map(MapFile::show).collect();
        // Only valid names reach the socket; the others are refused anyway.
        let states: Vec<String> = match scope {
            None => vec!["show servers state".into()],
            Some(scope) => scope
                .iter()
                .filter(|b| names::is_valid(b))
                .map(|b| format!("show servers state {b}"))
                .collect(),
        };
        let mut commands = vec!["show backend"];
        commands.extend(states.iter().map(String::as_str));
        commands.extend(shows.iter().map(String::as_str));
        let mut replies = self.stats_socket.batch(&commands).await?;
        if replies.len() != commands.len() {
            return Err(Error::BadReply {
                what: "show backend; show servers state; show map",
                reply: replies.concat().chars().take(200).collect(),
            });
        }
        let running = parse_backends(&replies[0]);
        let mut rows = Vec::new();
        for (command, reply) in states.iter().zip(&replies[1..=states.len()]) {
            // A backend HAProxy does not run answers "Can't find backend.".
            let backend = command.strip_prefix("show servers state ");
            if backend.is_some_and(|b| !running.iter().any(|r| r == b)) {
                continue;
            }
            rows.extend(parse_servers_state(reply)?);
        }
        let maps = &replies[1 + states.len()..];
        let State { ledger, drains, .. } = st;
        let mut actual = assemble(
            &running,
            rows,
            scope,
            ledger,
            drains,
            Instant::now(),
            self.config.drain_grace(),
        );
        st.held.clear();
        for (map, reply) in self.domain_maps.iter().zip(maps) {
            let held = match parse_show_map(reply)? {
                Some(entries) => {
                    for (pattern, _) in &entries {
                        *st.held.entry((map.kind, pattern.to_string())).or_default() += 1;
                    }
                    DomainMap::loaded(entries)
                }
                None => DomainMap::NotLoaded,
            };
            actual.domain_maps.insert(map.kind, held);
        }
        // The state file is compared with a full read only.
        if scope.is_none() && st.state_checked.elapsed() >= STATE_REFRESH {
            st.dump = replies.get_mut(1).map(std::mem::take);
        }
        Ok(actual)
    }
}

/// Up to ten names, then how many more: a log line stays readable when a
/// start-up reload creates thousands of backends.
fn named(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        text.push_str(&format!(" and {} more", names.len() - 10));
    }
    text
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
        self.read_actual(&mut st, None).await
    }

    async fn sync_within(
        &self,
        desired: &Desired,
        scope: &BTreeSet<String>,
    ) -> Result<ApplyReport> {
        let started = Instant::now();
        let (actual, scope) = {
            let mut st = self.inner.lock().await;
            // Backends with a draining server: their grace may have ended.
            let mut scope = scope.clone();
            scope.extend(st.drains.keys().map(|(backend, _)| backend.clone()));
            let scope = (!st.compare_all && scope.len() <= MAX_SCOPE).then_some(scope);
            (self.read_actual(&mut st, scope.as_ref()).await?, scope)
        };
        let read = started.elapsed();
        let changes = diff_within(desired, &actual, scope.as_ref());
        let diffed = started.elapsed();
        let report = self.apply(desired, &changes).await;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            compared = scope.as_ref().map_or("all".into(), |s| s.len().to_string()),
            read_ms = ms(read),
            diff_ms = ms(diffed - read),
            apply_ms = ms(started.elapsed() - diffed),
            "haproxy synced"
        );
        report
    }

    async fn apply(&self, desired: &Desired, changes: &ChangeSet) -> Result<ApplyReport> {
        let mut st = self.inner.lock().await;
        // A reload writes the files: the write in flight, with older
        // contents, must land first. Otherwise only a finished write is
        // collected; a failed one is written again below.
        let written = if changes.needs_reload() {
            self.finish_write(&mut st).await
        } else {
            self.reap_write(&mut st).await
        };
        st.ledger.adopt(desired, changes);
        let mut report = ApplyReport {
            refusals: changes.refusals.clone(),
            ..ApplyReport::default()
        };
        if let Some(after) = changes.requeue_after {
            report.requeue(after);
        }
        let mut servers = changes.servers.clone();
        let mut domains = changes.domains.clone();
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
            match self
                .reload_isolating(&mut st, desired, &changes.backends, &changes.servers)
                .await
            {
                Ok(done) => {
                    let backends = done.backends;
                    // The servers of the backends it created came with it.
                    let reloaded: BTreeSet<&String> = backends.iter().collect();
                    report.applied.extend(
                        changes
                            .servers
                            .iter()
                            .filter(|c| {
                                waiting.contains(&c.backend)
                                    && reloaded.contains(&c.backend)
                                    && matches!(c.action, ServerAction::Add(_))
                            })
                            .cloned(),
                    );
                    tracing::info!(
                        worker = done.reloaded.worker_pid,
                        changed = backends.len(),
                        backends = %named(&backends),
                        "haproxy reloaded"
                    );
                    report.reload = ReloadOutcome::Done {
                        worker_pid: done.reloaded.worker_pid,
                        backends,
                        held_back: done.held_back,
                    };
                    restore_up = done.restore_up;
                    // The reload changed what HAProxy runs (new backends,
                    // operator backends that lost runtime servers): plan
                    // the server changes again from a fresh snapshot.
                    let fresh = self.read_actual(&mut st, None).await?;
                    let again = diff(desired, &fresh);
                    servers = again.servers.clone();
                    domains = again.domains.clone();
                    waiting = creates(&again);
                    report.refusals = again.refusals.clone();
                    if let Some(after) = again.requeue_after {
                        report.requeue(after);
                    }
                }
                Err(Error::ValidationFailed { alerts, kept_at }) => {
                    report.reload = ReloadOutcome::Rejected { alerts, kept_at };
                }
                // A file that cannot be written (already logged and
                // counted) holds back the reload, not the server changes.
                Err(
                    e @ (Error::ReloadFailed { .. }
                    | Error::ManagedFileNotLoaded { .. }
                    | Error::WriteFailed { .. }),
                ) => {
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
        // A domain entry never routes to a backend HAProxy does not run yet.
        let (domains, held): (Vec<_>, Vec<_>) = domains
            .into_iter()
            .partition(|c| !c.backend().is_some_and(|b| waiting.contains(b)));
        report.waiting_domains = held.len();
        self.run(&mut st, &todo, &domains, &restore_up, &mut report)
            .await?;
        let changed = !report.applied.is_empty() || !report.applied_domains.is_empty();
        st.unwritten
            .extend(report.applied.iter().map(|c| c.backend.clone()));
        let reloaded = matches!(report.reload, ReloadOutcome::Done { .. });
        if changed || reloaded || st.unpersisted {
            let wait = st.persisted.map_or(Duration::ZERO, |at| {
                PERSIST_EVERY.saturating_sub(at.elapsed())
            });
            if reloaded {
                files::tolerate(self.persist(&mut st).await, &mut report)?;
            } else if wait.is_zero() {
                self.persist_later(&mut st);
            } else {
                st.unpersisted = true;
                report.requeue(wait);
            }
        } else if st.writing.is_none()
            && let Some(dump) = st.dump.take()
        {
            let refreshed = self.files.refresh_states(&dump, &st.ledger.dynamic).await;
            files::tolerate(refreshed, &mut report)?;
            st.state_checked = Instant::now();
        }
        st.dump = None;
        // A write still running is collected by a later pass: if it fails,
        // that pass writes again.
        if st.writing.is_some() {
            report.requeue(PERSIST_EVERY);
        }
        files::tolerate(written, &mut report)?;
        if !report.failed.is_empty() || !report.failed_domains.is_empty() {
            report.requeue(RETRY_FAILED);
        }
        // What waits for a retry is compared again with everything else (a
        // refused render is not: it waits for the desired state to change).
        st.compare_all = !report.failed.is_empty()
            || !report.failed_domains.is_empty()
            || matches!(
                report.reload,
                ReloadOutcome::Deferred(_) | ReloadOutcome::Failed { .. }
            );
        self.stats
            .update(|s| s.refusals += report.refusals.len() as u64);
        Ok(report)
    }
}
