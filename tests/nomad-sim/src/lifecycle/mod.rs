//! What the scheduler and the clients do, as sequences of Raft applies: job
//! register/deregister, placement, client registration, promotion, and the four
//! ways an allocation's services disappear.

mod deployments;
mod jobs;
mod placement;
mod stopping;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use deployments::DeploymentEnd;

use crate::ids::now_nanos_i64;
use crate::model::allocs::AllocRecord;
use crate::state::{State, Txn, tables};

/// The result of [`crate::Sim::register_job`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterOutcome {
    /// Index of the Raft apply.
    pub index: u64,
    /// The job's version after the call.
    pub version: u64,
    /// The job's `JobModifyIndex` after the call.
    pub job_modify_index: u64,
    /// ID of the evaluation created.
    pub eval_id: String,
    /// False when the spec was unchanged (no new version, only an evaluation).
    pub changed: bool,
}

/// A placement request for [`crate::Sim::place_alloc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlaceAlloc {
    /// The job's namespace (default `default`).
    pub namespace: String,
    /// The job ID.
    pub job_id: String,
    /// The task group to place.
    pub group: String,
    /// The host IP the ports are allocated on (never 0.0.0.0 or ::).
    pub address: String,
    /// Allocated ports: (label, host port).
    pub ports: Vec<(String, u16)>,
    /// Whether this is a canary (registers `CanaryTags` until promoted).
    pub canary: bool,
    /// Job version to run; `None` = the current version.
    pub version: Option<u64>,
}

impl Default for PlaceAlloc {
    fn default() -> Self {
        PlaceAlloc {
            namespace: "default".to_string(),
            job_id: String::new(),
            group: String::new(),
            address: "127.0.0.1".to_string(),
            ports: Vec::new(),
            canary: false,
            version: None,
        }
    }
}

impl PlaceAlloc {
    /// A placement of `group` of job `job_id` in `default` on 127.0.0.1.
    pub fn new(job_id: &str, group: &str) -> Self {
        PlaceAlloc {
            job_id: job_id.to_string(),
            group: group.to_string(),
            ..PlaceAlloc::default()
        }
    }

    /// Adds an allocated port.
    pub fn port(mut self, label: &str, value: u16) -> Self {
        self.ports.push((label.to_string(), value));
        self
    }
}

/// How an allocation stops, which decides the `Type` of the service deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// The client deregisters each service (one `ServiceDeregistration` apply per
    /// service), then reports the alloc complete (`AllocationUpdated`).
    ClientDeregister,
    /// The client reports the alloc terminal; services go in the same apply (`AllocationUpdated`, 1.8+).
    ClientTerminal,
    /// A plan stops the alloc; services go in the same apply (`PlanResult`, 1.10.4+),
    /// then the client reports it complete.
    PlanTerminal,
    /// The alloc's node goes down; services go in the node-status apply
    /// (`NodeStreamEvent`, 1.8.0–1.10.3), then a plan marks the alloc lost.
    NodeDown,
}

impl FromStr for StopKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client_deregister" => Ok(StopKind::ClientDeregister),
            "client_terminal" => Ok(StopKind::ClientTerminal),
            "plan_terminal" => Ok(StopKind::PlanTerminal),
            "node_down" => Ok(StopKind::NodeDown),
            other => Err(format!(
                "unknown stop kind {other:?} (client_deregister, client_terminal, plan_terminal, node_down)"
            )),
        }
    }
}

/// Misuse of the control API (bad job JSON, unknown job/group/alloc...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The job JSON is not acceptable.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// No such job.
    #[error("job not found: {namespace}/{id}")]
    JobNotFound {
        /// Namespace looked in.
        namespace: String,
        /// Job ID.
        id: String,
    },
    /// The job is stopped; nothing is placed for it.
    #[error("job is stopped: {0}")]
    JobStopped(String),
    /// That version is not (or no longer) tracked.
    #[error("job version not found: {0}")]
    VersionNotFound(u64),
    /// No such task group in that job version.
    #[error("task group not found: {0}")]
    GroupNotFound(String),
    /// No such allocation.
    #[error("alloc not found: {0}")]
    AllocNotFound(String),
    /// The address is not a usable IP.
    #[error("invalid address: {0:?}")]
    InvalidAddress(String),
}

impl State {
    /// Applies `f` to an allocation inside `txn` and emits its Allocation event.
    /// `server_side` also moves `AllocModifyIndex`.
    pub(super) fn update_alloc(
        &mut self,
        txn: &mut Txn,
        id: &str,
        server_side: bool,
        f: impl FnOnce(&mut AllocRecord),
    ) {
        let Some(a) = self.allocs.get_mut(id) else {
            return;
        };
        f(a);
        a.modify_index = txn.index;
        if server_side {
            a.alloc_modify_index = txn.index;
        }
        a.modify_time = now_nanos_i64();
        txn.alloc_event(a);
        txn.touch(tables::ALLOCS);
    }
}

/// The client reports an allocation complete.
pub(super) fn client_complete(a: &mut AllocRecord) {
    a.client_status = "complete".into();
    a.client_description = "All tasks have completed".into();
    a.finished_at = Some(now_nanos_i64());
}
