//! Job registration (new version only on a spec change), stop and purge.

use serde_json::{Value, json};

use super::{RegisterOutcome, SimError, client_complete};
use crate::ids::{now_nanos_i64, uuid};
use crate::model::jobs::{self, JobRecord, TRACKED_VERSIONS, version_of};
use crate::model::str_field;
use crate::state::{State, Txn, tables};

fn eval_json(txn: &Txn, ns: &str, job: &Value, triggered_by: &str) -> Value {
    let now = now_nanos_i64();
    json!({
        "ID": uuid(),
        "Namespace": ns,
        "Priority": job.get("Priority").cloned().unwrap_or(json!(50)),
        "Type": job.get("Type").cloned().unwrap_or(json!("service")),
        "TriggeredBy": triggered_by,
        "JobID": str_field(job, "ID"),
        "JobModifyIndex": job.get("JobModifyIndex").cloned().unwrap_or(json!(0)),
        "NodeID": "",
        "NodeModifyIndex": 0,
        "DeploymentID": "",
        "Status": "pending",
        "StatusDescription": "",
        "Wait": 0,
        "WaitUntil": "0001-01-01T00:00:00Z",
        "NextEval": "",
        "PreviousEval": "",
        "BlockedEval": "",
        "CreateIndex": txn.index,
        "ModifyIndex": txn.index,
        "CreateTime": now,
        "ModifyTime": now,
    })
}

/// Sets the server-owned fields of a new job version.
fn stamp_version(job: &mut Value, version: u64, create_index: u64, index: u64, status: &str) {
    job["Version"] = json!(version);
    job["CreateIndex"] = json!(create_index);
    job["ModifyIndex"] = json!(index);
    job["JobModifyIndex"] = json!(index);
    job["SubmitTime"] = json!(now_nanos_i64());
    job["Stable"] = json!(false);
    job["Status"] = json!(status);
}

impl State {
    /// Registers a job (a new version if the spec changed, else only an evaluation).
    pub(crate) fn register_job(&mut self, mut job: Value) -> Result<RegisterOutcome, SimError> {
        jobs::canonicalize(&mut job, &self.settings.region).map_err(SimError::InvalidJob)?;
        let ns = str_field(&job, "Namespace").to_string();
        let id = str_field(&job, "ID").to_string();
        self.namespaces.insert(ns.clone());
        let key = (ns.clone(), id.clone());
        if let Some(rec) = self.jobs.get(&key)
            && !jobs::spec_changed(&rec.current, &job)
        {
            let current = rec.current.clone();
            return Ok(self.reregister_unchanged(&ns, &current));
        }
        let mut txn = self.begin("JobRegistered");
        let (create_index, version) = match self.jobs.get(&key) {
            Some(rec) => (
                rec.current
                    .get("CreateIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(txn.index),
                rec.versions.iter().map(version_of).max().unwrap_or(0) + 1,
            ),
            None => (txn.index, 0),
        };
        let stopped = job.get("Stop").and_then(Value::as_bool).unwrap_or(false);
        let status = match self.job_status(&ns, &id, stopped) {
            "running" => "running",
            _ if stopped => "dead",
            _ => "pending",
        };
        stamp_version(&mut job, version, create_index, txn.index, status);
        let eval = eval_json(&txn, &ns, &job, "job-register");
        txn.job_event(&job, false);
        txn.eval_event(&eval);
        for t in [tables::JOBS, tables::JOB_VERSION, tables::EVALS] {
            txn.touch(t);
        }
        let index = txn.index;
        self.store_version(key, job);
        self.commit(txn);
        Ok(RegisterOutcome {
            index,
            version,
            job_modify_index: index,
            eval_id: str_field(&eval, "ID").to_string(),
            changed: true,
        })
    }

    /// `Job.Register` with an unchanged spec: no Raft apply for the job, only
    /// an evaluation (`EvalUpdate`, typed `EvaluationUpdated`).
    fn reregister_unchanged(&mut self, ns: &str, current: &Value) -> RegisterOutcome {
        let mut txn = self.begin("EvaluationUpdated");
        let eval = eval_json(&txn, ns, current, "job-register");
        txn.eval_event(&eval);
        txn.touch(tables::EVALS);
        let index = txn.index;
        self.commit(txn);
        RegisterOutcome {
            index,
            version: version_of(current),
            job_modify_index: current
                .get("JobModifyIndex")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            eval_id: str_field(&eval, "ID").to_string(),
            changed: false,
        }
    }

    fn store_version(&mut self, key: (String, String), job: Value) {
        let rec = self.jobs.entry(key).or_insert_with(|| JobRecord {
            current: job.clone(),
            versions: Vec::new(),
        });
        rec.current = job.clone();
        rec.versions.push(job);
        if rec.versions.len() > TRACKED_VERSIONS {
            let excess = rec.versions.len() - TRACKED_VERSIONS;
            rec.versions.drain(..excess);
        }
    }

    /// Stops (new version with `Stop: true`) or purges a job, then lets the
    /// scheduler stop its allocations (`PlanResult`) and the clients report them
    /// complete (`AllocationUpdated`). False if the job does not exist.
    pub(crate) fn deregister_job(&mut self, ns: &str, id: &str, purge: bool) -> bool {
        let key = (ns.to_string(), id.to_string());
        let Some(rec) = self.jobs.get(&key) else {
            return false;
        };
        let next_version = rec.versions.iter().map(version_of).max().unwrap_or(0) + 1;
        let current = rec.current.clone();
        let mut txn = self.begin("JobDeregistered");
        let eval = eval_json(&txn, ns, &current, "job-deregister");
        if purge {
            self.jobs.remove(&key);
            txn.job_event(&current, self.settings.job_deleted_flag);
        } else {
            let mut job = current.clone();
            job["Stop"] = json!(true);
            let create_index = job.get("CreateIndex").and_then(Value::as_u64).unwrap_or(0);
            let status = if self.live_allocs_of_job(ns, id).is_empty() {
                "dead"
            } else {
                "running"
            };
            stamp_version(&mut job, next_version, create_index, txn.index, status);
            txn.job_event(&job, false);
            self.store_version(key, job);
        }
        txn.eval_event(&eval);
        for t in [tables::JOBS, tables::JOB_VERSION, tables::EVALS] {
            txn.touch(t);
        }
        self.commit(txn);

        let live = self.live_allocs_of_job(ns, id);
        if live.is_empty() {
            return true;
        }
        let mut txn = self.begin("PlanResult");
        for alloc_id in &live {
            self.update_alloc(&mut txn, alloc_id, true, |a| {
                a.desired_status = "stop".into();
                a.desired_description = "alloc not needed due to job update".into();
            });
            let regs = self.registrations_of_alloc(alloc_id);
            self.delete_registrations(&mut txn, &regs);
        }
        self.refresh_job_status(&mut txn, ns, id);
        self.commit(txn);
        let mut txn = self.begin("AllocationUpdated");
        for alloc_id in &live {
            self.update_alloc(&mut txn, alloc_id, false, client_complete);
        }
        self.refresh_job_status(&mut txn, ns, id);
        self.commit(txn);
        true
    }
}
