//! The runtime driver's files: their durable writes, recorded for metrics and
//! `/readyz`, and the write of all of them after runtime changes, which
//! runs beside the syncs that follow.

use super::{MapFile, RETRY_FAILED};
use crate::haproxy::actual::{map_file, parse_show_map};
use crate::haproxy::driver::ApplyReport;
use crate::haproxy::error::{Error, Result};
use crate::haproxy::ledger::{Ledger, OwnedBackend, OwnedBackends};
use crate::haproxy::managed_file::{self, rename_durably, write_atomic};
use crate::haproxy::socket::Socket;
use crate::haproxy::state_files::{self, Dumped};
use crate::haproxy::stats::Stats;
use crate::vocab::syntax::Token;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Lets an apply whose changes reached HAProxy succeed when only its files
/// could not be written: the failure is already logged, counted and listed
/// for `/readyz` ([`Files::record_write`]); the write is retried soon.
/// Other errors pass.
///
/// # Errors
/// Any error but [`Error::WriteFailed`].
pub(super) fn tolerate(result: Result<()>, report: &mut ApplyReport) -> Result<()> {
    match result {
        Err(Error::WriteFailed { .. }) => {
            report.requeue(RETRY_FAILED);
            Ok(())
        }
        other => other,
    }
}

/// How often, at most, a write dumps the states of every backend rather
/// than of those its changes touched: a server whose first check passed
/// since is written UP within this long, while changes keep coming.
const DUMP_ALL_EVERY: Duration = Duration::from_secs(10);

/// The files the driver owns, and what writes them: shared with the write
/// in flight, so that a sync does not wait for the disk.
#[derive(Debug)]
pub(super) struct Files {
    /// The managed config file.
    pub managed: PathBuf,
    host_map: Option<PathBuf>,
    uri_map: Option<PathBuf>,
    /// The base path of the state-file shards.
    state_file: PathBuf,
    /// The same path, as the managed file names it.
    pub state_token: Token,
    domain_maps: Vec<MapFile>,
    stats_socket: Socket,
    stats: Arc<Stats>,
    /// What the writes wrote last; held by the write running.
    written: Mutex<Written>,
}

/// What the writes wrote last, so that a write after a few changes renders
/// and dumps only what they touched.
#[derive(Debug)]
struct Written {
    /// Each backend's section of the managed file, with the backend it was
    /// rendered from: while this copy is held, a change to the backend
    /// copies it ([`Arc::make_mut`]), so the same pointer means the same
    /// section.
    sections: HashMap<String, (Arc<OwnedBackend>, String)>,
    /// The states last dumped, per backend.
    dumped: Dumped,
    /// When every backend's states were last dumped.
    dumped_all: Option<Instant>,
    /// [`state_files::signature`] of each state-file shard written last.
    signatures: Vec<u64>,
}

/// The ledger's files as of one moment: what a write of all files writes.
#[derive(Debug)]
pub(super) struct Contents {
    dynamic: OwnedBackends,
    host_map: Option<String>,
    uri_map: Option<String>,
}

