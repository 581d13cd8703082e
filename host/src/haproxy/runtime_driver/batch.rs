//! The runtime step of the runtime driver: one batch of server and domain changes, then persistence.

use super::{RuntimeDriver, State};
use crate::haproxy::actual::{map_file, parse_show_map};
use crate::haproxy::commands::{self, Command, Context, Verdict};
use crate::haproxy::driver::{ApplyReport, ChangeFailure, DomainFailure};
use crate::haproxy::error::{Error, Result};
use crate::haproxy::ledger::Ledger;
use crate::haproxy::managed_file::{self, write_atomic};
use crate::haproxy::state_files;
use crate::plan::change::DomainChange;
use crate::plan::{ServerAction, ServerChange};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often, and after how long each, a removal that sessions still held
/// is sent again within the same batch: about one second in all, so that a
/// server never stays in maintenance beyond the batch that removes it.
const BUSY_RETRIES: [Duration; 5] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(150),
    Duration::from_millis(250),
    Duration::from_millis(450),
];

impl RuntimeDriver {
    /// Sends the server changes, then the domain changes, in one batch and
    /// records what HAProxy applied.
    pub(super) async fn run(
        &self,
        st: &mut State,
        todo: &[ServerChange],
        domains: &[DomainChange],
        restore_up: &BTreeSet<(String, String)>,
        report: &mut ApplyReport,
    ) -> Result<()> {
        let mut groups = Vec::new();
        for change in todo {
            let key = (change.backend.clone(), change.server.clone());
            let ctx = Context {
                host_map: self.host_map.as_ref(),
                uri_map: self.uri_map.as_ref(),
                restore_up: matches!(change.action, ServerAction::Add(_))
                    && restore_up.contains(&key),
                caps: self.version.capabilities(),
                ..Context::default()
            };
            match commands::for_change(change, ctx) {
                Ok(cmds) => groups.push((change, cmds)),
                Err(invalid) => report.failed.push(ChangeFailure {
                    change: change.clone(),
                    command: String::new(),
                    reply: invalid.to_string(),
                }),
            }
        }
        let domain_groups = self.domain_commands(st, domains, report);
        let commands: Vec<&Command> = groups
            .iter()
            .flat_map(|(_, cmds)| cmds)
            .chain(domain_groups.iter().flat_map(|(_, cmds)| cmds))
            .collect();
        if commands.is_empty() {
            return Ok(());
        }
        let replies = self.send_batch(&commands).await?;
        let mut at = 0;
        let mut busy = Vec::new();
        for (change, cmds) in groups {
            let mine = &replies[at.min(replies.len())..(at + cmds.len()).min(replies.len())];
            at += cmds.len();
            match commands::judge(change, &cmds, mine) {
                Verdict::Busy { .. } => busy.push((change, cmds)),
                outcome => self.judged(st, change, outcome, report),
            }
        }
        for (change, cmds) in domain_groups {
            let mine = &replies[at.min(replies.len())..(at + cmds.len()).min(replies.len())];
            at += cmds.len();
            self.judged_domain(change, commands::judge_domain(change, &cmds, mine), report);
        }
        self.retry_busy(st, busy, report).await
    }

    /// Sends removals that sessions still held again, a few times with
    /// growing pauses; what is still held after the last is reported failed.
    async fn retry_busy(
        &self,
        st: &mut State,
        mut busy: Vec<(&ServerChange, Vec<Command>)>,
        report: &mut ApplyReport,
    ) -> Result<()> {
        for pause in BUSY_RETRIES {
            if busy.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            self.stats
                .update(|s| s.removal_retries += busy.len() as u64);
            let commands: Vec<&Command> = busy.iter().flat_map(|(_, cmds)| cmds).collect();
            let replies = self.send_batch(&commands).await?;
            let mut at = 0;
            let mut still = Vec::new();
            for (change, cmds) in busy {
                let mine = &replies[at.min(replies.len())..(at + cmds.len()).min(replies.len())];
                at += cmds.len();
                match commands::judge(change, &cmds, mine) {
                    Verdict::Busy { .. } => still.push((change, cmds)),
                    outcome => self.judged(st, change, outcome, report),
                }
            }
            busy = still;
        }
        for (change, cmds) in busy {
            let outcome = match cmds.iter().find(|c| c.text.starts_with("del server")) {
                Some(del) => Verdict::Failed {
                    command: del.text.clone(),
                    reply: format!(
                        "sessions still held the server after {} attempts",
                        BUSY_RETRIES.len() + 1
                    ),
                },
                None => Verdict::Failed {
                    command: String::new(),
                    reply: "sessions still held the server".into(),
                },
            };
            self.judged(st, change, outcome, report);
        }
        Ok(())
    }

    /// Sends commands in order (over as few connections as HAProxy takes
    /// whole) and counts them.
    async fn send_batch(&self, commands: &[&Command]) -> Result<Vec<String>> {
        let held: Vec<(&str, Duration)> = commands
            .iter()
            .map(|c| (c.text.as_str(), c.holds_for()))
            .collect();
        let replies = self.stats_socket.batch_holding(&held).await?;
        self.stats.update(|s| {
            s.batches += 1;
            s.commands += held.len() as u64;
        });
        Ok(replies)
    }

