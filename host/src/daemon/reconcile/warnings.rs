//! What the reconciler logs, each message once: plan problems, refusals, failed applies.

use super::Reconciler;
use crate::haproxy::{ApplyReport, Driver, ReloadOutcome};
use crate::nomad::Api;

impl<D: Driver, C: Api> Reconciler<D, C> {
    pub(super) fn log_problems(&mut self) {
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

    pub(super) fn log_report(&mut self, report: &ApplyReport) {
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
    pub(super) fn log_once(&mut self, message: &str, log: impl FnOnce(&str)) {
        if self.logged.len() > 10_000 {
            self.logged.clear();
        }
        if self.logged.insert(message.to_string()) {
            log(message);
        }
    }
}
