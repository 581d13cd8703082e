//! The reconcile loop's state: Nomad changes mark services dirty; dirty
//! services are re-planned; the desired state is synced to HAProxy.
//!
//! Level-triggered (design.md, principle 1): an event never edits HAProxy
//! directly. The same `reconcile` serves start-up, every event, every
//! reconnect and the periodic resync, so a missed event, an HAProxy restart
//! or a connector restart heals by itself.

use super::interner::Interner;
use super::mapped_cache::MappedCache;
use super::refused::Refused;
use crate::haproxy::{ApplyReport, Driver};
use crate::mapping::Engine;
use crate::metrics::ReloadReason;
use crate::nomad::{Api, CheckLookup, Checks, Instance, Scope, SpecCheck};
use crate::plan::BackendSpec;
use crate::plan::{
    Assembled, Assembler, InstanceInput, Reports, ServiceKey, ServicePlan, plan_service,
};
use index::Index;
use reasons::reload_reasons;
use schedule::Schedule;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod changes;
mod index;
mod lookups;
mod reasons;
mod schedule;
#[cfg(test)]
mod tests;
mod warnings;

/// How soon a failed sync (HAProxy unreachable) is tried again.
const RETRY_SYNC: Duration = Duration::from_secs(1);

/// A job-spec look-up, remembered for one registration version.
#[derive(Debug, Clone)]
struct Looked {
    modify_index: u64,
    lookup: CheckLookup,
    /// Ask again after this instant (an unavailable spec).
    retry_at: Option<Instant>,
}

/// What one reconcile did.
#[derive(Debug, Clone, Default)]
pub struct PassSummary {
    /// Services planned this time.
    pub planned: usize,
    /// Which.
    pub services: BTreeSet<ServiceKey>,
    /// Why HAProxy reloaded, when it did (one entry per kind of change).
    pub reload_reasons: Vec<ReloadReason>,
    /// The driver's report.
    pub report: ApplyReport,
}

/// The loop's state: the catalog, the plans, and what is dirty.
pub struct Reconciler<D: Driver, C: Api> {
    driver: D,
    engine: Arc<Engine>,
    checks: Checks<C>,
    catalog: crate::nomad::Catalog,
    /// The catalog's registration IDs by service and by job, so that a
    /// change or a pass reads only the instances it concerns.
    index: Index,
    scopes: Vec<Scope>,
    listed: BTreeSet<String>,
    lookups: HashMap<String, Looked>,
    /// One copy of each distinct job-spec check the lookups hold.
    specs: Interner<SpecCheck>,
    plans: BTreeMap<ServiceKey, ServicePlan>,
    dirty: BTreeSet<ServiceKey>,
    /// The backends the last plan changed, with what they were before it
    /// (`None`: new), to name the reasons of a reload.
    changed: BTreeMap<String, Option<Arc<BackendSpec>>>,
    /// When services are planned again and HAProxy synced again.
    schedule: Schedule,
    logged: HashSet<String>,
    /// The desired state, re-joined for the planned services only.
    assembler: Assembler,
    mapped: MappedCache,
    /// Services whose rendered checks HAProxy refused: planned with TCP.
    refused: Refused,
    /// Keep each instance's report in its plan (`explain`); the daemon
    /// does not read them, and at 10,000 instances they hold ~10 MB.
    reports: Reports,
    /// Allocations' canary status, from the deployment events.
    canaries: crate::nomad::CanaryBoard,
    /// The backends the last plan touched: what its sync compares.
    touched: BTreeSet<String>,
    /// The next sync compares every backend (the first, each resync, and
    /// after a failed one).
    compare_all: bool,
}

impl<D: Driver, C: Api> Reconciler<D, C> {
    /// A reconciler that waits for every scope's first listing before syncing.
    pub fn new(driver: D, engine: Arc<Engine>, checks: Checks<C>, scopes: Vec<Scope>) -> Self {
        Reconciler {
            driver,
            engine,
            checks,
            catalog: crate::nomad::Catalog::unindexed(),
            index: Index::default(),
            scopes,
            listed: BTreeSet::new(),
            lookups: HashMap::new(),
            specs: Interner::default(),
            plans: BTreeMap::new(),
            dirty: BTreeSet::new(),
            changed: BTreeMap::new(),
            schedule: Schedule::default(),
            logged: HashSet::new(),
            assembler: Assembler::default(),
            mapped: MappedCache::default(),
            refused: Refused::default(),
            reports: Reports::Skip,
            canaries: crate::nomad::CanaryBoard::default(),
            touched: BTreeSet::new(),
            compare_all: true,
        }
    }

