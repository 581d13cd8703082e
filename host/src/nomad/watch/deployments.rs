//! Canary status from Nomad's `Deployment` and `Allocation` events
//! (`nomad-api.md` §1, §3).
//!
//! Registrations carry no deployment state: the only thing a registration
//! tells is its tags (`CanaryTags` while the allocation is an unpromoted
//! canary and the job sets them). So the connector follows the deployments:
//! - a `Deployment` payload lists, per task group, `PlacedCanaries` (alloc
//!   IDs), `Promoted`, and the deployment's `Status`: canaries of a running
//!   (or paused, pending) deployment are canaries; of a failed or cancelled
//!   one, failed canaries; of a promoted group or a successful deployment,
//!   normal allocations;
//! - an `Allocation` payload carries `DeploymentStatus.Canary` (`true` when
//!   placed as a canary, `false` after `DeploymentPromotion`), and its
//!   client and desired status (a stopped allocation is no canary any more).

use super::wire::nd;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// What a deployment makes of one allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CanaryState {
    /// An unpromoted canary of a deployment in progress.
    Canary,
    /// A canary of a failed or cancelled deployment: it drains until Nomad
    /// stops it.
    Failed,
}

/// One allocation's canary status as an event tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryUpdate {
    /// Allocation ID.
    pub alloc: String,
    /// Namespace.
    pub namespace: String,
    /// Job ID.
    pub job: String,
    /// `None`: not (or no longer) a canary.
    pub state: Option<CanaryState>,
}

/// `structs.Deployment`, reduced to what canaries need.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct DeploymentHead {
    #[serde(rename = "ID", deserialize_with = "nd")]
    pub id: String,
    #[serde(deserialize_with = "nd")]
    pub namespace: String,
    #[serde(rename = "JobID", deserialize_with = "nd")]
    pub job_id: String,
    #[serde(deserialize_with = "nd")]
    pub status: String,
    #[serde(deserialize_with = "nd")]
    pub task_groups: BTreeMap<String, GroupState>,
}

/// `structs.DeploymentState` of one task group, reduced.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct GroupState {
    #[serde(deserialize_with = "nd")]
    pub promoted: bool,
    #[serde(deserialize_with = "nd")]
    pub placed_canaries: Vec<String>,
}

/// An allocation's `DeploymentStatus`, reduced.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct AllocDeploymentStatus {
    #[serde(deserialize_with = "nd")]
    pub canary: bool,
}

/// The canary status of every allocation a `Deployment` payload lists.
pub(crate) fn from_deployment(d: &DeploymentHead, event_namespace: &str) -> Vec<CanaryUpdate> {
    let namespace = if d.namespace.is_empty() {
        event_namespace
    } else {
        &d.namespace
    };
    let ended_badly = matches!(d.status.as_str(), "failed" | "cancelled");
    let done = d.status == "successful";
    let mut out = Vec::new();
    for group in d.task_groups.values() {
        let state = if group.promoted || done {
            None
        } else if ended_badly {
            Some(CanaryState::Failed)
        } else {
            Some(CanaryState::Canary)
        };
        out.extend(group.placed_canaries.iter().map(|alloc| CanaryUpdate {
            alloc: alloc.clone(),
            namespace: namespace.to_string(),
            job: d.job_id.clone(),
            state,
        }));
    }
    out
}

/// The canary status an `Allocation` payload tells: `None` when it says
/// nothing about deployments (no `DeploymentStatus`, alive).
pub(crate) fn from_allocation(
    alloc: &str,
    namespace: &str,
    job: &str,
    status: Option<&AllocDeploymentStatus>,
    stopped: bool,
) -> Option<CanaryUpdate> {
    let state = if stopped {
        None
    } else {
        match status {
            Some(s) if s.canary => Some(CanaryState::Canary),
            Some(_) => None,
            None => return None,
        }
    };
    Some(CanaryUpdate {
        alloc: alloc.to_string(),
        namespace: namespace.to_string(),
        job: job.to_string(),
        state,
    })
}

/// Whether an allocation's client or desired status means it is stopped.
pub(crate) fn stopped(client_status: &str, desired_status: &str) -> bool {
    matches!(client_status, "complete" | "failed" | "lost")
        || matches!(desired_status, "stop" | "evict")
}

/// The canary status of allocations, as the events told it.
#[derive(Debug, Clone, Default)]
pub struct CanaryBoard {
    allocs: HashMap<String, CanaryState>,
}

/// At most this many allocations are tracked: a deployment's allocations
/// leave the board when promoted or stopped, so only a leak (events of
/// allocations the connector never sees stop) could reach it.
const MAX_TRACKED: usize = 100_000;

