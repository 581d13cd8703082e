//! Keeps the assembled desired state up to date one service at a time.
//!
//! [`assemble`](super::assemble) joins every service plan at once. An
//! [`Assembler`] holds the same result and, given the few services that were
//! re-planned, re-joins only what their claims reach: the backends they give
//! up or claim, the domain entries of every service whose backend may have
//! moved, and the refusals of the services claiming either. The rules are
//! `assemble`'s (key order: the first claim wins; custom backends collect the
//! servers of every custom claim), and so is the result, refusal for refusal.

use super::desired::{Assembled, ServiceKey, ServicePlan, backend_conflict, domain_conflict};
use super::model::{BackendClass, BackendSpec, DomainMatch};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A domain map entry: how it matches, and the pattern.
type Entry = (DomainMatch, String);

/// What one service claims: a backend (with a name) and its domain entries.
#[derive(Debug, Clone)]
struct Claim {
    /// The service's backend, as its plan had it.
    backend: Arc<BackendSpec>,
    /// The service's domain entries, in its plan's order.
    domains: Vec<Entry>,
}

/// The assembled desired state, kept up to date one service at a time.
#[derive(Debug, Default)]
pub struct Assembler {
    /// The state, equal to `assemble` over every plan seen.
    assembled: Assembled,
    /// Each service's claim (services with a named backend only).
    claims: BTreeMap<ServiceKey, Claim>,
    /// The services claiming each backend name.
    backend_claims: BTreeMap<String, BTreeSet<ServiceKey>>,
    /// The services listing each domain entry.
    domain_claims: BTreeMap<Entry, BTreeSet<ServiceKey>>,
    /// Each service's refusals, in the order `assemble` writes them.
    conflicts: BTreeMap<ServiceKey, Vec<String>>,
}

/// What one update changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Update {
    /// The backends the updated services gave up or claim (before and after): the only ones that can have changed.
    pub touched: BTreeSet<String>,
    /// Of those, the ones whose spec changed, with what it was before (`None`: new).
    pub changed: BTreeMap<String, Option<Arc<BackendSpec>>>,
}

impl Assembler {
    /// Re-joins the plans of `services` (taken from `plans`; a service absent from `plans` is gone) with the rest.
    pub fn update(
        &mut self,
        plans: &BTreeMap<ServiceKey, ServicePlan>,
        services: &BTreeSet<ServiceKey>,
    ) -> Update {
        let mut update = Update::default();
        let mut entries: BTreeSet<Entry> = BTreeSet::new();
        for key in services {
            if let Some(old) = self.unclaim(key) {
                update.touched.insert(old.backend.name.clone());
                entries.extend(old.domains);
            }
            self.assembled.backends.remove(key);
            self.conflicts.remove(key);
            if let Some(new) = plans.get(key).and_then(claim_of) {
                update.touched.insert(new.backend.name.clone());
                entries.extend(new.domains.iter().cloned());
                self.claim(key, new);
            }
        }
        let mut recheck: BTreeSet<ServiceKey> = services.clone();
        let mut moved: BTreeSet<ServiceKey> = BTreeSet::new();
        for name in &update.touched {
            let before = self.assembled.desired.backends.get(name).cloned();
            self.rejoin_backend(name, &mut moved);
            let now = self.assembled.desired.backends.get(name);
            if before.as_ref() != now {
                update.changed.insert(name.clone(), before);
            }
            recheck.extend(self.backend_claims.get(name).into_iter().flatten().cloned());
        }
        for key in &moved {
            if let Some(claim) = self.claims.get(key) {
                entries.extend(claim.domains.iter().cloned());
            }
        }
        for entry in &entries {
            self.rejoin_domain(entry);
            recheck.extend(self.domain_claims.get(entry).into_iter().flatten().cloned());
        }
        for key in &recheck {
            self.recheck(key);
        }
        self.assembled.conflicts = self.conflicts.values().flatten().cloned().collect();
        update
    }

    /// The assembled state.
    pub fn assembled(&self) -> &Assembled {
        &self.assembled
    }

