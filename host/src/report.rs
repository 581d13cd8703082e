//! What the connector would do with a job's checks: the report behind `map`.

use crate::haproxy::names::backend_name;
use crate::mapping::{CheckOrigin, Engine, Mapped};
use crate::nomad::job::{JobSpec, ServiceSpec};
use hnc_core::model::{CheckPlan, NomadCheck, ServiceContext};
use serde::Serialize;
use std::fmt::Write as _;

/// One service of a job, mapped.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// Namespace.
    pub namespace: String,
    /// Job ID.
    pub job: String,
    /// Task group.
    pub group: String,
    /// Task, empty for a group service.
    pub task: String,
    /// Service name as written in the job.
    pub service: String,
    /// `nomad` or `consul`.
    pub provider: String,
    /// The backend the service's instances go to.
    pub backend: String,
    /// The job-spec check that was mapped, if any.
    pub check: Option<NomadCheck>,
    /// `job-spec`, `tags` or `none`.
    pub origin: &'static str,
    /// The plugin asked (`name@version`).
    pub plugin: Option<String>,
    /// The fallback cause, when the result is the TCP fallback.
    pub fallback: Option<String>,
    /// The typed result.
    pub plan: CheckPlan,
    /// Backend lines.
    pub backend_lines: Vec<String>,
    /// Server check arguments.
    pub server_args: String,
    /// Notes and warnings.
    pub notes: Vec<String>,
}

/// Maps every service of a job (group- and task-level) as the daemon would.
pub fn job_report(engine: &Engine, job: &JobSpec) -> Vec<ServiceReport> {
    let mut out = Vec::new();
    for group in &job.groups {
        for spec in &group.services {
            out.push(service_report(engine, job, &group.name, spec));
        }
    }
    out
}

fn service_report(
    engine: &Engine,
    job: &JobSpec,
    group: &str,
    spec: &ServiceSpec,
) -> ServiceReport {
    let context = ServiceContext {
        name: spec.name.clone(),
        namespace: job.namespace.clone(),
        job: job.id.clone(),
        group: group.to_string(),
        task: spec.task.clone(),
        provider: spec.provider.clone(),
        tags: spec.tags.clone(),
        address: "127.0.0.1".into(),
        port: 0,
    };
    let primary = spec.primary_check();
    let check = primary.map(|i| spec.checks[i].clone());
    let Mapped {
        plan,
        rendered,
        plugin,
        origin,
        fallback,
        mut notes,
        ..
    } = engine.map(&context, check.as_ref());
    if let Some(check) = &check
        && !check.port_label.is_empty()
        && check.port_label != spec.port_label
    {
        notes.push(format!(
            "check port label '{}' resolves to a port per allocation",
            check.port_label
        ));
    }
    let others: Vec<&str> = (0..spec.checks.len())
        .filter(|i| Some(*i) != primary)
        .map(|i| spec.checks[i].name.as_str())
        .collect();
    if !others.is_empty() {
        notes.push(format!(
            "HAProxy runs one check per server; not mapped: {}",
            others.join(", ")
        ));
    }
    ServiceReport {
        namespace: job.namespace.clone(),
        job: job.id.clone(),
        group: group.to_string(),
        task: spec.task.clone(),
        service: spec.name.clone(),
        provider: spec.provider.clone(),
        backend: backend_name(&job.namespace, &spec.name),
        check,
        origin: match origin {
            CheckOrigin::JobSpec => "job-spec",
            CheckOrigin::Tags => "tags",
            CheckOrigin::None => "none",
        },
        plugin,
        fallback: fallback.map(|f| format!("{}: {}", f.cause, f.reason)),
        plan,
        backend_lines: rendered.backend_lines(),
        server_args: rendered.server_args(),
        notes,
    }
}

/// The report in HAProxy's own syntax, with comments saying where each part came from.
pub fn render_haproxy(reports: &[ServiceReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let task = if r.task.is_empty() {
            String::new()
        } else {
            format!(", task {}", r.task)
        };
        let _ = writeln!(
            out,
            "# service {:?} (namespace {}, job {}, group {}{task}, provider {})",
            r.service, r.namespace, r.job, r.group, r.provider
        );
        let check = match &r.check {
            Some(c) => format!(
                "check {:?} ({}) from the {}",
                c.name, c.check_type, r.origin
            ),
            None if r.origin == "tags" => "check declared by haproxy.check.type".to_string(),
            None => "no check".to_string(),
        };
        let plugin = r
            .plugin
            .as_deref()
            .map_or(String::new(), |p| format!(", mapped by {p}"));
        let _ = writeln!(out, "#   {check}{plugin}");
        if let Some(fallback) = &r.fallback {
            let _ = writeln!(out, "#   fallback {fallback}");
        }
        for note in &r.notes {
            let _ = writeln!(out, "#   note: {note}");
        }
        let _ = writeln!(out, "backend {}", r.backend);
        for line in &r.backend_lines {
            let _ = writeln!(out, "    {line}");
        }
        let _ = writeln!(
            out,
            "    server <instance> <address>:<port> {}\n",
            r.server_args
        );
    }
    out
}
