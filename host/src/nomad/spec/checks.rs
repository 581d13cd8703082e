//! Job-spec checks (ADR-003): the check stanza of the service block that
//! registered an instance, taken from the job version its allocation runs.
//!
//! Path per look-up: the allocation's version and group from the job's
//! allocation stubs ([`AllocCache`]), that version's spec ([`SpecCache`]),
//! the service block by registration ID ([`matching`]), its checks in the
//! order HAProxy runs them ([`ServiceSpec::ordered_checks`]), and each check
//! port label other than the service's resolved from the allocation's ports.

use super::allocs::AllocCache;
use super::job::{JobSpec, ServiceSpec};
use super::matching;
use super::spec_cache::{SpecCache, Versioned};
use crate::nomad::config::Settings;
use crate::nomad::watch::client::Api;
use crate::nomad::watch::http::HttpClient;
use crate::nomad::watch::instance::Instance;
use crate::nomad::watch::watcher::Invalidate;
use crate::nomad::watch::wire::AllocStub;
use hnc_core::model::NomadCheck;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The answer for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckLookup {
    /// The service block was found in the job version the allocation runs
    /// (shared: the instances of one service block usually have equal ones).
    Found(Arc<SpecCheck>),
    /// Job-spec sync is off (`job_spec_checks = false`): tags and TCP only.
    Disabled,
    /// The spec could not be read or matched: fall back to a TCP check and
    /// ask again after `retry_after`.
    Unavailable {
        /// Why, naming the job, version or allocation.
        reason: String,
        /// When asking again can help.
        retry_after: Duration,
    },
}

/// A service block's check, with where it came from (for `explain`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecCheck {
    /// The first check HAProxy runs (the one `haproxy.check.*` tags apply
    /// to); `None` if the block declares none. `check_port` is set when its
    /// port label differs from the service's.
    pub check: Option<NomadCheck>,
    /// The block's other checks, `check_port` set likewise: Nomad requires
    /// every check to pass, so HAProxy runs them after the first.
    pub others: Vec<NomadCheck>,
    /// The job version.
    pub job_version: u64,
    /// The task group.
    pub group: String,
    /// The task, empty for a group-level service.
    pub task: String,
    /// The service name as the spec writes it (may hold `${...}`).
    pub service: String,
    /// The registration's port label.
    pub port_label: String,
}

/// Counters of the resolver, and what its caches hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksStats {
    /// `check_for` calls.
    pub lookups: u64,
    /// Job-spec reads (`/v1/job/:id` and `/v1/job/:id/versions`).
    pub spec_fetches: u64,
    /// `/v1/job/:id/allocations` reads.
    pub alloc_list_fetches: u64,
    /// `/v1/allocation/:id` reads (check ports only).
    pub alloc_fetches: u64,
    /// Look-ups answered `Unavailable`.
    pub unavailable: u64,
    /// Job versions cached (specs and remembered failures).
    pub cached_versions: u64,
    /// Jobs whose allocations are cached.
    pub cached_jobs: u64,
    /// Allocations cached, of all jobs.
    pub cached_allocations: u64,
}

/// The job-spec check resolver with its caches (cheap to clone).
#[derive(Clone)]
pub struct Checks<C: Api = HttpClient> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    client: C,
    enabled: bool,
    negative_ttl: Duration,
    specs: SpecCache,
    allocs: AllocCache,
    logged: Mutex<HashSet<String>>,
    lookups: AtomicU64,
    spec_fetches: AtomicU64,
    alloc_list_fetches: AtomicU64,
    alloc_fetches: AtomicU64,
    unavailable: AtomicU64,
}

impl<C: Api> Checks<C> {
    /// A resolver with `settings`' flag and TTLs.
    pub fn new(client: C, settings: &Settings) -> Checks<C> {
        Checks {
            inner: Arc::new(Inner {
                client,
                enabled: settings.job_spec_checks,
                negative_ttl: settings.negative_cache_ttl,
                specs: SpecCache::new(settings.cache_ttl, settings.negative_cache_ttl),
                allocs: AllocCache::new(settings.cache_ttl),
                logged: Mutex::new(HashSet::new()),
                lookups: AtomicU64::new(0),
                spec_fetches: AtomicU64::new(0),
                alloc_list_fetches: AtomicU64::new(0),
                alloc_fetches: AtomicU64::new(0),
                unavailable: AtomicU64::new(0),
            }),
        }
    }