    /// Forgets a service's claim and returns it.
    fn unclaim(&mut self, key: &ServiceKey) -> Option<Claim> {
        let old = self.claims.remove(key)?;
        remove_from(&mut self.backend_claims, &old.backend.name, key);
        for entry in &old.domains {
            remove_from(&mut self.domain_claims, entry, key);
        }
        Some(old)
    }

    /// Records a service's claim.
    fn claim(&mut self, key: &ServiceKey, claim: Claim) {
        let name = claim.backend.name.clone();
        self.backend_claims
            .entry(name)
            .or_default()
            .insert(key.clone());
        for entry in &claim.domains {
            self.domain_claims
                .entry(entry.clone())
                .or_default()
                .insert(key.clone());
        }
        self.claims.insert(key.clone(), claim);
    }

    /// Rebuilds a backend from its claimants in key order, and which of
    /// them it takes; adds to `moved` the claimants taken or let go.
    fn rejoin_backend(&mut self, name: &str, moved: &mut BTreeSet<ServiceKey>) {
        let mut owner: Option<BackendClass> = None;
        let mut spec: Option<Arc<BackendSpec>> = None;
        for key in self.backend_claims.get(name).into_iter().flatten() {
            let backend = &self.claims[key].backend;
            let taken = match (owner, spec.as_mut()) {
                (None, _) => {
                    owner = Some(backend.class);
                    spec = Some(backend.clone());
                    true
                }
                (Some(BackendClass::Custom), Some(shared))
                    if backend.class == BackendClass::Custom =>
                {
                    let shared = Arc::make_mut(shared);
                    for server in backend.servers.values() {
                        shared.insert(server.clone());
                    }
                    true
                }
                _ => false,
            };
            let was = self.assembled.backends.get(key).map(String::as_str) == Some(name);
            if taken != was {
                moved.insert(key.clone());
            }
            if taken {
                self.assembled.backends.insert(key.clone(), name.to_owned());
            } else if was {
                self.assembled.backends.remove(key);
            }
        }
        let backends = &mut self.assembled.desired.backends;
        match spec {
            Some(spec) => backends.insert(name.to_owned(), spec),
            None => backends.remove(name),
        };
    }

    /// Points a domain entry at the backend of its first claimant (in key
    /// order) that has one, or drops it.
    fn rejoin_domain(&mut self, entry: &Entry) {
        let first = self
            .domain_claims
            .get(entry)
            .into_iter()
            .flatten()
            .find_map(|key| self.assembled.backends.get(key));
        let domains = &mut self.assembled.desired.domains;
        match first {
            Some(name) => domains.insert(entry.clone(), name.clone()),
            None => domains.remove(entry),
        };
    }

    /// Writes a service's refusals again, walking its claim as `assemble`
    /// walks its plan.
    fn recheck(&mut self, key: &ServiceKey) {
        let mut refusals = Vec::new();
        if let Some(claim) = self.claims.get(key) {
            let name = &claim.backend.name;
            if self.assembled.backends.get(key) != Some(name) {
                let owner = self.backend_claims[name]
                    .first()
                    .expect("a claimed backend has claimants");
                refusals.push(backend_conflict(key, name, owner));
            } else {
                for entry in &claim.domains {
                    match self.assembled.desired.domains.get(entry) {
                        Some(other) if other != name => {
                            refusals.push(domain_conflict(&entry.1, key, other));
                        }
                        _ => {}
                    }
                }
            }
        }
        if refusals.is_empty() {
            self.conflicts.remove(key);
        } else {
            self.conflicts.insert(key.clone(), refusals);
        }
    }
}

/// A plan's claim: none without a backend or with an unnamed one.
fn claim_of(plan: &ServicePlan) -> Option<Claim> {
    let backend = plan.backend.as_ref().filter(|b| !b.name.is_empty())?;
    Some(Claim {
        backend: backend.clone(),
        domains: plan.domains.clone(),
    })
}

/// Removes a claimant from an index, and the index's key with its last one.
fn remove_from<K: Ord>(index: &mut BTreeMap<K, BTreeSet<ServiceKey>>, at: &K, key: &ServiceKey) {
    if let Some(claimants) = index.get_mut(at) {
        claimants.remove(key);
        if claimants.is_empty() {
            index.remove(at);
        }
    }
}

#[cfg(test)]
#[path = "assembler_tests.rs"]
mod tests;
