//! The watcher's changes into the reconciler's catalog, its index by service, and what is dirty.

use super::Reconciler;
use crate::daemon::canaries;
use crate::haproxy::Driver;
use crate::nomad::{Api, Change, Instance};
use crate::plan::ServiceKey;
use std::collections::HashSet;

pub(super) fn key(instance: &Instance) -> ServiceKey {
    ServiceKey {
        namespace: instance.namespace.clone(),
        name: instance.service.clone(),
    }
}

impl<D: Driver, C: Api> Reconciler<D, C> {
    /// Applies one change from the watcher: only marks what it touches dirty.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Upserted(i) | Change::Removed(i) => {
                let old = self.catalog.get(&i.id).map(key);
                if self.catalog.apply(change) {
                    if let Some(old) = old {
                        self.unindex(&old, &i.id);
                        self.dirty.insert(old);
                    }
                    self.dirty.insert(key(i));
                    if matches!(change, Change::Removed(_)) {
                        self.lookups.remove(&i.id);
                    } else {
                        self.by_service
                            .entry(key(i))
                            .or_default()
                            .insert(i.id.clone());
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
                    self.by_service.clear();
                    for i in self.catalog.instances() {
                        self.by_service
                            .entry(key(i))
                            .or_default()
                            .insert(i.id.clone());
                    }
                }
                self.listed.insert(scope.to_string());
            }
            Change::JobChanged { namespace, job } => {
                let touched: Vec<(ServiceKey, String)> = self
                    .catalog
                    .instances()
                    .filter(|i| &i.namespace == namespace && &i.job == job)
                    .map(|i| (key(i), i.id.clone()))
                    .collect();
                for (service, id) in touched {
                    self.lookups.remove(&id);
                    self.dirty.insert(service);
                }
            }
            Change::Canaries(updates) => {
                let touched = canaries::apply(&mut self.canaries, &self.catalog, updates);
                self.dirty.extend(touched);
            }
        }
    }

    fn unindex(&mut self, service: &ServiceKey, id: &str) {
        if let Some(ids) = self.by_service.get_mut(service) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_service.remove(service);
            }
        }
    }

    /// The known instances of `service`.
    pub(super) fn instances_of<'a>(
        &'a self,
        service: &ServiceKey,
    ) -> impl Iterator<Item = &'a Instance> {
        self.by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|id| self.catalog.get(id))
    }
}
