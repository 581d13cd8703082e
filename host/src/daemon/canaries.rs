//! The reconciler's side of canaries: deployment events update the
//! [`CanaryBoard`] and mark the services of the allocations that changed
//! dirty; each plan then gets its canary weights ([`crate::plan::canary`]).

use crate::escape::one_line as escape_log;
use crate::nomad::{CanaryBoard, CanaryState, CanaryUpdate, Catalog, Instance};
use crate::plan::canary::{self, CanaryInput};
use crate::plan::{ServiceKey, ServicePlan};
use std::collections::BTreeSet;

/// Records `updates`; the services whose instances' canary status changed.
pub(super) fn apply(
    board: &mut CanaryBoard,
    catalog: &Catalog,
    updates: &[CanaryUpdate],
) -> BTreeSet<ServiceKey> {
    let mut changed: BTreeSet<&str> = BTreeSet::new();
    for update in updates {
        if board.apply(update) {
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
            changed.insert(update.alloc.as_str());
        }
    }
    if changed.is_empty() {
        return BTreeSet::new();
    }
    catalog
        .instances()
        .filter(|i| changed.contains(i.alloc.as_str()))
        .map(|i| {
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
            ServiceKey {
                namespace: i.namespace.clone(),
                name: i.service.clone(),
            }
        })
        .collect()
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
