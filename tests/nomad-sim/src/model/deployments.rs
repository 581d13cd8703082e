//! Deployments, only as far as canaries need them (created on the first canary
//! placement of a job version, promoted per canary).

use serde_json::{Value, json};

/// A deployment of one job version.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub id: String,
    pub namespace: String,
    pub job_id: String,
    pub job_version: u64,
    pub job_create_index: u64,
    pub job_modify_index: u64,
    pub group: String,
    pub desired_total: u64,
    pub desired_canaries: u64,
    pub placed_canaries: Vec<String>,
    pub placed_allocs: u64,
    pub promoted: bool,
    pub status: String,
    pub status_description: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Deployment {
    /// `structs.Deployment` as JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "ID": self.id,
            "Namespace": self.namespace,
            "JobID": self.job_id,
            "JobVersion": self.job_version,
            "JobModifyIndex": self.job_modify_index,
            "JobSpecModifyIndex": self.job_modify_index,
            "JobCreateIndex": self.job_create_index,
            "IsMultiregion": false,
            "TaskGroups": {
                self.group.clone(): {
                    "AutoRevert": false,
                    "AutoPromote": false,
                    "ProgressDeadline": 600_000_000_000_i64,
                    "RequireProgressBy": "0001-01-01T00:00:00Z",
                    "Promoted": self.promoted,
                    "PlacedCanaries": self.placed_canaries,
                    "DesiredCanaries": self.desired_canaries,
                    "DesiredTotal": self.desired_total,
                    "PlacedAllocs": self.placed_allocs,
                    "HealthyAllocs": 0,
                    "UnhealthyAllocs": 0,
                }
            },
            "Status": self.status,
            "StatusDescription": self.status_description,
            "EvalPriority": 50,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        })
    }

    /// Still in progress (placements attach to it).
    pub(crate) fn active(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused" | "pending")
    }
}
