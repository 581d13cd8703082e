//! Placement (plan apply, client registration, client running update),
//! deployments for canaries, and canary promotion.

use std::net::IpAddr;

use serde_json::Value;

use super::{PlaceAlloc, SimError};
use crate::ids::{now_nanos_i64, uuid};
use crate::model::allocs::{AllocRecord, PortMapping};
use crate::model::deployments::Deployment;
use crate::model::jobs::{group, version_of};
use crate::model::registrations;
use crate::model::{array_field, str_field};
use crate::state::{State, Txn, tables};

/// The `To` of a port label in the group's (or a task's) network spec.
fn port_to(tg: &Value, label: &str) -> i64 {
    let mut networks: Vec<&Value> = array_field(tg, "Networks").iter().collect();
    for task in array_field(tg, "Tasks") {
        if let Some(res) = task.get("Resources") {
            networks.extend(array_field(res, "Networks"));
        }
    }
    networks
        .iter()
        .flat_map(|n| {
            array_field(n, "DynamicPorts")
                .iter()
                .chain(array_field(n, "ReservedPorts"))
        })
        .find(|p| str_field(p, "Label") == label)
        .and_then(|p| p.get("To"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

impl State {
    /// Places an allocation: the plan apply (`PlanResult`), the client's
    /// registration (`ServiceRegistration`), the client's running update
    /// (`AllocationUpdated`).
    pub(crate) fn place_alloc(&mut self, req: PlaceAlloc) -> Result<String, SimError> {
        match req.address.parse::<IpAddr>() {
            Ok(ip) if !ip.is_unspecified() => {}
            _ => return Err(SimError::InvalidAddress(req.address.clone())),
        }
        let key = (req.namespace.clone(), req.job_id.clone());
        let rec = self.jobs.get(&key).ok_or_else(|| SimError::JobNotFound {
            namespace: req.namespace.clone(),
            id: req.job_id.clone(),
        })?;
        if rec
            .current
            .get("Stop")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Err(SimError::JobStopped(req.job_id.clone()));
        }
        let version = req.version.unwrap_or_else(|| version_of(&rec.current));
        let snapshot = rec
            .version(version)
            .ok_or(SimError::VersionNotFound(version))?
            .clone();
        let tg = group(&snapshot, &req.group)
            .ok_or_else(|| SimError::GroupNotFound(req.group.clone()))?
            .clone();
        let used: Vec<u64> = self
            .allocs_of(&req.namespace, &req.job_id)
            .filter(|a| a.group == req.group && !a.terminal())
            .map(|a| a.index_in_group)
            .collect();
        let index_in_group = (0..).find(|n| !used.contains(n)).unwrap_or(0);
        let node_id = uuid();
        let now = now_nanos_i64();
        let mut txn = self.begin("PlanResult");
        let alloc_id = uuid();
        let deployment_id =
            self.attach_deployment(&mut txn, &req, &alloc_id, &snapshot, &tg, version);
        let alloc = AllocRecord {
            id: alloc_id,
            eval_id: uuid(),
            name: format!("{}.{}[{index_in_group}]", req.job_id, req.group),
            index_in_group,
            namespace: req.namespace.clone(),
            node_name: format!("sim-{}", &node_id[..8]),
            node_id,
            job_id: req.job_id.clone(),
            job_version: version,
            job_create_index: snapshot
                .get("CreateIndex")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            group: req.group.clone(),
            tasks: array_field(&tg, "Tasks")
                .iter()
                .map(|t| str_field(t, "Name").to_string())
                .collect(),
            address: req.address.clone(),
            ports: req
                .ports
                .iter()
                .map(|(label, value)| PortMapping {
                    label: label.clone(),
                    value: i64::from(*value),
                    to: port_to(&tg, label),
                })
                .collect(),
            job: snapshot,
            canary: req.canary,
            deployment_modify_index: if deployment_id.is_empty() {
                0
            } else {
                txn.index
            },
            deployment_id,
            desired_status: "run".into(),
            desired_description: String::new(),
            client_status: "pending".into(),
            client_description: "No tasks have started".into(),
            create_index: txn.index,
            modify_index: txn.index,
            alloc_modify_index: txn.index,
            create_time: now,
            modify_time: now,
            started_at: None,
            finished_at: None,
        };
        let alloc_id = alloc.id.clone();
        txn.alloc_event(&alloc);
        txn.touch(tables::ALLOCS);
        self.insert_alloc(alloc);
        self.refresh_job_status(&mut txn, &req.namespace, &req.job_id);
        self.commit(txn);

        self.client_register(&alloc_id);

        let mut txn = self.begin("AllocationUpdated");
        self.update_alloc(&mut txn, &alloc_id, false, |a| {
            a.client_status = "running".into();
            a.client_description = "Tasks are running".into();
            a.started_at = Some(now_nanos_i64());
        });
        self.refresh_job_status(&mut txn, &req.namespace, &req.job_id);
        self.commit(txn);
        Ok(alloc_id)
    }

    /// The client's `ServiceRegistration.Upsert` for an alloc; no apply if nothing changed.
    pub(super) fn client_register(&mut self, alloc_id: &str) {
        let Some(alloc) = self.allocs.get(alloc_id) else {
            return;
        };
        let regs =
            registrations::for_alloc(alloc, &self.settings.region, &self.settings.datacenter);
        let changed = regs.iter().any(|r| {
            self.services
                .get(&r.id)
                .is_none_or(|existing| !existing.same_content(r))
        });
        if !changed {
            return;
        }
        let mut txn = self.begin("ServiceRegistration");
        self.upsert_registrations(&mut txn, regs);
        self.commit(txn);
    }

    /// Finds or creates the deployment a placement belongs to (canaries always
    /// have one); returns its ID or "".
    fn attach_deployment(
        &mut self,
        txn: &mut Txn,
        req: &PlaceAlloc,
        alloc_id: &str,
        job: &Value,
        tg: &Value,
        version: u64,
    ) -> String {
        let existing = self.deployments.values_mut().find(|d| {
            d.active()
                && d.namespace == req.namespace
                && d.job_id == req.job_id
                && d.job_version == version
        });
        let d = match existing {
            Some(d) => d,
            None if req.canary => {
                let update = tg.get("Update").unwrap_or(&Value::Null);
                let d = Deployment {
                    id: uuid(),
                    namespace: req.namespace.clone(),
                    job_id: req.job_id.clone(),
                    job_version: version,
                    job_create_index: job.get("CreateIndex").and_then(Value::as_u64).unwrap_or(0),
                    job_modify_index: job
                        .get("JobModifyIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    group: req.group.clone(),
                    desired_total: tg.get("Count").and_then(Value::as_u64).unwrap_or(1),
                    desired_canaries: update.get("Canary").and_then(Value::as_u64).unwrap_or(1),
                    placed_canaries: Vec::new(),
                    placed_allocs: 0,
                    promoted: false,
                    status: "running".into(),
                    status_description: "Deployment is running but requires manual promotion"
                        .into(),
                    create_index: txn.index,
                    modify_index: txn.index,
                };
                self.deployments.entry(d.id.clone()).or_insert(d)
            }
            None => return String::new(),
        };
        d.placed_allocs += 1;
        // `updateDeploymentWithAlloc`: the same plan apply lists a canary.
        if req.canary {
            d.placed_canaries.push(alloc_id.to_string());
        }
        d.modify_index = txn.index;
        let d = d.clone();
        txn.deployment_event(&d);
        txn.touch(tables::DEPLOYMENT);
        d.id
    }

    /// Promotes a canary: Nomad promotes a deployment's task group as a
    /// whole (`DeploymentPromotion`), so every canary of its deployment goes
    /// with it ([`State::promote_deployment`]). False if not a live canary.
    pub(crate) fn promote(&mut self, alloc_id: &str) -> bool {
        match self.allocs.get(alloc_id) {
            Some(a) if a.canary && !a.terminal() => self.promote_deployment(alloc_id),
            _ => false,
        }
    }
}
