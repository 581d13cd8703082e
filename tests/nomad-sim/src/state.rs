//! The Raft-like state store: one global index, per-table indexes, the tables
//! themselves, and transactions that stamp every change with the apply's
//! message type and publish them as one event batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::events::{Batch, Broker, Event};
use crate::model::allocs::AllocRecord;
use crate::model::deployments::Deployment;
use crate::model::jobs::JobRecord;
use crate::model::registrations::Registration;
use crate::model::str_field;

/// Table names whose indexes back `X-Nomad-Index`.
pub(crate) mod tables {
    pub const JOBS: &str = "jobs";
    pub const JOB_VERSION: &str = "job_version";
    pub const ALLOCS: &str = "allocs";
    pub const SERVICES: &str = "service_registrations";
    pub const EVALS: &str = "evals";
    pub const DEPLOYMENT: &str = "deployment";
    pub const NODES: &str = "nodes";
}

/// Settings the state store needs from [`crate::SimConfig`].
#[derive(Debug, Clone)]
pub(crate) struct StoreSettings {
    pub region: String,
    pub datacenter: String,
    pub buffer_size: usize,
    pub job_deleted_flag: bool,
}

/// Everything a Nomad server would hold in memory.
#[derive(Debug)]
pub(crate) struct State {
    /// The last applied Raft index.
    pub index: u64,
    table_index: BTreeMap<&'static str, u64>,
    /// Namespaces that exist (`default` always does).
    pub namespaces: BTreeSet<String>,
    /// Jobs by (namespace, ID).
    pub jobs: BTreeMap<(String, String), JobRecord>,
    /// Allocations by ID.
    pub allocs: BTreeMap<String, AllocRecord>,
    /// Service registrations by ID.
    pub services: BTreeMap<String, Registration>,
    /// Allocation IDs by (namespace, job): memdb's `job` index.
    allocs_by_job: HashMap<(String, String), BTreeSet<String>>,
    /// Registration IDs by (namespace, service name): memdb's
    /// `service_name` index (lookups stay O(k) with 10,000 registrations).
    services_by_name: HashMap<(String, String), BTreeSet<String>>,
    /// Deployments by ID.
    pub deployments: BTreeMap<String, Deployment>,
    /// The event broker of this server.
    pub broker: Broker,
    /// Settings.
    pub settings: StoreSettings,
}

/// One Raft apply in progress.
pub(crate) struct Txn {
    /// Its index.
    pub index: u64,
    /// The Raft message type every event of this apply is stamped with.
    pub kind: &'static str,
    events: Vec<Event>,
    touched: BTreeSet<&'static str>,
}

impl Txn {
    /// Marks a table as written (its index becomes this apply's).
    pub(crate) fn touch(&mut self, table: &'static str) {
        self.touched.insert(table);
    }

    fn push(
        &mut self,
        topic: &str,
        key: &str,
        ns: &str,
        filter_keys: Option<Vec<String>>,
        payload: Value,
    ) {
        self.events.push(Event {
            topic: topic.to_string(),
            kind: self.kind.to_string(),
            key: key.to_string(),
            namespace: ns.to_string(),
            filter_keys,
            index: self.index,
            payload,
        });
    }

    /// A `Service` event (upsert, or deletion with the before-state).
    pub(crate) fn service_event(&mut self, r: &Registration) {
        let fks = Some(vec![r.job_id.clone(), r.service_name.clone()]);
        self.push(
            "Service",
            &r.id,
            &r.namespace,
            fks,
            json!({"Service": r.to_json()}),
        );
    }

    /// An `Allocation` event (payload without `Job`).
    pub(crate) fn alloc_event(&mut self, a: &AllocRecord) {
        let fks = Some(vec![a.job_id.clone(), a.deployment_id.clone()]);
        self.push(
            "Allocation",
            &a.id,
            &a.namespace,
            fks,
            json!({"Allocation": a.to_json(false)}),
        );
    }

    /// A `Job` event; `deleted` adds `"Deleted": true` (purge, 1.11.3+).
    pub(crate) fn job_event(&mut self, job: &Value, deleted: bool) {
        let mut payload = json!({"Job": job});
        if deleted {
            payload["Deleted"] = json!(true);
        }
        self.push(
            "Job",
            str_field(job, "ID"),
            str_field(job, "Namespace"),
            None,
            payload,
        );
    }

    /// An `Evaluation` event.
    pub(crate) fn eval_event(&mut self, eval: &Value) {
        let fks = Some(vec![
            str_field(eval, "JobID").to_string(),
            str_field(eval, "DeploymentID").to_string(),
        ]);
        self.push(
            "Evaluation",
            str_field(eval, "ID"),
            str_field(eval, "Namespace"),
            fks,
            json!({"Evaluation": eval}),
        );
    }

    /// A `Deployment` event.
    pub(crate) fn deployment_event(&mut self, d: &Deployment) {
        let fks = Some(vec![d.job_id.clone()]);
        self.push(
            "Deployment",
            &d.id,
            &d.namespace,
            fks,
            json!({"Deployment": d.to_json()}),
        );
    }

    /// A `Node` event (not namespaced).
    pub(crate) fn node_event(&mut self, node: &Value) {
        self.push(
            "Node",
            str_field(node, "ID"),
            "",
            None,
            json!({"Node": node}),
        );
    }
}

