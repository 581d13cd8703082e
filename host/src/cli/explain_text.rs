//! Text for `plan` and `explain`: a change set and a service's plan, as an operator reads them.
//!
//! Every piece of text from outside (names, tags, paths, domain patterns,
//! plugin notes, refusals, HAProxy's check status) goes through
//! [`OneLine`]: one item is one line, whatever it holds.

use haproxy_nomad_connector::escape::OneLine;
use haproxy_nomad_connector::plan::{
    Actual, Assembled, BackendChange, ChangeSet, ServerAction, ServicePlan,
};
use std::fmt::Write as _;

/// One line per change, `+`/`~`/`-` first.
pub fn describe(changes: &ChangeSet) -> Vec<String> {
    let mut lines = Vec::new();
    for change in &changes.backends {
        lines.push(match change {
            BackendChange::Create(b) => format!("+ backend {} (reload)", OneLine(b)),
            BackendChange::Update {
                backend,
                lines_changed,
                servers_changed,
            } => {
                let mut what = Vec::new();
                if *lines_changed {
                    what.push("its check rules, mode or balance".to_string());
                }
                if !servers_changed.is_empty() {
                    what.push(format!(
                        "the check options of {}",
                        OneLine(&servers_changed.join(", "))
                    ));
                }
                format!(
                    "~ backend {}: {} (reload)",
                    OneLine(backend),
                    what.join(" and ")
                )
            }
            BackendChange::Delete(b) => format!("- backend {} (reload)", OneLine(b)),
        });
    }
    for change in &changes.servers {
        let (b, s) = (OneLine(&change.backend), OneLine(&change.server));
        lines.push(match &change.action {
            ServerAction::Add(spec) => format!("+ server {b}/{s} {}", spec.address()),
            ServerAction::Replace(spec) => format!(
                "~ server {b}/{s} re-added with new check options ({})",
                spec.address()
            ),
            ServerAction::Readdress(spec) => format!("~ server {b}/{s} address {}", spec.address()),
            ServerAction::SetMaps(_) => format!("~ server {b}/{s} check Host/URI map entries"),
            ServerAction::SetWeight(w) => format!("~ server {b}/{s} weight {w}"),
            ServerAction::Enable(_) => format!("~ server {b}/{s} out of maintenance"),
            ServerAction::Undrain => format!("~ server {b}/{s} drain cancelled"),
            ServerAction::Drain => {
                format!("- server {b}/{s} drains (removed from Nomad, or a failed canary)")
            }
            ServerAction::Remove => format!("- server {b}/{s} deleted"),
        });
    }
    for change in &changes.domains {
        lines.push(match change.backend() {
            Some(backend) => format!(
                "+ domain {:?} {} → {}",
                change.kind,
                OneLine(&change.pattern),
                OneLine(backend)
            ),
            None => format!("- domain {:?} {}", change.kind, OneLine(&change.pattern)),
        });
    }
    for refusal in &changes.refusals {
        lines.push(format!("! {}", OneLine(&refusal.to_string())));
    }
    lines
}

