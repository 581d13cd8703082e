//! The driver seam the planner uses: read the actual state, apply a change set.

use super::error::Result;
use super::validate::ConfigAlert;
use crate::plan::change::DomainChange;
use crate::plan::{Actual, ChangeSet, Desired, Earliest, Refusal, Requeue, ServerChange, diff};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Something that runs HAProxy's backends for the connector.
pub trait Driver: Send + Sync {
    /// Reads what HAProxy runs: backends, servers and their states, the
    /// entries of the domain maps, plus what the driver itself applied.
    ///
    /// # Errors
    /// HAProxy cannot be reached or answers something unreadable.
    fn actual(&self) -> impl Future<Output = Result<Actual>> + Send;

    /// Applies `changes`, computed by [`diff`] from `desired` and a recent
    /// [`Driver::actual`].
    ///
    /// # Guarantees
    /// Server and domain map changes never reload HAProxy. Backend changes
    /// reload at most once per call, after the render passes `haproxy -c`;
    /// a failed validation or reload leaves the old config serving and is
    /// reported in [`ApplyReport::reload`], not as an error. A domain entry
    /// is only added once its backend runs.
    ///
    /// # Errors
    /// HAProxy cannot be reached, or a managed file cannot be written.
    fn apply(
        &self,
        desired: &Desired,
        changes: &ChangeSet,
    ) -> impl Future<Output = Result<ApplyReport>> + Send;

    /// One reconcile pass: [`Driver::actual`], [`diff`], [`Driver::apply`].
    ///
    /// # Errors
    /// As [`Driver::actual`] and [`Driver::apply`].
    fn sync(&self, desired: &Desired) -> impl Future<Output = Result<ApplyReport>> + Send {
        async move {
            let actual = self.actual().await?;
            let changes = diff(desired, &actual);
            self.apply(desired, &changes).await
        }
    }

    /// A pass that compares the backends in `scope` (plus any the driver
    /// left work in) and every domain entry, not the whole of HAProxy: the
    /// cost of one event does not grow with the cluster. A driver may
    /// compare more; this one compares everything.
    ///
    /// # Errors
    /// As [`Driver::sync`].
    fn sync_within(
        &self,
        desired: &Desired,
        scope: &BTreeSet<String>,
    ) -> impl Future<Output = Result<ApplyReport>> + Send {
        let _ = scope;
        self.sync(desired)
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Server changes HAProxy applied.
    pub applied: Vec<ServerChange>,
    /// Server changes HAProxy did not apply, with its reply.
    pub failed: Vec<ChangeFailure>,
    /// What the connector or HAProxy refused.
    pub refusals: Vec<Refusal>,
    /// Server changes left for later: their backend awaits its reload.
    pub waiting: usize,
    /// Domain map changes HAProxy applied.
    pub applied_domains: Vec<DomainChange>,
    /// Domain map changes HAProxy did not apply, with its reply.
    pub failed_domains: Vec<DomainFailure>,
    /// Domain map changes left for later: their backend awaits its reload
    /// (an entry never routes to a backend HAProxy does not run yet).
    pub waiting_domains: usize,
    /// The reload, if one was wanted.
    pub reload: ReloadOutcome,
    /// Apply again after this long (a drain ends, a reload window closes,
    /// a failed change is retried), even if nothing else happens.
    pub requeue_after: Requeue,
}

impl ApplyReport {
    pub(super) fn requeue(&mut self, after: Duration) {
        self.requeue_after.earliest(after);
    }
}

/// A server change HAProxy did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeFailure {
    /// The change.
    pub change: ServerChange,
    /// The command that failed.
    pub command: String,
    /// HAProxy's reply (or why the command was never sent).
    pub reply: String,
}

/// A domain map change HAProxy did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFailure {
    /// The change.
    pub change: DomainChange,
    /// The command that failed.
    pub command: String,
    /// HAProxy's reply (or why the command was never sent).
    pub reply: String,
}

/// Backend changes `haproxy -c` blamed, left out of a reload so that the
/// others could go ahead; they stay as they were until the desired state
/// changes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The backends whose change was left out.
    pub backends: Vec<String>,
    /// HAProxy's alerts on the full render.
    pub alerts: Vec<ConfigAlert>,
    /// Where the refused render is kept.
    pub kept_at: PathBuf,
}

/// What became of the reload a change set asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// No backend-level change.
    #[default]
    NotNeeded,
    /// Coalescing a burst: the reload happens on an apply after this long.
    Deferred(Duration),
    /// Reloaded; the new worker answers.
    Done {
        /// The new worker's PID.
        worker_pid: u32,
        /// The backends the reload created, changed or removed.
        backends: Vec<String>,
        /// Backend changes left out because `haproxy -c` refused them.
        held_back: Option<HeldBack>,
    },
    /// The render failed `haproxy -c`; the old config keeps serving.
    Rejected {
        /// HAProxy's alerts, with file and line.
        alerts: Vec<ConfigAlert>,
        /// Where the rejected render is kept.
        kept_at: PathBuf,
    },
    /// The reload failed; the old worker keeps serving.
    Failed {
        /// What went wrong.
        reason: String,
    },
}