impl State {
    /// A fresh store (index 0) whose broker starts at `generation`.
    pub(crate) fn new(settings: StoreSettings, generation: u64) -> Self {
        State {
            index: 0,
            table_index: BTreeMap::new(),
            namespaces: BTreeSet::from(["default".to_string()]),
            jobs: BTreeMap::new(),
            allocs: BTreeMap::new(),
            services: BTreeMap::new(),
            allocs_by_job: HashMap::new(),
            services_by_name: HashMap::new(),
            deployments: BTreeMap::new(),
            broker: Broker::new(settings.buffer_size, generation),
            settings,
        }
    }

    /// Starts a Raft apply: the global index moves even if nothing changes.
    pub(crate) fn begin(&mut self, kind: &'static str) -> Txn {
        self.index += 1;
        Txn {
            index: self.index,
            kind,
            events: Vec::new(),
            touched: BTreeSet::new(),
        }
    }

    /// Commits an apply: table indexes move, its events are published as one batch.
    pub(crate) fn commit(&mut self, txn: Txn) {
        for t in txn.touched {
            self.table_index.insert(t, txn.index);
        }
        self.broker.publish(Batch {
            index: txn.index,
            events: txn.events,
        });
    }

    /// The index of a table (0 if never written).
    pub(crate) fn table_index(&self, table: &str) -> u64 {
        self.table_index.get(table).copied().unwrap_or(0)
    }

    /// Upserts registrations as the client's `ServiceRegistration.Upsert` does:
    /// unchanged ones produce no event and do not move the table index.
    pub(crate) fn upsert_registrations(&mut self, txn: &mut Txn, regs: Vec<Registration>) {
        for mut r in regs {
            match self.services.get(&r.id) {
                Some(existing) if existing.same_content(&r) => continue,
                Some(existing) => r.create_index = existing.create_index,
                None => r.create_index = txn.index,
            }
            r.modify_index = txn.index;
            txn.service_event(&r);
            txn.touch(tables::SERVICES);
            self.services_by_name
                .entry((r.namespace.clone(), r.service_name.clone()))
                .or_default()
                .insert(r.id.clone());
            self.services.insert(r.id.clone(), r);
        }
    }

    /// Deletes registrations, emitting each one's before-state.
    pub(crate) fn delete_registrations(&mut self, txn: &mut Txn, ids: &[String]) {
        for id in ids {
            if let Some(r) = self.services.remove(id) {
                let key = (r.namespace.clone(), r.service_name.clone());
                if let Some(ids) = self.services_by_name.get_mut(&key) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.services_by_name.remove(&key);
                    }
                }
                txn.service_event(&r);
                txn.touch(tables::SERVICES);
            }
        }
    }

    /// IDs of the registrations of an allocation.
    pub(crate) fn registrations_of_alloc(&self, alloc_id: &str) -> Vec<String> {
        self.services
            .values()
            .filter(|r| r.alloc_id == alloc_id)
            .map(|r| r.id.clone())
            .collect()
    }

    /// Registrations of (namespace, name), ordered by ID.
    pub(crate) fn registrations_named(&self, ns: &str, name: &str) -> Vec<&Registration> {
        let key = (ns.to_string(), name.to_string());
        self.services_by_name
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.services.get(id))
            .collect()
    }

    /// Records a new allocation (and indexes it by job).
    pub(crate) fn insert_alloc(&mut self, alloc: AllocRecord) {
        self.allocs_by_job
            .entry((alloc.namespace.clone(), alloc.job_id.clone()))
            .or_default()
            .insert(alloc.id.clone());
        self.allocs.insert(alloc.id.clone(), alloc);
    }

    /// Every allocation of a job (terminal included), ordered by ID.
    pub(crate) fn allocs_of(&self, ns: &str, job_id: &str) -> impl Iterator<Item = &AllocRecord> {
        let key = (ns.to_string(), job_id.to_string());
        self.allocs_by_job
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.allocs.get(id))
    }

    /// Non-terminal allocations of a job.
    pub(crate) fn live_allocs_of_job(&self, ns: &str, job_id: &str) -> Vec<String> {
        self.allocs_of(ns, job_id)
            .filter(|a| !a.terminal())
            .map(|a| a.id.clone())
            .collect()
    }

    /// `getJobStatus`: running with a live alloc; dead once all allocs are
    /// terminal or the job is stopped; pending before any placement.
    pub(crate) fn job_status(&self, ns: &str, job_id: &str, stopped: bool) -> &'static str {
        let mut any = false;
        for a in self.allocs_of(ns, job_id) {
            if !a.terminal() {
                return "running";
            }
            any = true;
        }
        if any || stopped { "dead" } else { "pending" }
    }

    /// Recomputes a job's status in `txn`; a change updates the `jobs` row
    /// (ModifyIndex too) and emits a Job event of the apply's type.
    pub(crate) fn refresh_job_status(&mut self, txn: &mut Txn, ns: &str, job_id: &str) {
        let key = (ns.to_string(), job_id.to_string());
        let Some(rec) = self.jobs.get(&key) else {
            return;
        };
        let stopped = rec
            .current
            .get("Stop")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let status = self.job_status(ns, job_id, stopped);
        let Some(rec) = self.jobs.get_mut(&key) else {
            return;
        };
        if str_field(&rec.current, "Status") == status {
            return;
        }
        rec.current["Status"] = json!(status);
        rec.current["ModifyIndex"] = json!(txn.index);
        txn.touch(tables::JOBS);
        let job = rec.current.clone();
        txn.job_event(&job, false);
    }
}