    /// Records, reports and counts the outcome of one server change.
    fn judged(
        &self,
        st: &mut State,
        change: &ServerChange,
        outcome: Verdict,
        report: &mut ApplyReport,
    ) {
        let now = Instant::now();
        let verb = change.action.verb();
        match outcome {
            Verdict::Applied => {
                st.ledger.record(change);
                let key = (change.backend.clone(), change.server.clone());
                if matches!(change.action, ServerAction::Drain) {
                    st.drains.insert(key, now);
                } else {
                    st.drains.remove(&key);
                }
                self.stats
                    .update(|s| *s.applied.entry(verb).or_default() += 1);
                report.applied.push(change.clone());
            }
            Verdict::Refused(refusal) => report.refusals.push(refusal),
            Verdict::Failed { command, reply } | Verdict::Busy { command, reply } => {
                tracing::warn!(backend = %change.backend, server = %change.server, verb, %command, %reply, "haproxy refused a server change");
                self.stats
                    .update(|s| *s.failed.entry(verb).or_default() += 1);
                report.failed.push(ChangeFailure {
                    change: change.clone(),
                    command,
                    reply,
                });
            }
        }
    }

    /// The commands of each domain change; a change that cannot become
    /// commands is reported failed and never sent.
    fn domain_commands<'c>(
        &self,
        st: &State,
        domains: &'c [DomainChange],
        report: &mut ApplyReport,
    ) -> Vec<(&'c DomainChange, Vec<Command>)> {
        let mut groups = Vec::new();
        for change in domains {
            let map = self.domain_maps.iter().find(|m| m.kind == change.kind);
            let cmds = match map {
                Some(map) => {
                    let held = st.held.get(&(change.kind, change.pattern.clone()));
                    commands::for_domain(change, &map.token, held.copied().unwrap_or(1))
                        .map_err(|e| e.to_string())
                }
                None => Err("no map of this kind is configured".to_string()),
            };
            match cmds {
                Ok(cmds) => groups.push((change, cmds)),
                Err(reply) => self.judged_domain(
                    change,
                    Verdict::Failed {
                        command: String::new(),
                        reply,
                    },
                    report,
                ),
            }
        }
        groups
    }

    /// Reports and counts the outcome of one domain change.
    fn judged_domain(&self, change: &DomainChange, outcome: Verdict, report: &mut ApplyReport) {
        let verb = change.action.verb();
        match outcome {
            Verdict::Applied => {
                self.stats
                    .update(|s| *s.domains_applied.entry(verb).or_default() += 1);
                report.applied_domains.push(change.clone());
            }
            Verdict::Refused(refusal) => report.refusals.push(refusal),
            Verdict::Failed { command, reply } | Verdict::Busy { command, reply } => {
                tracing::warn!(pattern = %change.pattern, kind = ?change.kind, verb, %command, %reply, "haproxy refused a domain map change");
                self.stats
                    .update(|s| *s.domains_failed.entry(verb).or_default() += 1);
                report.failed_domains.push(DomainFailure {
                    change: change.clone(),
                    command,
                    reply,
                });
            }
        }
    }

    /// Rewrites the managed file and the Host and URI maps, and dumps the
    /// states and the domain maps as HAProxy holds them (in its order, so
    /// that the precedence of regexes survives a reload or restart). A
    /// domain map HAProxy has not loaded keeps its file. Records when, so
    /// that the next writes wait their turn.
    pub(super) async fn persist(&self, st: &mut State) -> Result<()> {
        // Set until every file is written: a failed write is retried by
        // the next apply even when nothing else changes.
        st.unpersisted = true;
        let started = Instant::now();
        let managed = &self.config.managed_config;
        let text = managed_file::render(&st.ledger.dynamic, &self.state_file);
        self.write("config", managed, &text).await?;
        self.write_maps(&st.ledger).await?;
        let shows: Vec<String> = self.domain_maps.iter().map(|m| m.show()).collect();
        let mut dumps = vec!["show servers state"];
        dumps.extend(shows.iter().map(String::as_str));
        let replies = self.stats_socket.batch(&dumps).await?;
        let Some((dump, maps)) = replies.split_first() else {
            return Err(Error::BadReply {
                what: "show servers state",
                reply: String::new(),
            });
        };
        let shards = state_files::contents(dump, &st.ledger.dynamic);
        self.write_states(&mut st.state_signatures, shards).await?;
        for (map, reply) in self.domain_maps.iter().zip(maps) {
            if let Some(entries) = parse_show_map(reply)? {
                self.write("map", &map.path, &map_file(&entries)).await?;
            }
        }
        tracing::debug!(
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "runtime changes written to the files"
        );
        let now = Instant::now();
        st.persisted = Some(now);
        st.unpersisted = false;
        st.state_checked = now;
        Ok(())
    }

    /// Writes the state-file shards whose states differ from what was
    /// written last (`signatures`, [`state_files::signature`] per shard),
    /// all at once.
    pub(super) async fn write_states(
        &self,
        signatures: &mut [u64],
        shards: Vec<String>,
    ) -> Result<()> {
        let mut writes = tokio::task::JoinSet::new();
        for (n, text) in shards.into_iter().enumerate() {
            let signature = state_files::signature(&text);
            if signatures.get(n) == Some(&signature) {
                continue;
            }
            let path = state_files::path(&self.config.state_file, n);
            writes.spawn(async move {
                let written = write_atomic(&path, &text).await;
                (n, signature, path, written)
            });
        }
        let mut failed = None;
        while let Some(joined) = writes.join_next().await {
            let (n, signature, path, written) = joined.map_err(|e| Error::WriteFailed {
                path: self.config.state_file.clone(),
                source: std::io::Error::other(e),
            })?;
            match self.record_write("state", &path, written) {
                Ok(()) => signatures[n] = signature,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Rewrites the configured map files from `ledger`.
    pub(super) async fn write_maps(&self, ledger: &Ledger) -> Result<()> {
        if let Some(map) = &self.config.host_map {
            self.write("map", map, &ledger.host_map()).await?;
        }
        if let Some(map) = &self.config.uri_map {
            self.write("map", map, &ledger.uri_map()).await?;
        }
        Ok(())
    }
}
