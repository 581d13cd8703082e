//! A backend HAProxy refuses never removes a service: its check is planned
//! again as a TCP check, with an error naming the plugin, the refused line
//! (its field and value) and HAProxy's message (ADR-003's fallback).
//!
//! The host's grammar should make this unreachable; it is the net under
//! it. A refusal holds for the rendered check HAProxy refused: when the
//! service's inputs map to something else (a new job version), that is
//! tried again.

use crate::haproxy::validate::{ConfigAlert, culprits};
use crate::haproxy::{ApplyReport, ReloadOutcome};
use crate::mapping::{Engine, Mapped};
use crate::plan::{CheckMapper, ServiceKey, ServicePlan};
use crate::vocab::syntax::join;
use hnc_core::model::{NomadCheck, ServiceContext};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

/// What HAProxy refused of one service's backend.
#[derive(Debug, Clone)]
struct Refusal {
    /// The check lines of the refused backend, as text.
    check_lines: Vec<String>,
    /// The check arguments of its servers, as text.
    server_args: BTreeSet<String>,
    /// The refused line and HAProxy's message.
    cause: String,
}

/// The services whose rendered checks HAProxy refused.
#[derive(Debug, Default)]
pub(super) struct Refused {
    services: HashMap<ServiceKey, Refusal>,
}

impl Refused {
    /// A mapper that gives a TCP check wherever `inner` renders what
    /// HAProxy refused for that service.
    pub(super) fn mapper<'a, M: CheckMapper>(
        &'a self,
        inner: &'a M,
        engine: &'a Engine,
    ) -> Refusing<'a, M> {
        Refusing {
            refused: self,
            inner,
            engine,
        }
    }

    /// Records the services whose backends the last sync's `haproxy -c`
    /// refused; returns them (to plan again).
    pub(super) fn record(
        &mut self,
        report: &ApplyReport,
        plans: &BTreeMap<ServiceKey, ServicePlan>,
    ) -> Vec<ServiceKey> {
        let (alerts, kept_at, named) = match &report.reload {
            ReloadOutcome::Done {
                held_back: Some(held),
                ..
            } => (&held.alerts, &held.kept_at, Some(&held.backends)),
            ReloadOutcome::Rejected { alerts, kept_at } => (alerts, kept_at, None),
            _ => return Vec::new(),
        };
        let Ok(render) = std::fs::read_to_string(kept_at) else {
            return Vec::new();
        };
        let backends: BTreeSet<String> = match named {
            Some(named) => named.iter().cloned().collect(),
            None => {
                let all = plans
                    .values()
                    .filter_map(|p| p.backend.as_ref().map(|b| b.name.clone()))
                    .collect();
                culprits(alerts, &render, kept_at, &all)
            }
        };
        let mut again = Vec::new();
        for plan in plans.values() {
            let Some(backend) = plan.backend.as_ref().filter(|b| backends.contains(&b.name)) else {
                continue;
            };
            let cause = cause(alerts, &render, kept_at, &backend.name);
            self.services.insert(
                plan.key.clone(),
                Refusal {
                    check_lines: backend.check.iter().map(|l| join(l)).collect(),
                    server_args: backend
                        .servers
                        .values()
                        .map(|s| join(&s.check_args))
                        .collect(),
                    cause,
                },
            );
            again.push(plan.key.clone());
        }
        again
    }
}

/// The refused line of `backend` in `render`, with HAProxy's message: "line
/// `http-check expect status 2xx` (field `http-check expect status`, value
/// `2xx`): <message>".
fn cause(alerts: &[ConfigAlert], render: &str, kept_at: &Path, backend: &str) -> String {
    let shown = kept_at.to_string_lossy();
    let lines: Vec<&str> = render.lines().collect();
    for alert in alerts {
        let Some(n) = alert
            .line
            .filter(|_| alert.file.as_deref() == Some(&*shown))
        else {
            continue;
        };
        let upto = (n as usize).min(lines.len());
        let section = lines[..upto]
            .iter()
            .rev()
            .find_map(|l| l.trim_start().strip_prefix("backend "));
        if section.map(str::trim) != Some(backend) {
            continue;
        }
        let line = lines.get(upto.saturating_sub(1)).map_or("", |l| l.trim());
        let words: Vec<&str> = line.split(' ').collect();
        let message = alert.message.escape_debug();
        return match words.split_last() {
            Some((value, field)) if !line.starts_with("server ") && !field.is_empty() => format!(
                "line `{line}` (field `{}`, value `{value}`): {message}",
                field.join(" ")
            ),
            _ => format!("line `{line}`: {message}"),
        };
    }
    alerts
        .first()
        .map_or_else(String::new, |a| a.message.escape_debug().to_string())
}

/// A mapper that swaps in a TCP check where HAProxy refused the rendered one.
pub(super) struct Refusing<'a, M> {
    refused: &'a Refused,
    inner: &'a M,
    engine: &'a Engine,
}

impl<M: CheckMapper> CheckMapper for Refusing<'_, M> {
    fn map(&self, service: &ServiceContext, check: Option<&NomadCheck>) -> Arc<Mapped> {
        let checks = check.map_or(&[][..], std::slice::from_ref);
        self.unless_refused(service, checks, self.inner.map(service, check))
    }

    fn map_checks(&self, service: &ServiceContext, checks: &[NomadCheck]) -> Arc<Mapped> {
        let mapped = self.inner.map_checks(service, checks);
        self.unless_refused(service, checks, mapped)
    }
}

impl<M> Refusing<'_, M> {
    /// `mapped`, or a TCP check of `check` when HAProxy refused it.
    fn unless_refused(
        &self,
        service: &ServiceContext,
        checks: &[NomadCheck],
        mapped: Arc<Mapped>,
    ) -> Arc<Mapped> {
        let key = ServiceKey {
            namespace: service.namespace.clone(),
            name: service.name.clone(),
        };
        let Some(refusal) = self.refused.services.get(&key) else {
            return mapped;
        };
        let rendered = &mapped.rendered;
        let same = (!rendered.backend.is_empty()
            && rendered.backend_lines() == refusal.check_lines)
            || refusal.server_args.contains(&rendered.server_args());
        if !same || mapped.fallback.is_some() {
            return mapped;
        }
        let plugin = mapped.plugin.as_deref().unwrap_or("the tags");
        let reason = format!(
            "HAProxy refused the check that {plugin} gave: {}: TCP check instead",
            refusal.cause
        );
        Arc::new(
            self.engine
                .refused_by_haproxy(service, checks, &mapped, reason),
        )
    }
}
