//! `Catalog`: the service instances known so far, kept by applying [`Change`]s.
//!
//! Instances are shared (`Arc`) between the changes and every catalog that
//! applied them: the watcher's view and the reconciler's hold one copy.

use super::instance::{Change, Instance, Scope};
use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// An instance ordered and looked up by its registration ID (the ID is not
/// stored a second time as a map key). Equality compares whole instances,
/// so two catalogs are equal only if no instance differs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ById(Arc<Instance>);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

impl Ord for ById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Every known instance by registration ID, with per-job and per-alloc counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    by_id: BTreeSet<ById>,
    /// `None` for a catalog made [`Catalog::unindexed`].
    counts: Option<Counts>,
}

/// Instances per job and per allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    jobs: HashMap<(String, String), usize>,
    allocs: HashMap<String, usize>,
}

impl Counts {
    fn add(&mut self, i: &Instance) {
        *self
            .jobs
            .entry((i.namespace.clone(), i.job.clone()))
            .or_default() += 1;
        *self.allocs.entry(i.alloc.clone()).or_default() += 1;
    }

    fn sub(&mut self, i: &Instance) {
        let key = (i.namespace.clone(), i.job.clone());
        if let Some(n) = self.jobs.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.jobs.remove(&key);
            }
        }
        if let Some(n) = self.allocs.get_mut(&i.alloc) {
            *n -= 1;
            if *n == 0 {
                self.allocs.remove(&i.alloc);
            }
        }
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            by_id: BTreeSet::new(),
            counts: Some(Counts::default()),
        }
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// An empty catalog without the per-job and per-allocation counts, for
    /// a reader that never asks [`Catalog::has_job`] or
    /// [`Catalog::has_alloc`] (~100 bytes less per instance).
    pub fn unindexed() -> Catalog {
        Catalog {
            by_id: BTreeSet::new(),
            counts: None,
        }
    }

    /// Applies a change; true when the catalog changed.
    ///
    /// # Guarantees
    /// Idempotent: an `Upserted` equal to (or older than, by `ModifyIndex`)
    /// what is known, or a `Removed` of an unknown ID, changes nothing.
    pub fn apply(&mut self, change: &Change) -> bool {
        match change {
            Change::Upserted(i) => self.upsert_shared(i.clone()).is_some(),
            Change::Removed(i) => self.remove(&i.id).is_some(),
            Change::Relisted { scope, instances } => self.replace(scope, instances.clone()),
            Change::JobChanged { .. } | Change::Canaries(_) => false,
        }
    }

    /// Inserts or updates; the `Upserted` change, or `None` if nothing changed.
    pub fn upsert(&mut self, inst: Instance) -> Option<Change> {
        self.upsert_shared(Arc::new(inst))
    }

    fn upsert_shared(&mut self, inst: Arc<Instance>) -> Option<Change> {
        if let Some(ById(old)) = self.by_id.get(inst.id.as_str()) {
            if *old == inst || old.modify_index > inst.modify_index {
                return None;
            }
            let old = old.clone();
            self.unindex(&old);
        }
        self.index(&inst);
        self.by_id.replace(ById(inst.clone()));
        Some(Change::Upserted(inst))
    }

    /// Removes by ID; the `Removed` change, or `None` if unknown.
    pub fn remove(&mut self, id: &str) -> Option<Change> {
        let ById(old) = self.by_id.take(id)?;
        self.unindex(&old);
        Some(Change::Removed(old))
    }

    /// Replaces every instance of `scope` by `instances`; true if anything differed.
    pub fn replace(&mut self, scope: &Scope, instances: Vec<Arc<Instance>>) -> bool {
        let mut next: BTreeSet<ById> = self
            .by_id
            .iter()
            .filter(|i| !scope.covers(&i.0.namespace))
            .cloned()
            .collect();
        for i in instances {
            next.replace(ById(i));
        }
        if next == self.by_id {
            return false;
        }
        self.by_id = next;
        if let Some(counts) = &mut self.counts {
            *counts = Counts::default();
            for i in &self.by_id {
                counts.add(&i.0);
            }
        }
        true
    }

    /// The instance with this registration ID.
    pub fn get(&self, id: &str) -> Option<&Instance> {
        self.by_id.get(id).map(|i| &*i.0)
    }

    /// Every instance, ordered by ID.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.by_id.iter().map(|i| &*i.0)
    }

    /// The instances of one service.
    pub fn service<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Instance> {
        self.instances()
            .filter(move |i| i.namespace == namespace && i.service == name)
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether a job has instances (always false when [`Catalog::unindexed`]).
    pub fn has_job(&self, namespace: &str, job: &str) -> bool {
        debug_assert!(self.counts.is_some(), "has_job on an unindexed catalog");
        self.counts.as_ref().is_some_and(|c| {
            c.jobs
                .contains_key(&(namespace.to_string(), job.to_string()))
        })
    }

    /// Whether an allocation has instances (always false when [`Catalog::unindexed`]).
    pub fn has_alloc(&self, alloc: &str) -> bool {
        debug_assert!(self.counts.is_some(), "has_alloc on an unindexed catalog");
        self.counts
            .as_ref()
            .is_some_and(|c| c.allocs.contains_key(alloc))
    }

    fn index(&mut self, i: &Instance) {
        if let Some(counts) = &mut self.counts {
            counts.add(i);
        }
    }

    fn unindex(&mut self, i: &Instance) {
        if let Some(counts) = &mut self.counts {
            counts.sub(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(changes: &[Change]) -> (Catalog, Vec<bool>) {
        let mut c = Catalog::new();
        let applied = changes.iter().map(|ch| c.apply(ch)).collect();
        (c, applied)
    }

    #[test]
    fn catalog_should_ignore_duplicates_and_stale_upserts() {
        let a1 = Instance::test("a", "web", 1);
        let a2 = Instance {
            port: 2,
            modify_index: 5,
            ..a1.clone()
        };
        let (c, applied) = feed(&[
            Change::Upserted(Arc::new(a1.clone())),
            Change::Upserted(Arc::new(a1.clone())),
            Change::Upserted(Arc::new(a2.clone())),
            Change::Upserted(Arc::new(a1.clone())),
        ]);
        assert_eq!(applied, [true, false, true, false]);
        assert_eq!(c.get("a"), Some(&a2));
        assert!(c.has_job("default", "job") && c.has_alloc("alloc"));
    }

    #[test]
    fn catalog_should_forget_indexes_of_removed_instances() {
        let a = Instance::test("a", "web", 1);
        let (c, applied) = feed(&[
            Change::Upserted(Arc::new(a.clone())),
            Change::Removed(Arc::new(a.clone())),
            Change::Removed(Arc::new(a)),
        ]);
        assert_eq!(applied, [true, true, false]);
        assert!(c.is_empty() && !c.has_job("default", "job") && !c.has_alloc("alloc"));
    }

    #[test]
    fn an_unindexed_catalog_holds_the_same_instances() {
        let a = Arc::new(Instance::test("a", "web", 1));
        let b = Arc::new(Instance::test("b", "web", 2));
        let changes = [
            Change::Upserted(a.clone()),
            Change::Upserted(b.clone()),
            Change::Removed(a),
            Change::Upserted(b),
        ];
        let mut unindexed = Catalog::unindexed();
        let applied: Vec<bool> = changes.iter().map(|c| unindexed.apply(c)).collect();
        let (indexed, want) = feed(&changes);
        assert_eq!(applied, want);
        assert!(indexed.instances().eq(unindexed.instances()));
    }

    #[test]
    fn relist_should_replace_only_its_scope() {
        let a = Instance::test("a", "web", 1);
        let b = Instance {
            namespace: "apps".into(),
            ..Instance::test("b", "api", 2)
        };
        let b2 = Instance {
            namespace: "apps".into(),
            ..Instance::test("b2", "api", 3)
        };
        let (c, applied) = feed(&[
            Change::Upserted(Arc::new(a.clone())),
            Change::Upserted(Arc::new(b)),
            Change::Relisted {
                scope: Scope::Namespace("apps".into()),
                instances: vec![Arc::new(b2.clone())],
            },
        ]);
        assert_eq!(applied, [true, true, true]);
        let ids: Vec<_> = c.instances().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "b2"]);
        let (mut c, _) = feed(&[Change::Upserted(Arc::new(a))]);
        assert!(c.replace(&Scope::All, vec![Arc::new(b2)]));
        assert_eq!(c.service("apps", "api").count(), 1);
        assert_eq!(c.len(), 1);
    }
}