impl Files {
    /// The driver's files at these paths; `stats` records their writes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        managed: PathBuf,
        host_map: Option<PathBuf>,
        uri_map: Option<PathBuf>,
        state_file: PathBuf,
        state_token: Token,
        domain_maps: Vec<MapFile>,
        stats_socket: Socket,
        stats: Arc<Stats>,
    ) -> Files {
        Files {
            managed,
            host_map,
            uri_map,
            state_file,
            state_token,
            domain_maps,
            stats_socket,
            stats,
            written: Mutex::new(Written {
                sections: HashMap::new(),
                dumped: Dumped::default(),
                dumped_all: None,
                signatures: vec![0; state_files::SHARDS],
            }),
        }
    }

    /// What [`Files::write_all`] writes for `ledger` (its backends are
    /// shared, not copied).
    pub fn contents(&self, ledger: &Ledger) -> Contents {
        Contents {
            dynamic: ledger.dynamic.clone(),
            host_map: self.host_map.as_ref().map(|_| ledger.host_map()),
            uri_map: self.uri_map.as_ref().map(|_| ledger.uri_map()),
        }
    }

    /// Rewrites the managed file and the Host and URI maps from `contents`,
    /// and dumps the states and the domain maps as HAProxy holds them (in
    /// its order, so that the precedence of regexes survives a reload or
    /// restart). A domain map HAProxy has not loaded keeps its file.
    ///
    /// The states are dumped of the backends in `changed` only (of every
    /// backend with `None`, at the first write, and every
    /// [`DUMP_ALL_EVERY`]): the other backends' lines stay as dumped last.
    /// Checks move their states, which these dumps of every backend and
    /// each resync's ([`Files::refresh_states`]) bring in.
    ///
    /// # Errors
    /// A file cannot be written, or HAProxy cannot be reached.
    pub async fn write_all(
        &self,
        contents: Contents,
        changed: Option<BTreeSet<String>>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut written = self.written.lock().await;
        let text = render(&mut written.sections, &contents.dynamic, &self.state_token);
        let rendered = started.elapsed();
        self.write("config", &self.managed, &text).await?;
        self.write_maps(contents.host_map.as_deref(), contents.uri_map.as_deref())
            .await?;
        let configured = started.elapsed();
        // Managed backends have valid names: each may reach the socket.
        let due = written
            .dumped_all
            .is_none_or(|at| at.elapsed() >= DUMP_ALL_EVERY);
        let changed = changed
            .filter(|_| written.dumped.is_complete() && !due)
            .map(|c| {
                c.into_iter()
                    .filter(|b| contents.dynamic.contains_key(b))
                    .collect::<BTreeSet<_>>()
            });
        let mut commands: Vec<String> = match &changed {
            None => vec!["show servers state".into()],
            Some(changed) => changed
                .iter()
                .map(|b| format!("show servers state {b}"))
                .collect(),
        };
        let states = commands.len();
        commands.extend(self.domain_maps.iter().map(MapFile::show));
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let replies = if commands.is_empty() {
            Vec::new()
        } else {
            self.stats_socket.batch(&commands).await?
        };
        if replies.len() != commands.len() {
            return Err(Error::BadReply {
                what: "show servers state",
                reply: replies.concat().chars().take(200).collect(),
            });
        }
        let (dumps, maps) = replies.split_at(states);
        let dumped = started.elapsed();
        match &changed {
            None => {
                written.dumped.update(&dumps[0], &contents.dynamic, None);
                written.dumped_all = Some(Instant::now());
            }
            Some(changed) => {
                for (backend, dump) in changed.iter().zip(dumps) {
                    let one = BTreeSet::from([backend.clone()]);
                    written.dumped.update(dump, &contents.dynamic, Some(&one));
                }
            }
        }
        let shards = written.dumped.shards();
        let sharded = started.elapsed();
        write_states(self, &mut written.signatures, shards).await?;
        for (map, reply) in self.domain_maps.iter().zip(maps) {
            if let Some(entries) = parse_show_map(reply)? {
                self.write("map", &map.path, &map_file(&entries)).await?;
            }
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            took_ms = ms(started.elapsed()),
            render_ms = ms(rendered),
            config_ms = ms(configured - rendered),
            dump_ms = ms(dumped - configured),
            shard_ms = ms(sharded - dumped),
            states_ms = ms(started.elapsed() - sharded),
            "runtime changes written to the files"
        );
        Ok(())
    }

    /// Takes a dump of every backend (from a sync's read) and writes the
    /// state-file shards it changes.
    ///
    /// # Errors
    /// [`Error::WriteFailed`] for the first shard that could not be written.
    pub async fn refresh_states(&self, dump: &str, backends: &OwnedBackends) -> Result<()> {
        let mut written = self.written.lock().await;
        written.dumped.update(dump, backends, None);
        written.dumped_all = Some(Instant::now());
        let shards = written.dumped.shards();
        write_states(self, &mut written.signatures, shards).await
    }

    /// Writes these state-file shards (a reload's), where they differ from
    /// what was written last.
    ///
    /// # Errors
    /// [`Error::WriteFailed`] for the first shard that could not be written.
    pub async fn write_states(&self, shards: Vec<String>) -> Result<()> {
        let mut written = self.written.lock().await;
        write_states(self, &mut written.signatures, shards).await
    }

    /// Rewrites the configured Host and URI maps from `ledger`.
    ///
    /// # Errors
    /// [`Error::WriteFailed`] naming the map.
    pub async fn write_ledger_maps(&self, ledger: &Ledger) -> Result<()> {
        let contents = self.contents(ledger);
        self.write_maps(contents.host_map.as_deref(), contents.uri_map.as_deref())
            .await
    }

    async fn write_maps(&self, host: Option<&str>, uri: Option<&str>) -> Result<()> {
        for (path, text) in [(&self.host_map, host), (&self.uri_map, uri)] {
            if let (Some(path), Some(text)) = (path, text) {
                self.write("map", path, text).await?;
            }
        }
        Ok(())
    }

    /// Writes one of the connector's files durably ([`write_atomic`]) and
    /// records the outcome ([`Files::record_write`]); `kind` is the
    /// metric's `file` label.
    ///
    /// # Errors
    /// [`Error::WriteFailed`]: the old file stays.
    pub async fn write(&self, kind: &'static str, path: &Path, text: &str) -> Result<()> {
        let result = write_atomic(path, text).await;
        self.record_write(kind, path, result)
    }

    /// Renames a written candidate over the managed config, durably, and
    /// records the outcome as a write of the managed config.
    ///
    /// # Errors
    /// [`Error::WriteFailed`]: the old managed config stays.
    pub async fn install(&self, candidate: &Path) -> Result<()> {
        let result = rename_durably(candidate, &self.managed).await;
        self.record_write("config", &self.managed, result)
    }

    /// Records a write: a failure is logged as an ERROR naming the file and
    /// the cause, counted, and listed in [`super::Snapshot::unwritten`]
    /// (which makes `/readyz` fail) until a write of that file succeeds.
    fn record_write(&self, kind: &'static str, path: &Path, result: Result<()>) -> Result<()> {
        match &result {
            Ok(()) => self.stats.update(|s| {
                s.unwritten.remove(path);
            }),
            Err(e) => {
                let cause = match e {
                    Error::WriteFailed { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                tracing::error!(
                    file = %path.display(),
                    error = %cause,
                    "cannot write a file the connector owns; the old one stays, retrying"
                );
                self.stats.update(|s| {
                    *s.writes_failed.entry(kind).or_default() += 1;
                    s.unwritten.insert(path.into(), cause);
                });
            }
        }
        result
    }
}

/// Writes the state-file shards whose states differ from what was written
/// last (`signatures`), all at once.
async fn write_states(files: &Files, signatures: &mut [u64], shards: Vec<String>) -> Result<()> {
    let mut writes = tokio::task::JoinSet::new();
    for (n, text) in shards.into_iter().enumerate() {
        let signature = state_files::signature(&text);
        if signatures.get(n) == Some(&signature) {
            continue;
        }
        let path = state_files::path(&files.state_file, n);
        writes.spawn(async move {
            let written = write_atomic(&path, &text).await;
            (n, signature, path, written)
        });
    }
    let mut failed = None;
    while let Some(joined) = writes.join_next().await {
        let (n, signature, path, written) = joined.map_err(|e| Error::WriteFailed {
            path: files.state_file.clone(),
            source: std::io::Error::other(e),
        })?;
        match files.record_write("state", &path, written) {
            Ok(()) => signatures[n] = signature,
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Renders the managed file, reusing the section of every backend that has
/// not changed since `sections` was filled (and keeping only the current
/// backends' sections).
fn render(
    sections: &mut HashMap<String, (Arc<OwnedBackend>, String)>,
    backends: &OwnedBackends,
    state_token: &Token,
) -> String {
    let mut text = String::from(managed_file::HEADER);
    let mut kept = HashMap::with_capacity(backends.len());
    for (name, backend) in backends {
        let section = match sections.remove(name) {
            Some((was, section)) if Arc::ptr_eq(&was, backend) => section,
            _ => {
                let mut section = managed_file::section(name, backend, state_token);
                // Kept until the backend changes: without its spare capacity.
                section.shrink_to_fit();
                section
            }
        };
        text.push_str(&section);
        kept.insert(name.clone(), (Arc::clone(backend), section));
    }
    *sections = kept;
    text
}
