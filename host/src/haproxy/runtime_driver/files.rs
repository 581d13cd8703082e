//! The runtime driver's files: their durable writes, recorded for metrics and
//! `/readyz`, and the write of all of them after runtime changes, which
//! runs beside the syncs that follow.

use super::{MapFile, RETRY_FAILED};
use crate::haproxy::actual::{map_file, parse_show_map};
use crate::haproxy::driver::ApplyReport;
use crate::haproxy::error::{Error, Result};
use crate::haproxy::ledger::{Ledger, OwnedBackends};
use crate::haproxy::managed_file::{self, rename_durably, write_atomic};
use crate::haproxy::socket::Socket;
use crate::haproxy::state_files;
use crate::haproxy::stats::Stats;
use crate::vocab::syntax::Token;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
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
    /// [`state_files::signature`] of each state-file shard written last.
    signatures: Mutex<Vec<u64>>,
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
            signatures: Mutex::new(vec![0; state_files::SHARDS]),
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
    /// # Errors
    /// A file cannot be written, or HAProxy cannot be reached.
    pub async fn write_all(&self, contents: Contents) -> Result<()> {
        let started = Instant::now();
        let text = managed_file::render(&contents.dynamic, &self.state_token);
        self.write("config", &self.managed, &text).await?;
        self.write_maps(contents.host_map.as_deref(), contents.uri_map.as_deref())
            .await?;
        let shows: Vec<String> = self.domain_maps.iter().map(MapFile::show).collect();
        let mut dumps = vec!["show servers state"];
        dumps.extend(shows.iter().map(String::as_str));
        let replies = self.stats_socket.batch(&dumps).await?;
        let Some((dump, maps)) = replies.split_first() else {
            return Err(Error::BadReply {
                what: "show servers state",
                reply: String::new(),
            });
        };
        let shards = state_files::contents(dump, &contents.dynamic);
        self.write_states(shards).await?;
        for (map, reply) in self.domain_maps.iter().zip(maps) {
            if let Some(entries) = parse_show_map(reply)? {
                self.write("map", &map.path, &map_file(&entries)).await?;
            }
        }
        tracing::debug!(
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "runtime changes written to the files"
        );
        Ok(())
    }

    /// Writes the state-file shards whose states differ from what was
    /// written last, all at once.
    ///
    /// # Errors
    /// [`Error::WriteFailed`] for the first shard that could not be written.
    pub async fn write_states(&self, shards: Vec<String>) -> Result<()> {
        let mut signatures = self.signatures.lock().await;
        let mut writes = tokio::task::JoinSet::new();
        for (n, text) in shards.into_iter().enumerate() {
            let signature = state_files::signature(&text);
            if signatures.get(n) == Some(&signature) {
                continue;
            }
            let path = state_files::path(&self.state_file, n);
            writes.spawn(async move {
                let written = write_atomic(&path, &text).await;
                (n, signature, path, written)
            });
        }
        let mut failed = None;
        while let Some(joined) = writes.join_next().await {
            let (n, signature, path, written) = joined.map_err(|e| Error::WriteFailed {
                path: self.state_file.clone(),
                source: std::io::Error::other(e),
            })?;
            match self.record_write("state", &path, written) {
                Ok(()) => signatures[n] = signature,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Rewrites the configured Host and URI maps from `ledger`.
    ///
    /// # Errors
    /// [`Error::WriteFailed`] naming the map.
    pub async fn write_ledger_maps(&self, ledger: &Ledger) -> Result<()> {
        self.write_maps(
            self.host_map.as_ref().map(|_| ledger.host_map()).as_deref(),
            self.uri_map.as_ref().map(|_| ledger.uri_map()).as_deref(),
        )
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
