//! The reconciler's side of canaries: deployment events update the
//! [`CanaryBoard`] and mark the services of the allocations that changed
//! dirty; each plan then gets its canary weights ([`crate::plan::canary`]).

use crate::escape::one_line as escape_log;
use crate::nomad::{CanaryBoard, CanaryState, CanaryUpdate, Instance};
use crate::plan::canary::{self, CanaryInput};
use crate::plan::{ServiceKey, ServicePlan};
use std::collections::BTreeSet;

/// Records `updates`; the services whose instances' canary status changed.
/// `of_job` gives a job's instances: an update names its job, so only
/// those are looked at.
pub(super) fn apply<'a, I>(
    board: &mut CanaryBoard,
    updates: &[CanaryUpdate],
    of_job: impl Fn(&str, &str) -> I,
) -> BTreeSet<ServiceKey>
where
    I: Iterator<Item = &'a Instance>,
{
    let mut services = BTreeSet::new();
    for update in updates {
        if !board.apply(update) {
            continue;
        }
        let what = match update.state {
            Some(CanaryState::Canary) => "a canary of a running deployment",
            Some(CanaryState::Failed) => {
                "a canary of a failed or cancelled deployment: draining until Nomad stops it"
            }
            None => "no longer a canary (promoted, deployment done, or stopped)",
        };
        tracing::debug!(
            alloc = %escape_log(&update.alloc),
            job = %escape_log(&update.job),
            namespace = %escape_log(&update.namespace),
            "allocation is {what}"
        );
        for i in of_job(&update.namespace, &update.job).filter(|i| i.alloc == update.alloc) {
            if let Some(state) = board.get(&i.alloc) {
                tracing::info!(
                    service = %escape_log(&i.service),
                    namespace = %escape_log(&i.namespace),
                    alloc = %escape_log(&i.alloc),
                    canary = ?state,
                    "canary status changed"
                );
            } else {
                tracing::info!(
                    service = %escape_log(&i.service),
                    namespace = %escape_log(&i.namespace),
                    alloc = %escape_log(&i.alloc),
                    "canary promoted or stopped: normal weight"
                );
            }
            services.insert(ServiceKey {
                namespace: i.namespace.clone(),
                name: i.service.clone(),
            });
        }
    }
    services
}

/// Gives the canaries of `plan` their weights.
pub(super) fn weigh(plan: &mut ServicePlan, instances: &[&Instance], board: &CanaryBoard) {
    let inputs: Vec<CanaryInput> = instances
        .iter()
        .map(|instance| CanaryInput {
            instance,
            state: board.get(&instance.alloc),
        })
        .collect();
    canary::apply(plan, &inputs);
}
