//! The watcher's changes into the reconciler's catalog, its indexes, and what is dirty.

use super::Reconciler;
use super::index::key;
use crate::daemon::canaries;
use crate::haproxy::Driver;
use crate::nomad::{Api, Change, Instance};
use crate::plan::ServiceKey;
use std::collections::HashSet;

impl<D: Driver, C: Api> Reconciler<D, C> {
    /// Applies one change from the watcher: only marks what it touches dirty.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Upserted(i) | Change::Removed(i) => {
                let old = self.catalog.get(&i.id).cloned();
                if self.catalog.apply(change) {
                    if let Some(old) = old {
                        self.index.remove(&old);
                        self.dirty.insert(key(&old));
                    }
                    self.dirty.insert(key(i));
                    if matches!(change, Change::Removed(_)) {
                        self.lookups.remove(&i.id);
                    } else {
                        self.index.insert(i);
                    }
                }
            }
            Change::Relisted { scope, instances } => {
                let before: Vec<(ServiceKey, String)> = self
                    .catalog
                    .instances()
                    .filter(|i| scope.covers(&i.namespace))
                    .map(|i| (key(i), i.id.clone()))
                    .collect();
                let kept: HashSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
                for (service, id) in &before {
                    if !kept.contains(id.as_str()) {
                        self.lookups.remove(id);
                    }
                    self.dirty.insert(service.clone());
                }
                self.dirty.extend(instances.iter().map(|i| key(i)));
                if self.catalog.apply(change) {
                    self.index.rebuild(self.catalog.instances());
                }
                self.listed.insert(scope.to_string());
            }
            Change::JobChanged { namespace, job } => {
                for id in self.index.of_job(namespace, job) {
                    self.lookups.remove(id);
                    if let Some(i) = self.catalog.get(id) {
                        self.dirty.insert(key(i));
                    }
                }
            }
            Change::Canaries(updates) => {
                let index = &self.index;
                let catalog = &self.catalog;
                let touched = canaries::apply(&mut self.canaries, updates, |namespace, job| {
                    index
                        .of_job(namespace, job)
                        .filter_map(move |id| catalog.get(id))
                });
                self.dirty.extend(touched);
            }
        }
    }

    /// The known instances of `service`.
    pub(super) fn instances_of<'a>(
        &'a self,
        service: &ServiceKey,
    ) -> impl Iterator<Item = &'a Instance> {
        self.index
            .of_service(service)
            .filter_map(|id| self.catalog.get(id))
    }
}
