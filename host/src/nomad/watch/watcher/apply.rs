//! How stream events change a scope's view: upserts and deletions by topic,
//! skipping what the last list already holds; `Job` and planned
//! `Allocation` events go to the check cache and become `JobChanged`.

use super::ScopeLoop;
use crate::nomad::watch::client::Api;
use crate::nomad::watch::events::{Delta, delta};
use crate::nomad::watch::instance::{Change, Instance};
use crate::nomad::watch::wire::Frame;
use std::collections::BTreeSet;

impl<C: Api> ScopeLoop<C> {
    pub(super) fn apply_frame(&mut self, frame: Frame, requested: u64, changes: &mut Vec<Change>) {
        if frame.index < requested {
            tracing::debug!(scope = %self.scope, index = frame.index, requested, "dropping an event frame older than requested");
            return;
        }
        self.last_index = Some(self.last_index.unwrap_or(0).max(frame.index));
        let index = frame.index;
        self.board.update(self.key(), |h| {
            h.frames += 1;
            h.last_index = h.last_index.max(index);
        });
        let mut jobs = BTreeSet::new();
        let mut canaries = Vec::new();
        for event in frame.events {
            let idx = if event.index > 0 { event.index } else { index };
            canaries.extend(crate::nomad::watch::events::canaries(&event));
            match delta(event) {
                Delta::ServiceUpserted(reg) => {
                    self.services_index = self.services_index.max(idx);
                    if self.is_stale(idx, &reg.namespace, &reg.service_name) {
                        continue;
                    }
                    match Instance::try_from(reg) {
                        Ok(i) if self.scope.covers(&i.namespace) => {
                            changes.extend(self.view.upsert(i));
                        }
                        Ok(_) => {}
                        Err(reason) => {
                            tracing::warn!(scope = %self.scope, %reason, "ignoring a registration")
                        }
                    }
                }
                Delta::ServiceDeleted { id } => {
                    self.services_index = self.services_index.max(idx);
                    let stale = self
                        .view
                        .get(&id)
                        .is_some_and(|i| self.is_stale(idx, &i.namespace, &i.service));
                    if !stale {
                        changes.extend(self.view.remove(&id));
                    }
                }
                Delta::Job {
                    namespace,
                    job,
                    version,
                    create_index,
                    deleted,
                } => {
                    if let Some(inv) = &self.invalidate {
                        inv.job_event(&namespace, &job, version, create_index, deleted);
                    }
                    if self.view.has_job(&namespace, &job) {
                        jobs.insert((namespace, job));
                    }
                }
                Delta::AllocationPlanned {
                    namespace,
                    job,
                    alloc,
                } => {
                    // Older than the list (the stream opens before it): the
                    // list's registrations already reflect it.
                    if idx > self.stale_all && self.view.has_alloc(&alloc) {
                        if let Some(inv) = &self.invalidate {
                            inv.alloc_planned(&namespace, &job, &alloc);
                        }
                        jobs.insert((namespace, job));
                    }
                }
                Delta::Ignored => {}
            }
        }
        if !canaries.is_empty() {
            changes.push(Change::Canaries(canaries));
        }
        changes.extend(
            jobs.into_iter()
                .map(|(namespace, job)| Change::JobChanged { namespace, job }),
        );
    }

    fn is_stale(&self, idx: u64, namespace: &str, service: &str) -> bool {
        idx <= self.stale_all
            || self
                .stale_names
                .get(&(namespace.to_string(), service.to_string()))
                .is_some_and(|listed| idx <= *listed)
    }
}