impl CanaryBoard {
    /// Records an update; whether the allocation's status changed.
    ///
    /// A failed canary stays failed: the allocation events that follow a
    /// failed deployment still say `Canary: true`.
    pub fn apply(&mut self, update: &CanaryUpdate) -> bool {
        let before = self.allocs.get(&update.alloc).copied();
        let after = match (before, update.state) {
            (Some(CanaryState::Failed), Some(CanaryState::Canary)) => Some(CanaryState::Failed),
            (_, state) => state,
        };
        if before == after {
            return false;
        }
        match after {
            Some(state) => {
                if self.allocs.len() >= MAX_TRACKED {
                    self.allocs.clear();
                }
                self.allocs.insert(update.alloc.clone(), state);
            }
            None => {
                self.allocs.remove(&update.alloc);
            }
        }
        true
    }

    /// The status of an allocation; `None` for a normal one.
    pub fn get(&self, alloc: &str) -> Option<CanaryState> {
        self.allocs.get(alloc).copied()
    }

    /// Forgets an allocation (it has no registrations left).
    pub fn forget(&mut self, alloc: &str) {
        self.allocs.remove(alloc);
    }

    /// Allocations tracked.
    pub fn len(&self) -> usize {
        self.allocs.len()
    }

    /// No allocation tracked.
    pub fn is_empty(&self) -> bool {
        self.allocs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(status: &str, promoted: bool) -> DeploymentHead {
        serde_json::from_value(serde_json::json!({
            "ID": "d1", "Namespace": "default", "JobID": "web", "Status": status,
            "TaskGroups": {"g": {"Promoted": promoted, "PlacedCanaries": ["a1", "a2"],
                                 "DesiredCanaries": 2, "HealthyAllocs": 0}},
            "StatusDescription": "Deployment is running but requires manual promotion"
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_tells_its_canaries_state() {
        let states = |d: &DeploymentHead| -> Vec<Option<CanaryState>> {
            from_deployment(d, "").iter().map(|u| u.state).collect()
        };
        let running = deployment("running", false);
        assert_eq!(
            states(&running),
            [Some(CanaryState::Canary), Some(CanaryState::Canary)]
        );
        assert_eq!(from_deployment(&running, "")[1].alloc, "a2");
        assert_eq!(states(&deployment("running", true)), [None, None]);
        assert_eq!(
            states(&deployment("failed", false)),
            [Some(CanaryState::Failed); 2]
        );
        assert_eq!(
            states(&deployment("cancelled", false)),
            [Some(CanaryState::Failed); 2]
        );
        assert_eq!(states(&deployment("successful", false)), [None, None]);
        // Promoted canaries are normal allocations, whatever happens next.
        assert_eq!(states(&deployment("failed", true)), [None, None]);
    }

    #[test]
    fn a_null_task_group_map_is_empty() {
        let d: DeploymentHead =
            serde_json::from_str(r#"{"ID":"d","TaskGroups":null,"Status":null}"#).unwrap();
        assert!(from_deployment(&d, "default").is_empty());
    }

    #[test]
    fn failed_canaries_stay_failed_until_stopped_or_promoted() {
        let mut board = CanaryBoard::default();
        let up = |state| CanaryUpdate {
            alloc: "a1".into(),
            namespace: "default".into(),
            job: "web".into(),
            state,
        };
        assert!(board.apply(&up(Some(CanaryState::Canary))));
        assert!(!board.apply(&up(Some(CanaryState::Canary))));
        assert!(board.apply(&up(Some(CanaryState::Failed))));
        // AllocationUpdated after the failure still says Canary: true.
        assert!(!board.apply(&up(Some(CanaryState::Canary))));
        assert_eq!(board.get("a1"), Some(CanaryState::Failed));
        assert!(board.apply(&up(None)));
        assert_eq!(board.get("a1"), None);
        assert!(board.is_empty());
    }

    #[test]
    fn allocation_events_tell_canary_and_stop() {
        let canary = AllocDeploymentStatus { canary: true };
        let normal = AllocDeploymentStatus { canary: false };
        let s = |status, stopped| from_allocation("a", "ns", "j", status, stopped).map(|u| u.state);
        assert_eq!(s(Some(&canary), false), Some(Some(CanaryState::Canary)));
        assert_eq!(s(Some(&normal), false), Some(None));
        assert_eq!(s(None, false), None);
        assert_eq!(s(Some(&canary), true), Some(None));
        assert!(stopped("complete", "run") && stopped("running", "stop"));
        assert!(!stopped("running", "run"));
    }
}