    /// Keeps the per-instance reports in the plans, for `explain`.
    pub fn keep_reports(&mut self) {
        self.reports = Reports::Keep;
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Every scope has been listed once: the view is complete enough to sync.
    pub fn ready(&self) -> bool {
        self.scopes
            .iter()
            .all(|s| self.listed.contains(&s.to_string()))
    }

    /// The current plans, by service (for `explain`: their instance reports
    /// only after [`Reconciler::keep_reports`]).
    pub fn plans(&self) -> &BTreeMap<ServiceKey, ServicePlan> {
        &self.plans
    }

    /// The plans, for the status page, which takes their instance reports.
    pub fn plans_mut(&mut self) -> &mut BTreeMap<ServiceKey, ServicePlan> {
        &mut self.plans
    }

    /// The last assembled desired state (for `plan`).
    pub fn assembled(&self) -> &Assembled {
        self.assembler.assembled()
    }

    /// When the loop must run a pass even without events: the earliest due
    /// time of a service (its job spec is asked for again, HAProxy refused
    /// its check) or of a sync (the driver asked to apply again).
    pub fn next_due(&self) -> Option<Instant> {
        self.schedule.next()
    }

    /// The servers the verdict monitor compares: enabled instances whose
    /// job spec declares checks, with a checked server in the last
    /// assembled state.
    pub fn verdict_targets(&self) -> Vec<super::verdicts::Target> {
        super::verdicts::targets(
            self.catalog.instances(),
            |id| self.lookups.get(id).map(|l| &l.lookup),
            self.assembler.assembled(),
        )
    }

    /// Instances known.
    pub fn instances(&self) -> usize {
        self.catalog.len()
    }

    /// Replaces the mapping engine (SIGHUP) and re-plans everything.
    pub fn set_engine(&mut self, engine: Arc<Engine>) {
        self.engine = engine;
        self.mapped.clear();
        self.mark_all_dirty();
    }

    /// Marks every known service dirty (periodic resync, new engine).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.index.services().cloned());
        self.dirty.extend(self.plans.keys().cloned());
        self.compare_all = true;
    }

    /// Re-plans the dirty services and syncs HAProxy; nothing before the
    /// first complete listing (an empty view must not empty HAProxy).
    ///
    /// # Errors
    /// HAProxy cannot be reached or a managed file cannot be written; the
    /// dirty services stay dirty.
    pub async fn reconcile(&mut self) -> Result<PassSummary, crate::haproxy::Error> {
        if !self.ready() {
            return Ok(PassSummary::default());
        }
        let started = std::time::Instant::now();
        let planned = self.plan().await;
        if self.engine.interrupted() {
            // Stopping: the interrupted plugin calls fell back to TCP, which
            // HAProxy must not get. The next start plans them again.
            self.dirty.extend(planned);
            return Ok(PassSummary::default());
        }
        let plan_took = started.elapsed();
        let mut outcome = PassSummary {
            planned: planned.len(),
            ..PassSummary::default()
        };
        // This sync does what an earlier report asked to do later; its own
        // report says what is left.
        self.schedule.synced();
        // A pass compares the backends its services touched; a resync
        // compares all of them.
        let synced = if std::mem::take(&mut self.compare_all) {
            self.driver.sync(&self.assembler.assembled().desired).await
        } else {
            self.driver
                .sync_within(&self.assembler.assembled().desired, &self.touched)
                .await
        };
        let report = match synced {
            Ok(report) => report,
            Err(e) => {
                self.dirty.extend(planned);
                self.compare_all = true;
                self.schedule.sync_at(Instant::now() + RETRY_SYNC);
                return Err(e);
            }
        };
        tracing::debug!(
            services = planned.len(),
            applied = report.applied.len(),
            plan_ms = plan_took.as_secs_f64() * 1e3,
            sync_ms = (started.elapsed() - plan_took).as_secs_f64() * 1e3,
            "reconciled"
        );
        self.log_report(&report);
        let now = Instant::now();
        // HAProxy refused these services' checks: plan them again now (with
        // a TCP check), and only them.
        for service in self.refused.record(&report, &self.plans) {
            self.schedule.plan_at(service, now);
        }
        if let Some(after) = report.requeue_after {
            self.schedule.sync_at(now + after);
        }
        outcome.reload_reasons =
            reload_reasons(&self.changed, &self.assembled().desired, &report.reload);
        outcome.report = report;
        outcome.services = planned;
        Ok(outcome)
    }

    /// Re-plans the dirty services and the services whose due time has
    /// come, and assembles the desired state, without touching HAProxy;
    /// returns the services planned.
    pub async fn plan(&mut self) -> BTreeSet<ServiceKey> {
        // A job spec that could not be read is asked for again at its
        // negative TTL, whatever else the loop woke up for.
        let due = self.schedule.take_due(Instant::now());
        self.dirty.extend(due);
        let dirty = std::mem::take(&mut self.dirty);
        let started = std::time::Instant::now();
        self.resolve_checks(&dirty).await;
        let resolved = started.elapsed();
        let cached = self.mapped.with(&self.engine, 2 * self.catalog.len());
        let mapper = self.refused.mapper(&cached, &self.engine);
        for service in &dirty {
            self.schedule.cancel(service);
            let instances: Vec<&Instance> = self.instances_of(service).collect();
            if instances.is_empty() {
                self.plans.remove(service);
                continue;
            }
            let inputs: Vec<InstanceInput> = instances
                .iter()
                .map(|i| InstanceInput {
                    instance: i,
                    lookup: self
                        .lookups
                        .get(&i.id)
                        .map_or(&CheckLookup::Disabled, |l| &l.lookup),
                })
                .collect();
            let mut plan = plan_service(service.clone(), &inputs, &mapper, self.reports);
            super::canaries::weigh(&mut plan, &instances, &self.canaries);
            if let Some(after) = plan.retry_after {
                self.schedule
                    .plan_at(service.clone(), Instant::now() + after);
            }
            self.plans.insert(service.clone(), plan);
        }
        let mapped = started.elapsed();
        self.log_problems();
        // Only what the planned services claim, or claimed, is joined again.
        let update = self.assembler.update(&self.plans, &dirty);
        self.changed = update.changed;
        self.touched = update.touched;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            services = dirty.len(),
            resolve_ms = ms(resolved),
            map_ms = ms(mapped - resolved),
            assemble_ms = ms(started.elapsed() - mapped),
            "planned"
        );
        for conflict in self.assembler.assembled().conflicts.clone() {
            self.log_once(&conflict, |c| tracing::warn!("{c}"));
        }
        dirty
    }
}
