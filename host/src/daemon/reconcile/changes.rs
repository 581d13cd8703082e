//! The watcher's changes into the reconciler's catalog, its indexes, and what is dirty.

use super::Reconciler;
use super::index::{Index, key};
use crate::daemon::canaries;
use crate::haproxy::Driver;
use crate::nomad::{Api, Catalog, Change, Instance};
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
                let touched: Vec<(ServiceKey, String)> =
                    instances_of_job(&self.index, &self.catalog, namespace, job)
                        .map(|i| (key(i), i.id.clone()))
                        .collect();
                for (service, id) in touched {
                    self.lookups.remove(&id);
                    self.dirty.insert(service);
                }
            }
            Change::Canaries(updates) => {
                let (index, catalog) = (&self.index, &self.catalog);
                let touched = canaries::apply(&mut self.canaries, updates, |namespace, job| {
                    instances_of_job(index, catalog, namespace, job)
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

/// The known instances of a job: those of the services it registers.
fn instances_of_job<'a>(
    index: &'a Index,
    catalog: &'a Catalog,
    namespace: &str,
    job: &str,
) -> impl Iterator<Item = &'a Instance> + use<'a> {
    let (namespace, job) = (namespace.to_string(), job.to_string());
    index
        .services_of_job(&namespace, &job)
        .flat_map(|service| index.of_service(service))
        .filter_map(|id| catalog.get(id))
        .filter(move |i| i.namespace == namespace && i.job == job)
}