    /// The job-spec check of an instance.
    ///
    /// # Guarantees
    /// Never fails: problems come back as `Unavailable` (logged once per
    /// cause). Concurrent look-ups of one job version make one spec read.
    pub async fn check_for(&self, instance: &Instance) -> CheckLookup {
        self.check_in_batch(instance, 1).await
    }

    /// [`Checks::check_for`], told how many instances of the same job are
    /// looked up together: one new allocation is read alone, several share
    /// one read of the job's allocation list.
    pub async fn check_in_batch(&self, instance: &Instance, of_job: usize) -> CheckLookup {
        let i = &self.inner;
        i.lookups.fetch_add(1, Ordering::Relaxed);
        if !i.enabled {
            return CheckLookup::Disabled;
        }
        match self.resolve(instance, of_job <= 1).await {
            Ok(found) => CheckLookup::Found(Arc::new(found)),
            Err(reason) => {
                i.unavailable.fetch_add(1, Ordering::Relaxed);
                self.log_once(instance, &reason);
                CheckLookup::Unavailable {
                    reason,
                    retry_after: i.negative_ttl,
                }
            }
        }
    }

    /// Reads what [`Checks::check_for`] will need for `instance` (its
    /// allocation, its job version's spec) into the caches ahead of the
    /// look-up; counts no look-up and logs nothing, the look-up will.
    pub async fn prefetch(&self, instance: &Instance) {
        if self.inner.enabled {
            let _ = self.resolve(instance, true).await;
        }
    }

    /// The resolver's counters.
    pub fn stats(&self) -> ChecksStats {
        let i = &self.inner;
        ChecksStats {
            lookups: i.lookups.load(Ordering::Relaxed),
            spec_fetches: i.spec_fetches.load(Ordering::Relaxed),
            alloc_list_fetches: i.alloc_list_fetches.load(Ordering::Relaxed),
            alloc_fetches: i.alloc_fetches.load(Ordering::Relaxed),
            unavailable: i.unavailable.load(Ordering::Relaxed),
            cached_versions: i.specs.len(),
            cached_jobs: i.allocs.jobs(),
            cached_allocations: i.allocs.allocations(),
        }
    }

    async fn resolve(&self, inst: &Instance, alone: bool) -> Result<SpecCheck, String> {
        let i = &self.inner;
        let (ns, job) = (inst.namespace.as_str(), inst.job.as_str());
        let alloc = i
            .allocs
            .get(
                ns,
                job,
                &inst.alloc,
                || async {
                    if !alone {
                        return None;
                    }
                    i.alloc_fetches.fetch_add(1, Ordering::Relaxed);
                    let full = i.client.allocation(ns, &inst.alloc).await.ok()?;
                    let version = full.job.as_ref()?.version;
                    Some(AllocStub {
                        job_version: version,
                        ..full
                    })
                },
                || async {
                    i.alloc_list_fetches.fetch_add(1, Ordering::Relaxed);
                    i.client
                        .job_allocations(ns, job)
                        .await
                        .map_err(|e| e.to_string())
                },
            )
            .await?;
        let version = alloc.job_version;
        let spec = i
            .specs
            .get(ns, job, version, || self.fetch_spec(ns, job, version))
            .await?;
        let group = spec.spec.group(&alloc.task_group).ok_or_else(|| {
            format!(
                "job {job} version {version} has no task group {:?}",
                alloc.task_group
            )
        })?;
        let m = matching::find(group, &inst.id, &inst.alloc, &inst.service).ok_or_else(|| {
            format!(
                "no service block of job {job} version {version} group {} matches registration {}",
                group.name, inst.id
            )
        })?;
        let mut checks = Vec::new();
        for c in m.service.ordered_checks() {
            let mut c = c.clone();
            c.check_port = self
                .check_port(inst, &alloc, m.service, m.port_label, &c)
                .await?;
            checks.push(c);
        }
        let mut checks = checks.into_iter();
        Ok(SpecCheck {
            check: checks.next(),
            others: checks.collect(),
            job_version: version,
            group: group.name.clone(),
            task: m.service.task.clone(),
            service: m.service.name.clone(),
            port_label: m.port_label.to_string(),
        })
    }

