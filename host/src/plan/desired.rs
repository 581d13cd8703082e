//! Builds the desired HAProxy state from Nomad's instances and their checks.
//!
//! Pure: instances and job-spec look-ups come in as data, checks are mapped
//! through a [`CheckMapper`] (in production the wasm engine, which does no
//! I/O), and the result is plain data. [`plan_service`] plans one service, so the daemon
//! re-plans only the services an event touched; [`assemble`] joins the plans
//! into one [`Desired`] and resolves what two services both claim.

use super::mapper::{CheckMapper, CheckOrigin, Fallback, Mapped};
use super::model::{BackendClass, BackendSpec, Desired, DomainMatch, ServerSpec};
use super::requeue::{Earliest, Requeue};
use super::tags::ServiceTags;
use crate::nomad::{CheckLookup, Instance};
use crate::vocab::names;
use hnc_core::model::{NomadCheck, ServiceContext};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether [`plan_service`] writes a report per instance (for `explain`;
/// the daemon does not read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reports {
    /// Write them.
    Keep,
    /// Skip them.
    Skip,
}

/// A service: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Namespace.
    pub namespace: String,
    /// Service name, as registered.
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One instance and what its job spec says about its check.
#[derive(Debug, Clone, Copy)]
pub struct InstanceInput<'a> {
    /// The registration.
    pub instance: &'a Instance,
    /// The job-spec look-up for it.
    pub lookup: &'a CheckLookup,
}

/// What became of one instance: for `explain` and the logs.
#[derive(Debug, Clone)]
pub struct InstanceReport {
    /// Registration ID.
    pub id: String,
    /// The HAProxy server name.
    pub server: String,
    /// `address:port`.
    pub address: String,
    /// Whether it is a server in HAProxy (`haproxy.enable=true`).
    pub enabled: bool,
    /// The job version its allocation runs, when the spec was read.
    pub job_version: Option<u64>,
    /// Task group and task (empty for a group service).
    pub group: String,
    /// Task.
    pub task: String,
    /// The job spec's check, if any (the first of several).
    pub check: Option<NomadCheck>,
    /// The job spec's other checks of the service.
    pub others: Vec<NomadCheck>,
    /// Where the mapped check came from.
    pub origin: CheckOrigin,
    /// The plugin asked, `name@version`.
    pub plugin: Option<String>,
    /// The TCP fallback taken, if any.
    pub fallback: Option<Fallback>,
    /// `haproxy.check.*` tags applied.
    pub check_tags: Vec<String>,
    /// The backend lines its check renders to.
    pub backend_lines: Vec<String>,
    /// Its server arguments.
    pub server_args: String,
    /// Notes and warnings.
    pub notes: Vec<String>,
}

/// The plan of one service.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The service.
    pub key: ServiceKey,
    /// Its backend with its servers; `None` when no instance is enabled.
    /// Shared with the assembled [`Desired`] state.
    pub backend: Option<Arc<BackendSpec>>,
    /// Its domain entries.
    pub domains: Vec<(DomainMatch, String)>,
    /// Every instance, enabled or not (only with [`Reports::Keep`]).
    pub instances: Vec<InstanceReport>,
    /// Refused tags and other problems, each naming the cause.
    pub problems: Vec<String>,
    /// Plan again after this long: a job spec could not be read.
    pub retry_after: Requeue,
}

/// Newest first: the newest job version, then the newest registration.
fn newest_first(a: &InstanceInput, b: &InstanceInput) -> std::cmp::Ordering {
    let version = |i: &InstanceInput| match i.lookup {
        CheckLookup::Found(spec) => Some(spec.job_version),
        _ => None,
    };
    version(b)
        .cmp(&version(a))
        .then(b.instance.create_index.cmp(&a.instance.create_index))
        .then(a.instance.id.cmp(&b.instance.id))
}

