//! What the connector would do with a job's checks: the report behind `map`.

use crate::escape::OneLine;
use crate::mapping::{CheckOrigin, Engine, Mapped};
use crate::nomad::job::{JobSpec, ServiceSpec};
use crate::vocab::names::backend_name;
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
    /// The job-spec check that was mapped, if any (the first of several).
    pub check: Option<NomadCheck>,
    /// The service's other checks, mapped with the first: HAProxy runs
    /// them in one sequence, the server is UP only when every one passes.
    pub others: Vec<NomadCheck>,
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
    let checks: Vec<NomadCheck> = spec.ordered_checks().into_iter().cloned().collect();
    let Mapped {
        plan,
        rendered,
        plugin,
        origin,
        fallback,
        mut notes,
        ..
    } = engine.map_all(&context, &checks);
    for check in &checks {
        if !check.port_label.is_empty() && check.port_label != spec.port_label {
            notes.push(format!(
                "check {:?}: port label '{}' resolves to a port per allocation",
                check.name, check.port_label
            ));
        }
    }
    let mut checks = checks.into_iter();
    let check = checks.next();
    let others: Vec<NomadCheck> = checks.collect();
    ServiceReport {
        namespace: job.namespace.clone(),
        job: job.id.clone(),
        group: group.to_string(),
        task: spec.task.clone(),
        service: spec.name.clone(),
        provider: spec.provider.clone(),
        backend: backend_name(&job.namespace, &spec.name),
        check,
        others,
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
///
/// # Guarantees
/// Text from the job and the plugins (names, check types, notes, warnings,
/// fallback reasons) is escaped: every comment stays one `#` line, so none
/// can pass for a directive. The directives themselves went through
/// HAProxy's syntax checks when they were rendered.
pub fn render_haproxy(reports: &[ServiceReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let task = if r.task.is_empty() {
            String::new()
        } else {
            format!(", task {}", OneLine(&r.task))
        };
        let _ = writeln!(
            out,
            "# service {:?} (namespace {}, job {}, group {}{task}, provider {})",
            r.service,
            OneLine(&r.namespace),
            OneLine(&r.job),
            OneLine(&r.group),
            OneLine(&r.provider)
        );
        let check = match &r.check {
            Some(c) => format!(
                "check {:?} ({}) from the {}",
                c.name,
                OneLine(&c.check_type),
                r.origin
            ),
            None if r.origin == "tags" => "check declared by haproxy.check.type".to_string(),
            None => "no check".to_string(),
        };
        let plugin = r
            .plugin
            .as_deref()
            .map_or(String::new(), |p| format!(", mapped by {}", OneLine(p)));
        let _ = writeln!(out, "#   {check}{plugin}");
        for c in &r.others {
            let _ = writeln!(
                out,
                "#   and check {:?} ({}): every check must pass",
                c.name,
                OneLine(&c.check_type)
            );
        }
        if let Some(fallback) = &r.fallback {
            let _ = writeln!(out, "#   fallback {}", OneLine(fallback));
        }
        for note in &r.notes {
            let _ = writeln!(out, "#   note: {}", OneLine(note));
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text from outside: control characters, newlines, ANSI escapes.
    fn hostile() -> impl Strategy<Value = String> {
        "(\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}]|\\x1b\\[2J|\\r\\n|\\nbackend evil)*"
    }

    fn report(text: &str) -> ServiceReport {
        ServiceReport {
            namespace: text.into(),
            job: text.into(),
            group: text.into(),
            task: text.into(),
            service: text.into(),
            provider: text.into(),
            backend: "default_web".into(),
            check: Some(NomadCheck {
                name: text.into(),
                check_type: text.into(),
                ..NomadCheck::default()
            }),
            others: Vec::new(),
            origin: "job-spec",
            plugin: Some(text.into()),
            fallback: Some(text.into()),
            plan: CheckPlan::tcp_fallback(),
            backend_lines: Vec::new(),
            server_args: "check".into(),
            notes: vec![text.into(), format!("warning: {text}")],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn map_output_keeps_one_line_per_item(text in hostile()) {
            let out = render_haproxy(&[report(&text)]);
            let lines: Vec<&str> = out.lines().collect();
            // service, check, fallback, two notes, backend, server, blank.
            prop_assert_eq!(lines.len(), 8, "{}", out);
            prop_assert!(lines[..5].iter().all(|l| l.starts_with('#')), "{}", out);
            prop_assert_eq!(lines[5], "backend default_web");
            prop_assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{:?}", out);
        }
    }
}
