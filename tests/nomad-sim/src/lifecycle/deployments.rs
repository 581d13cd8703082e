//! A deployment's end as Nomad's deployment watcher applies it: promotion of
//! every canary at once (`DeploymentPromotion`), or failure and cancellation
//! (`DeploymentStatusUpdate`). Each apply also creates an evaluation.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::{now_nanos_i64, uuid};
use crate::model::deployments::Deployment;
use crate::state::{State, Txn, tables};

/// How a deployment ends without promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentEnd {
    /// `failed`: unhealthy allocations, a missed progress deadline, or an
    /// operator's `nomad deployment fail`.
    Failed,
    /// `cancelled`: a newer version of the job was registered.
    Cancelled,
}

impl DeploymentEnd {
    /// `Status` and `StatusDescription` as Nomad's structs name them
    /// (`DeploymentStatusDescriptionFailedByUser`, `…NewerJob`).
    fn status(self) -> (&'static str, &'static str) {
        match self {
            DeploymentEnd::Failed => ("failed", "Deployment marked as failed"),
            DeploymentEnd::Cancelled => ("cancelled", "Cancelled due to newer version of job"),
        }
    }
}

/// The evaluation a deployment apply creates (`TriggeredBy` as Nomad's
/// deployment watcher sets it).
fn eval_for(txn: &Txn, d: &Deployment, triggered_by: &str) -> Value {
    let now = now_nanos_i64();
    json!({
        "ID": uuid(), "Namespace": d.namespace, "Priority": 50, "Type": "service",
        "TriggeredBy": triggered_by, "JobID": d.job_id,
        "JobModifyIndex": d.job_modify_index, "NodeID": "", "NodeModifyIndex": 0,
        "DeploymentID": d.id, "Status": "pending", "StatusDescription": "",
        "Wait": 0, "WaitUntil": "0001-01-01T00:00:00Z", "NextEval": "",
        "PreviousEval": "", "BlockedEval": "",
        "CreateIndex": txn.index, "ModifyIndex": txn.index,
        "CreateTime": now, "ModifyTime": now,
    })
}

impl State {
    /// The active deployment of `alloc_id`, if any.
    fn active_deployment_of(&self, alloc_id: &str) -> Option<String> {
        let a = self.allocs.get(alloc_id)?;
        self.deployments
            .get(&a.deployment_id)
            .filter(|d| d.active())
            .map(|d| d.id.clone())
    }

    /// Promotes every canary of `alloc_id`'s deployment in one
    /// `DeploymentPromotion` apply (the group's `Promoted`, each canary's
    /// `DeploymentStatus.Canary=false`, an evaluation); the clients then
    /// re-register them with `Tags`. False without an active deployment.
    pub(crate) fn promote_deployment(&mut self, alloc_id: &str) -> bool {
        let Some(id) = self.active_deployment_of(alloc_id) else {
            return false;
        };
        let canaries: Vec<String> = self
            .allocs
            .values()
            .filter(|a| a.deployment_id == id && a.canary && !a.terminal())
            .map(|a| a.id.clone())
            .collect();
        let mut txn = self.begin("DeploymentPromotion");
        let index = txn.index;
        for alloc in &canaries {
            self.update_alloc(&mut txn, alloc, true, |a| {
                a.canary = false;
                a.deployment_modify_index = index;
            });
        }
        let d = self.deployments.get_mut(&id).expect("found above");
        d.promoted = true;
        d.status_description = "Deployment is running".into();
        d.modify_index = index;
        let d = d.clone();
        txn.deployment_event(&d);
        txn.touch(tables::DEPLOYMENT);
        txn.eval_event(&eval_for(&txn, &d, "deployment-watcher"));
        txn.touch(tables::EVALS);
        self.commit(txn);
        for alloc in &canaries {
            self.client_register(alloc);
        }
        true
    }

    /// Ends `alloc_id`'s deployment as `end` in one `DeploymentStatusUpdate`
    /// apply (with an evaluation). Its canaries keep `Canary: true` and their
    /// canary tags until the scheduler stops them ([`State::stop_alloc`]).
    /// False without an active deployment.
    pub(crate) fn end_deployment(&mut self, alloc_id: &str, end: DeploymentEnd) -> bool {
        let Some(id) = self.active_deployment_of(alloc_id) else {
            return false;
        };
        let mut txn = self.begin("DeploymentStatusUpdate");
        let (status, description) = end.status();
        let d = self.deployments.get_mut(&id).expect("found above");
        d.status = status.into();
        d.status_description = description.into();
        d.modify_index = txn.index;
        let d = d.clone();
        txn.deployment_event(&d);
        txn.touch(tables::DEPLOYMENT);
        txn.eval_event(&eval_for(&txn, &d, "deployment-watcher"));
        txn.touch(tables::EVALS);
        self.commit(txn);
        true
    }
}