/// Plans one service from its instances.
///
/// Backend-level settings (class, name, mode, balance, domains) come from
/// the newest enabled instance; server-level ones (weight, maxconn, backup)
/// from each. HAProxy keeps one check per backend: the newest instance's
/// check lines are the backend's, and an instance whose check would need
/// other lines is noted (with a URI map, differing paths do not count).
pub fn plan_service(
    key: ServiceKey,
    inputs: &[InstanceInput],
    mapper: &impl CheckMapper,
    reports: Reports,
) -> ServicePlan {
    let mut inputs = inputs.to_vec();
    inputs.sort_by(newest_first);
    let mut plan = ServicePlan {
        key,
        backend: None,
        domains: Vec::new(),
        instances: Vec::new(),
        problems: Vec::new(),
        retry_after: None,
    };
    let mut backend: Option<BackendSpec> = None;
    // An instance whose check is unknown gets a plain TCP check. HAProxy
    // keeps one check per backend, so while one is unknown the backend
    // checks every server by TCP connect: probing it with another
    // instance's HTTP check would ask it for a path no job declared for it.
    let mut unknown_lines: Option<Vec<Vec<crate::vocab::syntax::Token>>> = None;
    let any_unknown = inputs.iter().any(|i| {
        matches!(i.lookup, CheckLookup::Unavailable { .. })
            && ServiceTags::parse(&i.instance.tags).enabled
    });
    for input in &inputs {
        let tags = ServiceTags::parse(&input.instance.tags);
        for problem in &tags.problems {
            push_once(&mut plan.problems, problem.clone());
        }
        let (spec_check, others, version, group, task) = match input.lookup {
            CheckLookup::Found(spec) => (
                spec.check.as_ref(),
                spec.others.as_slice(),
                Some(spec.job_version),
                spec.group.clone(),
                spec.task.clone(),
            ),
            CheckLookup::Disabled => (None, &[][..], None, String::new(), String::new()),
            CheckLookup::Unavailable {
                reason,
                retry_after,
            } => {
                push_once(
                    &mut plan.problems,
                    format!("job spec unavailable, TCP check until it is read: {reason}"),
                );
                plan.retry_after.earliest(*retry_after);
                (None, &[][..], None, String::new(), String::new())
            }
        };
        let instance = input.instance;
        let server = names::server_name(&instance.id);
        let mut report = (reports == Reports::Keep).then(|| InstanceReport {
            id: instance.id.clone(),
            server: server.clone(),
            address: super::model::socket_text(instance.address, instance.port),
            enabled: tags.enabled,
            job_version: version,
            group: group.clone(),
            task: task.clone(),
            check: spec_check.cloned(),
            others: others.to_vec(),
            origin: CheckOrigin::None,
            plugin: None,
            fallback: None,
            check_tags: Vec::new(),
            backend_lines: Vec::new(),
            server_args: String::new(),
            notes: Vec::new(),
        });
        if !tags.enabled {
            plan.instances.extend(report);
            continue;
        }
        let context = ServiceContext {
            name: instance.service.clone(),
            namespace: instance.namespace.clone(),
            job: instance.job.clone(),
            group,
            task,
            provider: "nomad".into(),
            tags: instance.tags.clone(),
            address: instance.address.to_string(),
            port: instance.port,
        };
        let mapped = match spec_check {
            Some(first) if !others.is_empty() => {
                let checks: Vec<NomadCheck> =
                    std::iter::once(first).chain(others).cloned().collect();
                mapper.map_checks(&context, &checks)
            }
            _ => mapper.map(&context, spec_check),
        };
        let backend = backend.get_or_insert_with(|| {
            plan.domains.clone_from(&tags.domains);
            new_backend(&plan.key, &tags, &mapped, &mut plan.problems)
        });
        let unknown = matches!(input.lookup, CheckLookup::Unavailable { .. });
        if unknown && unknown_lines.is_none() {
            unknown_lines = Some(mapped.rendered.backend.clone());
        }
        if let Some(report) = report.as_mut()
            && backend.class == BackendClass::Dynamic
        {
            if any_unknown && !unknown {
                report.notes.push(
                    "checked by TCP connect until the job spec of every instance of its service is read; HAProxy keeps one check per backend".into(),
                );
            } else if !any_unknown && mapped.rendered.backend != backend.check {
                report.notes.push(
                    "its check needs other backend lines than the newest instance's; HAProxy keeps one check per backend, so it is checked with the newest".into(),
                );
            }
        }
        let mut spec = ServerSpec::new(server, instance.address, instance.port);
        spec.weight = tags.weight.unwrap_or(1);
        spec.maxconn = tags.maxconn;
        spec.backup = tags.backup;
        spec.check_args = mapped.rendered.server.clone();
        spec.host_entry = mapped.rendered.needs_host_entry;
        spec.check_port = mapped.plan.server.port;
        spec.uri_entry.clone_from(&mapped.rendered.uri_entry);
        backend.insert(spec);
        if let Some(mut report) = report {
            report.origin = mapped.origin;
            report.plugin.clone_from(&mapped.plugin);
            report.fallback.clone_from(&mapped.fallback);
            report.check_tags.clone_from(&mapped.tags);
            report.backend_lines = mapped.rendered.backend_lines();
            report.server_args = mapped.rendered.server_args();
            report.notes.extend(mapped.notes.iter().cloned());
            plan.instances.push(report);
        }
    }
    if let (Some(backend), Some(lines)) = (backend.as_mut(), unknown_lines)
        && backend.class == BackendClass::Dynamic
        && backend.check != lines
    {
        backend.check = lines;
        push_once(
            &mut plan.problems,
            "every server is checked by TCP connect until each instance's job spec is read (one check per backend)".into(),
        );
    }
    plan.backend = backend.map(Arc::new);
    plan
}