/// A service's plan: instances, checks, where they came from, HAProxy's lines and state.
pub fn render(plan: &ServicePlan, assembled: &Assembled, actual: &Actual) -> String {
    let mut out = String::new();
    let backend = assembled.backends.get(&plan.key);
    let _ = writeln!(out, "service {}", OneLine(&plan.key.to_string()));
    match backend {
        Some(name) => {
            let _ = writeln!(out, "  backend {name}");
            if let Some(spec) = assembled.desired.backends.get(name) {
                for line in spec.fingerprint() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  no backend: no instance has haproxy.enable=true (or it was refused)"
            );
        }
    }
    for problem in &plan.problems {
        let _ = writeln!(out, "  ! {}", OneLine(problem));
    }
    for conflict in assembled
        .conflicts
        .iter()
        .filter(|c| c.contains(&plan.key.to_string()))
    {
        let _ = writeln!(out, "  ! {}", OneLine(conflict));
    }
    for (kind, pattern) in &plan.domains {
        let _ = writeln!(out, "  domain {kind:?} {}", OneLine(pattern));
    }
    for i in &plan.instances {
        let _ = writeln!(
            out,
            "  instance {} at {}",
            OneLine(&i.id),
            OneLine(&i.address)
        );
        if !i.enabled {
            let _ = writeln!(out, "    not in HAProxy: no haproxy.enable=true tag");
            continue;
        }
        let version = i.job_version.map_or("unknown".into(), |v| v.to_string());
        let place = if i.task.is_empty() {
            format!("group {}", OneLine(&i.group))
        } else {
            format!("group {}, task {}", OneLine(&i.group), OneLine(&i.task))
        };
        let _ = writeln!(out, "    job version {version} ({place})");
        match &i.check {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "    job check {:?}: {} {}, every {} ms, timeout {} ms",
                    c.name,
                    OneLine(&c.check_type),
                    OneLine(&c.path),
                    c.interval_ms,
                    c.timeout_ms
                );
            }
            None => {
                let _ = writeln!(out, "    job check: none");
            }
        }
        for c in &i.others {
            let _ = writeln!(
                out,
                "    and job check {:?}: {} {}, every {} ms, timeout {} ms (every check must pass)",
                c.name,
                OneLine(&c.check_type),
                OneLine(&c.path),
                c.interval_ms,
                c.timeout_ms
            );
        }
        if !i.check_tags.is_empty() {
            let _ = writeln!(
                out,
                "    overridden by tags: {}",
                OneLine(&i.check_tags.join(", "))
            );
        }
        let _ = writeln!(
            out,
            "    mapped by {} (check from {:?})",
            OneLine(i.plugin.as_deref().unwrap_or("no plugin")),
            i.origin
        );
        if let Some(f) = &i.fallback {
            let _ = writeln!(
                out,
                "    fallback ({}): {}",
                OneLine(f.cause),
                OneLine(&f.reason)
            );
        }
        for note in &i.notes {
            let _ = writeln!(out, "    note: {}", OneLine(note));
        }
        let _ = writeln!(
            out,
            "    server {} {} {}",
            OneLine(&i.server),
            OneLine(&i.address),
            OneLine(&i.server_args)
        );
        let live = backend
            .and_then(|b| actual.backends.get(b))
            .and_then(|b| b.servers.get(&i.server));
        match live {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "    in HAProxy: {:?}{}{}, weight {}, last check {}",
                    s.op,
                    if s.admin.drain { ", draining" } else { "" },
                    if s.admin.maint {
                        ", in maintenance"
                    } else {
                        ""
                    },
                    s.weight,
                    OneLine(&s.check_status)
                );
            }
            None => {
                let _ = writeln!(out, "    in HAProxy: not yet");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use haproxy_nomad_connector::plan::desired::InstanceReport;
    use haproxy_nomad_connector::plan::{
        DomainAction, DomainChange, DomainMatch, Refusal, ServerChange, ServiceKey,
    };
    use proptest::prelude::*;

    /// Text from outside: control characters, newlines, ANSI escapes.
    fn hostile() -> impl Strategy<Value = String> {
        "(\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}]|\\x1b\\[2J|\\r\\n|\\n+ backend evil)*"
    }

    fn instance(text: &str) -> InstanceReport {
        InstanceReport {
            id: text.into(),
            server: text.into(),
            address: text.into(),
            enabled: true,
            job_version: Some(1),
            group: text.into(),
            task: text.into(),
            check: Some(hnc_core::model::NomadCheck {
                name: text.into(),
                check_type: text.into(),
                path: text.into(),
                ..Default::default()
            }),
            others: Vec::new(),
            origin: haproxy_nomad_connector::mapping::CheckOrigin::JobSpec,
            plugin: Some(text.into()),
            fallback: Some(haproxy_nomad_connector::mapping::Fallback {
                cause: "invalid-value",
                reason: text.into(),
            }),
            check_tags: vec![text.into(), text.into()],
            backend_lines: Vec::new(),
            server_args: text.into(),
            notes: vec![text.into()],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn explain_keeps_one_line_per_item(text in hostile()) {
            let key = ServiceKey { namespace: text.clone(), name: text.clone() };
            let plan = ServicePlan {
                key: key.clone(),
                backend: None,
                domains: vec![(DomainMatch::Exact, text.clone())],
                instances: vec![instance(&text)],
                problems: vec![text.clone()],
                retry_after: None,
            };
            let mut assembled = Assembled::default();
            assembled.conflicts.push(format!("{key}: {text}"));
            let out = render(&plan, &assembled, &Actual::default());
            let lines: Vec<&str> = out.lines().collect();
            // service, no backend, problem, conflict, domain, instance,
            // version, check, tags, mapped by, fallback, note, server, state.
            prop_assert_eq!(lines.len(), 14, "{}", out);
            prop_assert!(lines[1..].iter().all(|l| l.starts_with("  ")), "{}", out);
            prop_assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{:?}", out);
        }

        #[test]
        fn plan_keeps_one_line_per_change(text in hostile()) {
            let changes = ChangeSet {
                servers: vec![ServerChange {
                    backend: text.clone(),
                    server: text.clone(),
                    action: ServerAction::Drain,
                }],
                domains: vec![DomainChange {
                    kind: DomainMatch::Regex,
                    pattern: text.clone(),
                    action: DomainAction::Add(text.clone()),
                }],
                backends: vec![BackendChange::Create(text.clone())],
                refusals: vec![Refusal::InvalidName { backend: text.clone(), name: text.clone() }],
                ..ChangeSet::default()
            };
            let lines = describe(&changes);
            prop_assert_eq!(lines.len(), 4);
            for line in &lines {
                prop_assert_eq!(line.lines().count(), 1, "{:?}", line);
                prop_assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{:?}", line);
            }
        }
    }
}
