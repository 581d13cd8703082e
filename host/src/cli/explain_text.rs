//! Text for `plan` and `explain`: a change set and a service's plan, as an operator reads them.

use haproxy_nomad_connector::plan::{
    Actual, Assembled, BackendChange, ChangeSet, ServerAction, ServicePlan,
};
use std::fmt::Write as _;

/// One line per change, `+`/`~`/`-` first.
pub fn describe(changes: &ChangeSet) -> Vec<String> {
    let mut lines = Vec::new();
    for change in &changes.backends {
        lines.push(match change {
            BackendChange::Create(b) => format!("+ backend {b} (reload)"),
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
                        servers_changed.join(", ")
                    ));
                }
                format!("~ backend {backend}: {} (reload)", what.join(" and "))
            }
            BackendChange::Delete(b) => format!("- backend {b} (reload)"),
        });
    }
    for change in &changes.servers {
        let (b, s) = (&change.backend, &change.server);
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
            ServerAction::Drain => format!("- server {b}/{s} drains (removed from Nomad)"),
            ServerAction::Remove => format!("- server {b}/{s} deleted"),
        });
    }
    for change in &changes.domains {
        lines.push(match change.backend() {
            Some(backend) => format!("+ domain {:?} {} → {backend}", change.kind, change.pattern),
            None => format!("- domain {:?} {}", change.kind, change.pattern),
        });
    }
    for refusal in &changes.refusals {
        lines.push(format!("! {refusal}"));
    }
    lines
}

/// A service's plan: instances, checks, where they came from, HAProxy's lines and state.
pub fn render(plan: &ServicePlan, assembled: &Assembled, actual: &Actual) -> String {
    let mut out = String::new();
    let backend = assembled.backends.get(&plan.key);
    let _ = writeln!(out, "service {}", plan.key);
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
        let _ = writeln!(out, "  ! {problem}");
    }
    for conflict in assembled
        .conflicts
        .iter()
        .filter(|c| c.contains(&plan.key.to_string()))
    {
        let _ = writeln!(out, "  ! {conflict}");
    }
    for (kind, pattern) in &plan.domains {
        let _ = writeln!(out, "  domain {kind:?} {pattern}");
    }
    for i in &plan.instances {
        let _ = writeln!(out, "  instance {} at {}", i.id, i.address);
        if !i.enabled {
            let _ = writeln!(out, "    not in HAProxy: no haproxy.enable=true tag");
            continue;
        }
        let version = i.job_version.map_or("unknown".into(), |v| v.to_string());
        let place = if i.task.is_empty() {
            format!("group {}", i.group)
        } else {
            format!("group {}, task {}", i.group, i.task)
        };
        let _ = writeln!(out, "    job version {version} ({place})");
        match &i.check {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "    job check {:?}: {} {}, every {} ms, timeout {} ms",
                    c.name, c.check_type, c.path, c.interval_ms, c.timeout_ms
                );
            }
            None => {
                let _ = writeln!(out, "    job check: none");
            }
        }
        if !i.check_tags.is_empty() {
            let _ = writeln!(out, "    overridden by tags: {}", i.check_tags.join(", "));
        }
        let _ = writeln!(
            out,
            "    mapped by {} (check from {:?})",
            i.plugin.as_deref().unwrap_or("no plugin"),
            i.origin
        );
        if let Some(f) = &i.fallback {
            let _ = writeln!(out, "    fallback ({}): {}", f.cause, f.reason);
        }
        for note in &i.notes {
            let _ = writeln!(out, "    note: {note}");
        }
        let _ = writeln!(
            out,
            "    server {} {} {}",
            i.server, i.address, i.server_args
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
                    s.check_status
                );
            }
            None => {
                let _ = writeln!(out, "    in HAProxy: not yet");
            }
        }
    }
    out
}
