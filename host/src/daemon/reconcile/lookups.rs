//! The job-spec checks of the instances a pass plans, looked up concurrently.

use super::{Looked, Reconciler};
use crate::haproxy::Driver;
use crate::nomad::{Api, CheckLookup, Instance};
use crate::plan::ServiceKey;
use crate::plan::tags::ServiceTags;
use std::collections::{BTreeSet, HashMap};
use tokio::time::Instant;

impl<D: Driver, C: Api> Reconciler<D, C> {
    /// Looks up the job-spec checks of enabled instances of `dirty`
    /// services that have none for their current registration, concurrently.
    pub(super) async fn resolve_checks(&mut self, dirty: &BTreeSet<ServiceKey>) {
        let now = Instant::now();
        let wanted: Vec<Instance> = dirty
            .iter()
            .flat_map(|service| self.instances_of(service))
            .filter(|i| ServiceTags::parse(&i.tags).enabled)
            .filter(|i| match self.lookups.get(&i.id) {
                None => true,
                Some(l) => l.modify_index != i.modify_index || l.retry_at.is_some_and(|t| t <= now),
            })
            .cloned()
            .collect();
        let mut of_job: HashMap<(String, String), usize> = HashMap::new();
        for i in &wanted {
            *of_job
                .entry((i.namespace.clone(), i.job.clone()))
                .or_default() += 1;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for instance in wanted {
            let checks = self.checks.clone();
            let siblings = of_job
                .get(&(instance.namespace.clone(), instance.job.clone()))
                .copied()
                .unwrap_or(1);
            tasks.spawn(async move {
                let lookup = checks.check_in_batch(&instance, siblings).await;
                (instance, lookup)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((instance, mut lookup)) = joined else {
                continue;
            };
            if let CheckLookup::Found(spec) = &mut lookup {
                *spec = self.specs.intern(spec);
            }
            let retry_at = match &lookup {
                CheckLookup::Unavailable { retry_after, .. } => Some(Instant::now() + *retry_after),
                _ => None,
            };
            self.lookups.insert(
                instance.id.clone(),
                Looked {
                    modify_index: instance.modify_index,
                    lookup,
                    retry_at,
                },
            );
        }
    }
}