    /// The port of a check whose `PortLabel` names another port than the service's.
    async fn check_port(
        &self,
        inst: &Instance,
        alloc: &AllocStub,
        service: &ServiceSpec,
        port_label: &str,
        check: &NomadCheck,
    ) -> Result<Option<u16>, String> {
        let label = check.port_label.as_str();
        if label.is_empty() || label == port_label || label == service.port_label {
            return Ok(None);
        }
        let i = &self.inner;
        let (ns, job) = (inst.namespace.as_str(), inst.job.as_str());
        let mut stub = alloc.clone();
        if stub.port(label).is_none() {
            // Stubs may lack `AllocatedResources`: read the allocation, keep
            // the stub's version and group.
            i.alloc_fetches.fetch_add(1, Ordering::Relaxed);
            let full = i
                .client
                .allocation(ns, &inst.alloc)
                .await
                .map_err(|e| format!("reading allocation {}: {e}", inst.alloc))?;
            stub.allocated_resources = full.allocated_resources;
            i.allocs.store(ns, job, stub.clone());
        }
        let port = stub.port(label).ok_or_else(|| {
            format!(
                "check {:?} uses port label {label:?}, which allocation {} does not have",
                check.name, inst.alloc
            )
        })?;
        Ok((port != inst.port).then_some(port))
    }

    /// Reads a version: the latest via `/v1/job/:id` unless an older one is
    /// wanted, else all tracked versions via `/v1/job/:id/versions`.
    async fn fetch_spec(
        &self,
        ns: &str,
        job: &str,
        version: u64,
    ) -> Result<Vec<Versioned>, String> {
        let i = &self.inner;
        let fail = |e: crate::nomad::Error| {
            let reason = format!("reading job {job} (namespace {ns}): {e}");
            tracing::warn!(%reason, "job spec unavailable; TCP checks for its instances until a retry");
            reason
        };
        if i.specs
            .latest(ns, job)
            .is_none_or(|latest| version >= latest)
        {
            i.spec_fetches.fetch_add(1, Ordering::Relaxed);
            let latest = parse(i.client.job(ns, job).await.map_err(fail)?)?;
            i.specs.note_version(ns, job, latest.spec.version);
            if latest.spec.version <= version {
                return Ok(vec![latest]);
            }
        }
        i.spec_fetches.fetch_add(1, Ordering::Relaxed);
        let versions = i.client.job_versions(ns, job).await.map_err(fail)?;
        versions.into_iter().map(parse).collect()
    }

    fn log_once(&self, inst: &Instance, reason: &str) {
        let mut logged = self
            .inner
            .logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if logged.len() > 1000 {
            logged.clear();
        }
        if logged.insert(reason.to_string()) {
            tracing::warn!(service = %inst.service, namespace = %inst.namespace, instance = %inst.id,
                %reason, "no job-spec check; falling back to TCP");
        }
    }
}

fn parse(value: Value) -> Result<Versioned, String> {
    let create_index = value
        .get("CreateIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let spec = JobSpec::from_value(value).map_err(|e| e.to_string())?;
    Ok(Versioned { spec, create_index })
}

impl<C: Api> Invalidate for Checks<C> {
    fn job_event(
        &self,
        namespace: &str,
        job: &str,
        version: u64,
        create_index: u64,
        deleted: bool,
    ) {
        let i = &self.inner;
        i.specs.job_event(namespace, job, create_index, deleted);
        if !deleted {
            i.specs.note_version(namespace, job, version);
        }
        i.allocs.forget_job(namespace, job, deleted);
    }

    fn alloc_planned(&self, namespace: &str, job: &str, alloc: &str) {
        self.inner.allocs.forget_alloc(namespace, job, alloc);
    }

    fn server_reset(&self) {
        self.inner.specs.clear();
        self.inner.allocs.clear();
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
