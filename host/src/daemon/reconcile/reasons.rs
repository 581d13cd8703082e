//! Why a pass reloaded HAProxy: the backends its plan changed, and the reasons they give.

use crate::haproxy::ReloadOutcome;
use crate::metrics::ReloadReason;
use crate::plan::{BackendSpec, Desired};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a reload happened, from the backends the last plan changed (with
/// what they were before it) and the desired state now.
pub(super) fn reload_reasons(
    changed: &BTreeMap<String, Option<Arc<BackendSpec>>>,
    now: &Desired,
    reload: &ReloadOutcome,
) -> Vec<ReloadReason> {
    let backends = match reload {
        ReloadOutcome::Done { backends, .. } => backends,
        ReloadOutcome::Rejected { .. } => return vec![ReloadReason::Rejected],
        ReloadOutcome::Failed { .. } => return vec![ReloadReason::Failed],
        _ => return Vec::new(),
    };
    let mut reasons: Vec<ReloadReason> = backends
        .iter()
        .map(|name| {
            match (
                changed
                    .get(name)
                    .map_or_else(|| now.backends.get(name), Option::as_ref),
                now.backends.get(name),
            ) {
                (_, None) => ReloadReason::BackendRemoved,
                (None, Some(_)) => ReloadReason::BackendAdded,
                (Some(old), Some(new)) if old.check != new.check => ReloadReason::CheckChanged,
                (Some(old), Some(new))
                    if old
                        .servers
                        .values()
                        .map(|s| &s.check_args)
                        .ne(new.servers.values().map(|s| &s.check_args)) =>
                {
                    ReloadReason::CheckChanged
                }
                _ => ReloadReason::BackendChanged,
            }
        })
        .collect();
    reasons.sort_by_key(|r| r.as_str());
    reasons.dedup();
    if reasons.is_empty() {
        reasons.push(ReloadReason::BackendChanged);
    }
    if let ReloadOutcome::Done {
        held_back: Some(_), ..
    } = reload
    {
        reasons.push(ReloadReason::Rejected);
    }
    reasons
}
