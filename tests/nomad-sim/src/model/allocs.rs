//! Allocations: the stored record, the full `Allocation` JSON (omitempty, embedded
//! job version) and the `AllocListStub` of `/v1/job/:id/allocations`.

use serde_json::{Map, Value, json};

use crate::timefmt::rfc3339_nanos;

/// One allocated port (`AllocatedPortMapping`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortMapping {
    pub label: String,
    pub value: i64,
    pub to: i64,
}

/// An allocation as the state store holds it.
#[derive(Debug, Clone)]
pub(crate) struct AllocRecord {
    pub id: String,
    pub eval_id: String,
    pub name: String,
    pub index_in_group: u64,
    pub namespace: String,
    pub node_id: String,
    pub node_name: String,
    pub job_id: String,
    /// The job version this allocation runs (embedded in `GET /v1/allocation/:id`).
    pub job: Value,
    pub job_version: u64,
    pub job_create_index: u64,
    pub group: String,
    pub tasks: Vec<String>,
    pub address: String,
    pub ports: Vec<PortMapping>,
    pub canary: bool,
    pub deployment_id: String,
    pub deployment_modify_index: u64,
    pub desired_status: String,
    pub desired_description: String,
    pub client_status: String,
    pub client_description: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub alloc_modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl AllocRecord {
    /// `Allocation.TerminalStatus`: desired stop/evict, or client-terminal.
    pub(crate) fn terminal(&self) -> bool {
        matches!(self.desired_status.as_str(), "stop" | "evict") || self.client_terminal()
    }

    /// `ClientTerminalStatus`: complete, failed or lost.
    pub(crate) fn client_terminal(&self) -> bool {
        matches!(self.client_status.as_str(), "complete" | "failed" | "lost")
    }

    fn job_type(&self) -> Value {
        self.job.get("Type").cloned().unwrap_or(json!("service"))
    }

    fn deployment_status(&self) -> Value {
        if self.deployment_id.is_empty() {
            return Value::Null;
        }
        json!({
            "Healthy": null,
            "Timestamp": "0001-01-01T00:00:00Z",
            "Canary": self.canary,
            "ModifyIndex": self.deployment_modify_index,
        })
    }

    fn task_states(&self) -> Value {
        let state = match self.client_status.as_str() {
            "pending" => "pending",
            "running" => "running",
            _ => "dead",
        };
        let time =
            |t: Option<i64>| t.map_or(json!("0001-01-01T00:00:00Z"), |t| json!(rfc3339_nanos(t)));
        let mut m = Map::new();
        for task in &self.tasks {
            m.insert(
                task.clone(),
                json!({
                    "State": state,
                    "Failed": self.client_status == "failed",
                    "Restarts": 0,
                    "LastRestart": "0001-01-01T00:00:00Z",
                    "StartedAt": time(self.started_at),
                    "FinishedAt": time(self.finished_at),
                    "Events": [],
                    "TaskHandle": null,
                }),
            );
        }
        Value::Object(m)
    }

    fn allocated_resources(&self) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(
                |p| json!({"Label": p.label, "Value": p.value, "To": p.to, "HostIP": self.address}),
            )
            .collect();
        let dynamic: Vec<Value> = self
            .ports
            .iter()
            .map(|p| json!({"Label": p.label, "Value": p.value, "To": p.to, "HostNetwork": "default"}))
            .collect();
        let mut tasks = Map::new();
        for task in &self.tasks {
            tasks.insert(
                task.clone(),
                json!({
                    "Cpu": {"CpuShares": 100, "ReservedCores": null},
                    "Memory": {"MemoryMB": 300, "MemoryMaxMB": 0},
                    "Networks": null,
                    "Devices": null,
                }),
            );
        }
        json!({
            "Tasks": tasks,
            "TaskLifecycles": null,
            "Shared": {
                "DiskMB": 300,
                "Networks": [{
                    "Mode": "host", "Device": "", "CIDR": "", "IP": self.address, "MBits": 0,
                    "DNS": null, "ReservedPorts": null,
                    "DynamicPorts": if dynamic.is_empty() { Value::Null } else { Value::Array(dynamic) },
                }],
                "Ports": if ports.is_empty() { Value::Null } else { Value::Array(ports) },
            }
        })
    }

    /// The full `Allocation`. `Allocation` is `omitempty`, so zero-valued top-level
    /// fields are absent; `with_job: false` strips `Job` as events do.
    pub(crate) fn to_json(&self, with_job: bool) -> Value {
        let full = json!({
            "ID": self.id,
            "Namespace": self.namespace,
            "EvalID": self.eval_id,
            "Name": self.name,
            "NodeID": self.node_id,
            "NodeName": self.node_name,
            "JobID": self.job_id,
            "Job": if with_job { self.job.clone() } else { Value::Null },
            "TaskGroup": self.group,
            "AllocatedResources": self.allocated_resources(),
            "Metrics": {"NodesEvaluated": 1, "NodesFiltered": 0, "NodesInPool": 1, "NodesExhausted": 0},
            "DesiredStatus": self.desired_status,
            "DesiredDescription": self.desired_description,
            "DesiredTransition": {"Migrate": null, "Reschedule": null, "ForceReschedule": null, "NoShutdownDelay": null},
            "ClientStatus": self.client_status,
            "ClientDescription": self.client_description,
            "TaskStates": self.task_states(),
            "DeploymentID": self.deployment_id,
            "DeploymentStatus": self.deployment_status(),
            "PreviousAllocation": "",
            "NextAllocation": "",
            "FollowupEvalID": "",
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
            "AllocModifyIndex": self.alloc_modify_index,
            "CreateTime": self.create_time,
            "ModifyTime": self.modify_time,
            "SignedIdentities": null,
            "SigningKeyID": "",
        });
        omit_empty(full)
    }

    /// `AllocListStub`, as `/v1/job/:id/allocations` returns it.
    pub(crate) fn stub_json(&self) -> Value {
        json!({
            "ID": self.id,
            "EvalID": self.eval_id,
            "Name": self.name,
            "Namespace": self.namespace,
            "NodeID": self.node_id,
            "NodeName": self.node_name,
            "JobID": self.job_id,
            "JobType": self.job_type(),
            "JobVersion": self.job_version,
            "TaskGroup": self.group,
            "AllocatedResources": self.allocated_resources(),
            "DesiredStatus": self.desired_status,
            "DesiredDescription": self.desired_description,
            "ClientStatus": self.client_status,
            "ClientDescription": self.client_description,
            "DesiredTransition": {"Migrate": null, "Reschedule": null, "ForceReschedule": null, "NoShutdownDelay": null},
            "TaskStates": self.task_states(),
            "DeploymentStatus": self.deployment_status(),
            "FollowupEvalID": "",
            "NextAllocation": "",
            "RescheduleTracker": null,
            "PreemptedAllocations": null,
            "PreemptedByAllocation": "",
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
            "CreateTime": self.create_time,
            "ModifyTime": self.modify_time,
        })
    }
}

/// Drops zero-valued top-level fields, as go-codec does for `omitempty` structs.
fn omit_empty(v: Value) -> Value {
    let Value::Object(m) = v else { return v };
    Value::Object(
        m.into_iter()
            .filter(|(_, v)| match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
            })
            .collect(),
    )
}
