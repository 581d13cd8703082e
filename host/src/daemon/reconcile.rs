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
use crate::haproxy::{ApplyReport, Driver, ReloadOutcome};
use crate::mapping::Engine;
use crate::metrics::ReloadReason;
use crate::nomad::{Api, Change, CheckLookup, Checks, Instance, Scope, SpecCheck};
use crate::plan::tags::ServiceTags;
use crate::plan::{
    Assembled, InstanceInput, Reports, ServiceKey, ServicePlan, assemble, plan_service,
};
use crate::plan::{BackendSpec, Desired};
use schedule::Schedule;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod schedule;
#[cfg(test)]
mod tests;

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
    /// The catalog's registration IDs by service, so that a pass reads only
    /// the instances of the services it plans.
    by_service: HashMap<ServiceKey, BTreeSet<String>>,
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
    assembled: Assembled,
    mapped: MappedCache,
    /// Services whose rendered checks HAProxy refused: planned with TCP.
    refused: Refused,
    /// Keep each instance's report in its plan (`explain`); the daemon
    /// does not read them, and at 10,000 instances they hold ~10 MB.
    reports: Reports,
    /// Allocations' canary status, from the deployment events.
    canaries: crate::nomad::CanaryBoard,
}

fn key(instance: &Instance) -> ServiceKey {
    ServiceKey {
        namespace: instance.namespace.clone(),
        name: instance.service.clone(),
    }
}

impl<D: Driver, C: Api> Reconciler<D, C> {
    /// A reconciler that waits for every scope's first listing before syncing.
    pub fn new(driver: D, engine: Arc<Engine>, checks: Checks<C>, scopes: Vec<Scope>) -> Self {
        Reconciler {
            driver,
            engine,
            checks,
            catalog: crate::nomad::Catalog::unindexed(),
            by_service: HashMap::new(),
            scopes,
            listed: BTreeSet::new(),
            lookups: HashMap::new(),
            specs: Interner::default(),
            plans: BTreeMap::new(),
            dirty: BTreeSet::new(),
            changed: BTreeMap::new(),
            schedule: Schedule::default(),
            logged: HashSet::new(),
            assembled: Assembled::default(),
            mapped: MappedCache::default(),
            refused: Refused::default(),
            reports: Reports::Skip,
            canaries: crate::nomad::CanaryBoard::default(),
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
        &self.assembled
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
            &self.assembled,
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
        self.dirty.extend(self.by_service.keys().cloned());
        self.dirty.extend(self.plans.keys().cloned());
    }

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
                let touched = super::canaries::apply(&mut self.canaries, &self.catalog, updates);
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
    fn instances_of<'a>(&'a self, service: &ServiceKey) -> impl Iterator<Item = &'a Instance> {
        self.by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|id| self.catalog.get(id))
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
        let report = match self.driver.sync(&self.assembled.desired).await {
            Ok(report) => report,
            Err(e) => {
                self.dirty.extend(planned);
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
            reload_reasons(&self.changed, &self.assembled.desired, &report.reload);
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
        let assembled = assemble(self.plans.values());
        self.changed = changed_backends(&dirty, &self.assembled, &assembled);
        self.assembled = assembled;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            services = dirty.len(),
            resolve_ms = ms(resolved),
            map_ms = ms(mapped - resolved),
            assemble_ms = ms(started.elapsed() - mapped),
            "planned"
        );
        for conflict in self.assembled.conflicts.clone() {
            self.log_once(&conflict, |c| tracing::warn!("{c}"));
        }
        dirty
    }

    /// Looks up the job-spec checks of enabled instances of `dirty`
    /// services that have none for their current registration, concurrently.
    async fn resolve_checks(&mut self, dirty: &BTreeSet<ServiceKey>) {
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

    fn log_problems(&mut self) {
        let problems: Vec<String> = self
            .plans
            .values()
            .flat_map(|p| {
                p.problems
                    .iter()
                    .map(move |problem| format!("service {}: {problem}", p.key))
            })
            .collect();
        for problem in problems {
            self.log_once(&problem, |p| tracing::warn!("{p}"));
        }
    }

    fn log_report(&mut self, report: &ApplyReport) {
        for refusal in &report.refusals {
            self.log_once(&refusal.to_string(), |r| tracing::warn!("refused: {r}"));
        }
        for failure in &report.failed {
            tracing::warn!(command = %failure.command, reply = %failure.reply, "haproxy did not apply a change; retrying");
        }
        for failure in &report.failed_domains {
            tracing::warn!(command = %failure.command, reply = %failure.reply, "haproxy did not apply a domain map change; retrying");
        }
        match &report.reload {
            ReloadOutcome::Rejected { alerts, kept_at } => {
                let alerts: Vec<String> = alerts.iter().map(ToString::to_string).collect();
                let text = format!(
                    "haproxy -c refused the managed config (kept at {}); the old config keeps serving: {}",
                    kept_at.display(),
                    alerts.join("; ")
                );
                self.log_once(&text, |t| tracing::error!("{t}"));
            }
            ReloadOutcome::Done {
                held_back: Some(held),
                ..
            } => {
                let alerts: Vec<String> = held.alerts.iter().map(ToString::to_string).collect();
                let text = format!(
                    "haproxy -c refused the changes of backends {} (render kept at {}); they keep their old config, the other backends were reloaded: {}",
                    held.backends.join(", "),
                    held.kept_at.display(),
                    alerts.join("; ")
                );
                self.log_once(&text, |t| tracing::error!("{t}"));
            }
            ReloadOutcome::Failed { reason } => {
                tracing::error!("haproxy reload failed, the old worker keeps serving: {reason}")
            }
            _ => {}
        }
    }

    /// Logs a message the first time it is seen (bounded memory).
    fn log_once(&mut self, message: &str, log: impl FnOnce(&str)) {
        if self.logged.len() > 10_000 {
            self.logged.clear();
        }
        if self.logged.insert(message.to_string()) {
            log(message);
        }
    }
}

