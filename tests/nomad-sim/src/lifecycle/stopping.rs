//! Stopping allocations (the Raft type of the service deletions depends on
//! how) and `DELETE /v1/service/:name/:id`.

use serde_json::{Value, json};

use super::{StopKind, client_complete};
use crate::ids::now_nanos_i64;
use crate::model::allocs::AllocRecord;
use crate::state::{State, tables};

impl State {
    /// Stops an allocation the way `how` says. False if unknown or already terminal.
    pub(crate) fn stop_alloc(&mut self, alloc_id: &str, how: StopKind) -> bool {
        let Some(a) = self.allocs.get(alloc_id) else {
            return false;
        };
        if a.terminal() {
            return false;
        }
        let (ns, job_id) = (a.namespace.clone(), a.job_id.clone());
        let regs = self.registrations_of_alloc(alloc_id);
        match how {
            StopKind::ClientDeregister => {
                for reg in &regs {
                    let mut txn = self.begin("ServiceDeregistration");
                    self.delete_registrations(&mut txn, std::slice::from_ref(reg));
                    self.commit(txn);
                }
                let mut txn = self.begin("AllocationUpdated");
                self.update_alloc(&mut txn, alloc_id, false, client_complete);
                self.refresh_job_status(&mut txn, &ns, &job_id);
                self.commit(txn);
            }
            StopKind::ClientTerminal => {
                let mut txn = self.begin("AllocationUpdated");
                self.update_alloc(&mut txn, alloc_id, false, client_complete);
                self.delete_registrations(&mut txn, &regs);
                self.refresh_job_status(&mut txn, &ns, &job_id);
                self.commit(txn);
            }
            StopKind::PlanTerminal => {
                let mut txn = self.begin("PlanResult");
                self.update_alloc(&mut txn, alloc_id, true, |a| {
                    a.desired_status = "stop".into();
                    a.desired_description = "alloc not needed due to job update".into();
                });
                self.delete_registrations(&mut txn, &regs);
                self.refresh_job_status(&mut txn, &ns, &job_id);
                self.commit(txn);
                let mut txn = self.begin("AllocationUpdated");
                self.update_alloc(&mut txn, alloc_id, false, client_complete);
                self.refresh_job_status(&mut txn, &ns, &job_id);
                self.commit(txn);
            }
            StopKind::NodeDown => {
                let mut txn = self.begin("NodeStreamEvent");
                if let Some(a) = self.allocs.get(alloc_id) {
                    let node = node_json(a, txn.index, &self.settings.datacenter);
                    txn.node_event(&node);
                    txn.touch(tables::NODES);
                }
                self.delete_registrations(&mut txn, &regs);
                self.commit(txn);
                let mut txn = self.begin("PlanResult");
                self.update_alloc(&mut txn, alloc_id, true, |a| {
                    a.desired_status = "stop".into();
                    a.desired_description = "alloc is lost since its node is down".into();
                    a.client_status = "lost".into();
                    a.client_description = "alloc is lost since its node is down".into();
                    a.finished_at = Some(now_nanos_i64());
                });
                self.refresh_job_status(&mut txn, &ns, &job_id);
                self.commit(txn);
            }
        }
        true
    }

    /// `DELETE /v1/service/:name/:id`: one `ServiceDeregistration` apply; `Err` with
    /// the index when the registration does not exist (the apply still happens).
    pub(crate) fn delete_registration(&mut self, ns: &str, id: &str) -> Result<u64, u64> {
        let mut txn = self.begin("ServiceDeregistration");
        let index = txn.index;
        let found = self.services.get(id).is_some_and(|r| r.namespace == ns);
        if found {
            self.delete_registrations(&mut txn, &[id.to_string()]);
        }
        self.commit(txn);
        if found { Ok(index) } else { Err(index) }
    }
}

/// The (down) node an allocation ran on.
fn node_json(a: &AllocRecord, index: u64, datacenter: &str) -> Value {
    json!({
        "ID": a.node_id,
        "Name": a.node_name,
        "Datacenter": datacenter,
        "NodeClass": "",
        "NodePool": "default",
        "HTTPAddr": format!("{}:4646", a.address),
        "TLSEnabled": false,
        "Attributes": {"unique.network.ip-address": a.address},
        "Meta": null,
        "Drain": false,
        "SchedulingEligibility": "eligible",
        "Status": "down",
        "StatusDescription": "",
        "StatusUpdatedAt": now_nanos_i64() / 1_000_000_000,
        "CreateIndex": a.create_index,
        "ModifyIndex": index,
    })
}
