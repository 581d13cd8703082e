//! The runtime step of the runtime driver: one batch of server changes, then persistence.

use super::{RuntimeDriver, State};
use crate::haproxy::commands::{self, Context, Outcome};
use crate::haproxy::config_file::{self, write_atomic};
use crate::haproxy::driver::{ApplyReport, ChangeFailure};
use crate::haproxy::error::Result;
use crate::haproxy::ledger::Ledger;
use crate::plan::{ServerAction, ServerChange};
use std::collections::BTreeSet;
use std::time::Instant;

impl RuntimeDriver {
    /// Sends the server changes in one batch and records what HAProxy applied.
    pub(super) async fn run(
        &self,
        st: &mut State,
        todo: &[ServerChange],
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
        let texts: Vec<&str> = groups
            .iter()
            .flat_map(|(_, cmds)| cmds.iter().map(|c| c.text.as_str()))
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        let replies = self.stats_socket.batch(&texts).await?;
        self.stats.update(|s| {
            s.batches += 1;
            s.commands += texts.len() as u64;
        });
        let now = Instant::now();
        let mut at = 0;
        for (change, cmds) in groups {
            let mine = &replies[at.min(replies.len())..(at + cmds.len()).min(replies.len())];
            at += cmds.len();
            let verb = change.action.verb();
            match commands::judge(change, &cmds, mine) {
                Outcome::Applied => {
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
                Outcome::Refused(refusal) => report.refusals.push(refusal),
                Outcome::Failed { command, reply } => {
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
        Ok(())
    }

    /// Rewrites the managed file and the Host map, and dumps the states.
    pub(super) async fn persist(&self, st: &State) -> Result<()> {
        let managed = &self.config.managed_config;
        write_atomic(
            managed,
            &config_file::render(&st.ledger.dynamic, &self.state_file),
        )
        .await?;
        self.write_maps(&st.ledger).await?;
        let dump = self.stats_socket.send("show servers state").await?;
        let states = config_file::state_file(&dump, &st.ledger.dynamic);
        write_atomic(&self.config.state_file, &states).await
    }

    /// Rewrites the configured map files from `ledger`.
    pub(super) async fn write_maps(&self, ledger: &Ledger) -> Result<()> {
        if let Some(map) = &self.config.host_map {
            write_atomic(map, &ledger.host_map()).await?;
        }
        if let Some(map) = &self.config.uri_map {
            write_atomic(map, &ledger.uri_map()).await?;
        }
        Ok(())
    }
}