/// The backend of a service, from its newest enabled instance.
fn new_backend(
    key: &ServiceKey,
    tags: &ServiceTags,
    mapped: &Mapped,
    problems: &mut Vec<String>,
) -> BackendSpec {
    match tags.class {
        BackendClass::Dynamic => {
            let name = tags
                .backend_name
                .clone()
                .unwrap_or_else(|| names::backend_name(&key.namespace, &key.name));
            let mut backend = BackendSpec::dynamic(name);
            backend.mode = tags.mode.unwrap_or_default();
            backend.balance = tags.balance.unwrap_or_default();
            backend.check.clone_from(&mapped.rendered.backend);
            backend
        }
        BackendClass::Custom => {
            let name = tags.backend_name.clone().unwrap_or_default();
            if name.is_empty() {
                push_once(
                    problems,
                    "haproxy.backend=custom needs haproxy.backend.name (the operator's backend)"
                        .into(),
                );
            }
            if !mapped.rendered.backend.is_empty() {
                push_once(
                    problems,
                    "a custom backend keeps the operator's check rules; only the server-level check options apply".into(),
                );
            }
            BackendSpec::custom(name)
        }
    }
}

fn push_once(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The desired state of every service, and what could not be honoured.
#[derive(Debug, Clone, Default)]
pub struct Assembled {
    /// The desired state.
    pub desired: Desired,
    /// Refusals between services (name or domain conflicts), each naming both.
    pub conflicts: Vec<String>,
    /// The backend each service's servers went to.
    pub backends: BTreeMap<ServiceKey, String>,
}

/// Joins service plans (in key order: the first claim wins a conflict).
pub fn assemble<'a>(plans: impl IntoIterator<Item = &'a ServicePlan>) -> Assembled {
    let mut out = Assembled::default();
    let mut owners: BTreeMap<String, (BackendClass, ServiceKey)> = BTreeMap::new();
    let mut plans: Vec<&ServicePlan> = plans.into_iter().collect();
    plans.sort_by(|a, b| a.key.cmp(&b.key));
    for plan in plans {
        let Some(backend) = &plan.backend else {
            continue;
        };
        if backend.name.is_empty() {
            continue;
        }
        match owners.get(&backend.name) {
            Some((BackendClass::Custom, _)) if backend.class == BackendClass::Custom => {
                if let Some(shared) = out.desired.backends.get_mut(&backend.name) {
                    let shared = Arc::make_mut(shared);
                    for server in backend.servers.values() {
                        shared.insert(server.clone());
                    }
                }
            }
            Some((_, owner)) => {
                out.conflicts
                    .push(backend_conflict(&plan.key, &backend.name, owner));
                continue;
            }
            None => {
                owners.insert(backend.name.clone(), (backend.class, plan.key.clone()));
                out.desired
                    .backends
                    .insert(backend.name.clone(), backend.clone());
            }
        }
        out.backends.insert(plan.key.clone(), backend.name.clone());
        for (kind, pattern) in &plan.domains {
            let entry = (*kind, pattern.clone());
            match out.desired.domains.get(&entry) {
                Some(other) if other != &backend.name => {
                    out.conflicts
                        .push(domain_conflict(pattern, &plan.key, other));
                }
                _ => {
                    out.desired.domains.insert(entry, backend.name.clone());
                }
            }
        }
    }
    out
}

/// The refusal of a service whose backend name another service owns.
pub(super) fn backend_conflict(service: &ServiceKey, backend: &str, owner: &ServiceKey) -> String {
    format!("service {service} refused: backend {backend:?} already belongs to service {owner}")
}

/// The refusal of a service's domain that already routes to another backend.
pub(super) fn domain_conflict(pattern: &str, service: &ServiceKey, other: &str) -> String {
    format!(
        "domain {pattern:?} of service {service} refused: it already routes to backend {other:?}"
    )
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
