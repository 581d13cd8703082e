//! The catalog's registration IDs by service, and its services by job, so
//! that a change or a pass reads only the instances it concerns, not the
//! whole catalog.

use crate::nomad::Instance;
use crate::plan::ServiceKey;
use std::collections::{BTreeSet, HashMap};

/// Registration IDs by service, and services by (namespace, job) with how
/// many of their instances the job runs (a few services per job: far
/// smaller than a second set of IDs).
#[derive(Debug, Default)]
pub(super) struct Index {
    by_service: HashMap<ServiceKey, BTreeSet<String>>,
    by_job: HashMap<(String, String), HashMap<ServiceKey, usize>>,
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
        let service = key(instance);
        if self
            .by_service
            .entry(service.clone())
            .or_default()
            .insert(id.clone())
        {
            *self
                .by_job
                .entry(job_key(instance))
                .or_default()
                .entry(service)
                .or_default() += 1;
        }
    }

    /// Forgets an instance as the catalog held it.
    pub fn remove(&mut self, instance: &Instance) {
        let service = key(instance);
        let Some(ids) = self.by_service.get_mut(&service) else {
            return;
        };
        if !ids.remove(&instance.id) {
            return;
        }
        if ids.is_empty() {
            self.by_service.remove(&service);
        }
        let job = job_key(instance);
        if let Some(services) = self.by_job.get_mut(&job) {
            if let Some(count) = services.get_mut(&service) {
                *count -= 1;
                if *count == 0 {
                    services.remove(&service);
                }
            }
            if services.is_empty() {
                self.by_job.remove(&job);
            }
        }
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

    /// The services a job's instances register (their other instances
    /// may belong to other jobs).
    pub fn services_of_job(
        &self,
        namespace: &str,
        job: &str,
    ) -> impl Iterator<Item = &ServiceKey> + use<'_> {
        self.by_job
            .get(&(namespace.to_string(), job.to_string()))
            .into_iter()
            .flat_map(HashMap::keys)
    }

    /// Every service with an instance.
    pub fn services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.by_service.keys()
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
    fn finds_instances_by_service_and_services_by_job_and_forgets_them() {
        let mut index = Index::default();
        let (a, b, c, d) = (
            instance("a", "web", "shop"),
            instance("b", "api", "shop"),
            instance("c", "web", "blog"),
            instance("d", "api", "shop"),
        );
        for i in [&a, &b, &c, &d, &d] {
            index.insert(i);
        }
        let names = |index: &Index, job: &str| {
            let mut names: Vec<String> = index
                .services_of_job("default", job)
                .map(|s| s.name.clone())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&index, "shop"), ["api", "web"]);
        let ids: Vec<&String> = index.of_service(&key(&a)).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(index.services_of_job("other", "shop").next().is_none());
        index.remove(&b);
        assert_eq!(names(&index, "shop"), ["api", "web"], "d is still there");
        index.remove(&d);
        index.remove(&d);
        assert_eq!(names(&index, "shop"), ["web"]);
        assert_eq!(index.services().count(), 1);
        index.rebuild([&b].into_iter());
        assert_eq!(names(&index, "shop"), ["api"]);
        assert!(names(&index, "blog").is_empty());
        assert!(index.of_service(&key(&a)).next().is_none());
    }
}
