//! The catalog's registration IDs by service and by job, so that a change or
//! a pass reads only the instances it concerns, not the whole catalog.

use crate::nomad::Instance;
use crate::plan::ServiceKey;
use std::collections::{BTreeSet, HashMap};

/// Registration IDs by service and by (namespace, job).
#[derive(Debug, Default)]
pub(super) struct Index {
    by_service: HashMap<ServiceKey, BTreeSet<String>>,
    by_job: HashMap<(String, String), BTreeSet<String>>,
}

/// The service an instance registers.
pub(super) fn key(instance: &Instance) -> ServiceKey {
    ServiceKey {
        namespace: instance.namespace.clone(),
        name: instance.service.clone(),
    }
}

fn job_key(instance: &Instance) -> (String, String) {
    (instance.namespace.clone(), instance.job.clone())
}

impl Index {
    /// Indexes an instance the catalog now holds.
    pub fn insert(&mut self, instance: &Instance) {
        let id = &instance.id;
        self.by_service
            .entry(key(instance))
            .or_default()
            .insert(id.clone());
        self.by_job
            .entry(job_key(instance))
            .or_default()
            .insert(id.clone());
    }

    /// Forgets an instance as the catalog held it.
    pub fn remove(&mut self, instance: &Instance) {
        forget(&mut self.by_service, key(instance), &instance.id);
        forget(&mut self.by_job, job_key(instance), &instance.id);
    }

    /// Indexes these instances only.
    pub fn rebuild<'a>(&mut self, instances: impl Iterator<Item = &'a Instance>) {
        self.by_service.clear();
        self.by_job.clear();
        for instance in instances {
            self.insert(instance);
        }
    }

    /// The registration IDs of `service`.
    pub fn of_service(&self, service: &ServiceKey) -> impl Iterator<Item = &String> {
        self.by_service.get(service).into_iter().flatten()
    }

    /// The registration IDs of a job's instances.
    pub fn of_job(&self, namespace: &str, job: &str) -> impl Iterator<Item = &String> + use<'_> {
        self.by_job
            .get(&(namespace.to_string(), job.to_string()))
            .into_iter()
            .flatten()
    }

    /// Every service with an instance.
    pub fn services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.by_service.keys()
    }
}

fn forget<K: std::hash::Hash + Eq>(index: &mut HashMap<K, BTreeSet<String>>, k: K, id: &str) {
    if let Some(ids) = index.get_mut(&k) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, service: &str, job: &str) -> Instance {
        Instance {
            id: id.into(),
            namespace: "default".into(),
            service: service.into(),
            job: job.into(),
            alloc: format!("alloc-{id}"),
            node: "node".into(),
            datacenter: "dc1".into(),
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 80,
            tags: Vec::new(),
            create_index: 1,
            modify_index: 1,
        }
    }

    #[test]
    fn finds_instances_by_service_and_by_job_and_forgets_them() {
        let mut index = Index::default();
        let (a, b, c) = (
            instance("a", "web", "shop"),
            instance("b", "api", "shop"),
            instance("c", "web", "blog"),
        );
        for i in [&a, &b, &c] {
            index.insert(i);
        }
        let ids = |it: Box<dyn Iterator<Item = &String> + '_>| it.cloned().collect::<Vec<_>>();
        assert_eq!(ids(Box::new(index.of_job("default", "shop"))), ["a", "b"]);
        assert_eq!(ids(Box::new(index.of_service(&key(&a)))), ["a", "c"]);
        assert!(index.of_job("other", "shop").next().is_none());
        index.remove(&b);
        assert_eq!(ids(Box::new(index.of_job("default", "shop"))), ["a"]);
        assert_eq!(index.services().count(), 1);
        index.rebuild([&b].into_iter());
        assert_eq!(ids(Box::new(index.of_job("default", "shop"))), ["b"]);
        assert!(index.of_service(&key(&a)).next().is_none());
    }
}
