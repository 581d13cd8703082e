//! The runtime step of the runtime driver: one batch of server and domain changes, then the files' write.

use super::{MAX_SCOPE, RuntimeDriver, State};
use crate::haproxy::commands::{self, Command, Context, Verdict};
use crate::haproxy::driver::{ApplyReport, ChangeFailure, DomainFailure};
use crate::haproxy::error::{Error, Result};
use crate::plan::change::DomainChange;
use crate::plan::{ServerAction, ServerChange};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

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

    /// Writes every file now, after the write in flight (which has older
    /// contents); records when, so that the next writes wait their turn.
    ///
    /// # Errors
    /// A file cannot be written, or HAProxy cannot be reached.
    pub(super) async fn persist(&self, st: &mut State) -> Result<()> {
        // Set until every file is written: a failed write is retried by
        // the next apply even when nothing else changes. The write in
        // flight is redone here: its failure is already recorded.
        st.unpersisted = true;
        let _ = self.finish_write(st).await;
        self.files
            .write_all(self.files.contents(&st.ledger), None)
            .await?;
        st.unpersisted = false;
        st.unwritten.clear();
        st.dump_all = false;
        self.persisted(st);
        Ok(())
    }

    /// Starts writing every file beside the syncs that follow, after the
    /// write in flight. The ledger's backends are shared with the write,
    /// not copied: a change copies only the backend it changes.
    pub(super) fn persist_later(&self, st: &mut State) {
        let contents = self.files.contents(&st.ledger);
        let files = Arc::clone(&self.files);
        let previous = st.writing.take();
        let unwritten = std::mem::take(&mut st.unwritten);
        let changed = (!std::mem::take(&mut st.dump_all) && unwritten.len() <= MAX_SCOPE)
            .then_some(unwritten);
        st.writing = Some(tokio::spawn(async move {
            // This write covers what that one wrote; if that one failed,
            // what it dumped is not known, so this one dumps everything.
            let failed = match previous {
                Some(previous) => !matches!(previous.await, Ok(Ok(()))),
                None => false,
            };
            files.write_all(contents, changed.filter(|_| !failed)).await
        }));
        st.unpersisted = false;
        self.persisted(st);
    }

    fn persisted(&self, st: &mut State) {
        let now = Instant::now();
        st.persisted = Some(now);
        st.state_checked = now;
    }

    /// Waits for the write in flight, if any; a failed one leaves the
    /// changes to write again.
    ///
    /// # Errors
    /// That write's error.
    pub(super) async fn finish_write(&self, st: &mut State) -> Result<()> {
        let Some(task) = st.writing.take() else {
            return Ok(());
        };
        let result = task.await.unwrap_or_else(|e| {
            Err(Error::WriteFailed {
                path: self.files.managed.clone(),
                source: std::io::Error::other(e),
            })
        });
        if result.is_err() {
            // What it left is not known: the next write dumps everything.
            st.unpersisted = true;
            st.dump_all = true;
        }
        result
    }

    /// Collects the write in flight if it has finished.
    ///
    /// # Errors
    /// That write's error.
    pub(super) async fn reap_write(&self, st: &mut State) -> Result<()> {
        if st.writing.as_ref().is_some_and(JoinHandle::is_finished) {
            return self.finish_write(st).await;
        }
        Ok(())
    }
}