/// The backends that the services of `dirty` gave up or claim, with what
/// they were in `before` (`None`: new): the only ones a plan of `dirty` can
/// change.
fn changed_backends(
    dirty: &BTreeSet<ServiceKey>,
    before: &Assembled,
    now: &Assembled,
) -> BTreeMap<String, Option<Arc<BackendSpec>>> {
    dirty
        .iter()
        .flat_map(|s| [before.backends.get(s), now.backends.get(s)])
        .flatten()
        .filter(|name| before.desired.backends.get(*name) != now.desired.backends.get(*name))
        .map(|name| (name.clone(), before.desired.backends.get(name).cloned()))
        .collect()
}

/// Why a reload happened, from the backends the last plan changed (with
/// what they were before it) and the desired state now.
fn reload_reasons(
    changed: &BTreeMap<String, Option<Arc<BackendSpec>>>,
    now: &Desired,
    reload: &ReloadOutcome,
) -> Vec<ReloadReason> {
    let backends = match reload {
        ReloadOutcome::Done { backends, .. } => backends,
        ReloadOutcome::Rejected { .. } => return vec![ReloadReason::Rejected],
        ReloadOutcome::Failed { .. } => return vec![ReloadReason::Failed],
        _ => return Vec::new(),
    };
    let mut reasons: Vec<ReloadReason> = backends
        .iter()
        .map(|name| {
            match (
                changed
                    .get(name)
                    .map_or_else(|| now.backends.get(name), Option::as_ref),
                now.backends.get(name),
            ) {
                (_, None) => ReloadReason::BackendRemoved,
                (None, Some(_)) => ReloadReason::BackendAdded,
                (Some(old), Some(new)) if old.check != new.check => ReloadReason::CheckChanged,
                (Some(old), Some(new))
                    if old
                        .servers
                        .values()
                        .map(|s| &s.check_args)
                        .ne(new.servers.values().map(|s| &s.check_args)) =>
                {
                    ReloadReason::CheckChanged
                }
                _ => ReloadReason::BackendChanged,
            }
        })
        .collect();
    reasons.sort_by_key(|r| r.as_str());
    reasons.dedup();
    if reasons.is_empty() {
        reasons.push(ReloadReason::BackendChanged);
    }
    if let ReloadOutcome::Done {
        held_back: Some(_), ..
    } = reload
    {
        reasons.push(ReloadReason::Rejected);
    }
    reasons
}
