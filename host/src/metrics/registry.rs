//! The [`Metrics`] registry: the counters the daemon loop updates, the
//! scrape-time snapshots, and rendering in either text format.

use super::snapshots::{Snapshots, Sources};
use crate::haproxy::{ApplyReport, ReloadOutcome};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// Upper bounds of the apply-latency buckets, in seconds: a runtime-API batch
/// takes milliseconds, a reload (`haproxy -c`, then a new worker) seconds.
const APPLY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Metrics that cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The encoder failed (a formatting error; not expected with a `String`).
    #[error("encoding metrics failed")]
    EncodeFailed(#[source] std::fmt::Error),
}

/// Why HAProxy was reloaded, or why a wanted reload did not take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadReason {
    /// A backend was created.
    BackendAdded,
    /// A backend's settings (balance, options) changed.
    BackendChanged,
    /// A backend was removed.
    BackendRemoved,
    /// A backend's health check changed.
    CheckChanged,
    /// The reload failed; the old worker keeps serving.
    Failed,
    /// The render failed `haproxy -c`; the old config keeps serving.
    Rejected,
}

impl ReloadReason {
    /// Every reason, so each label value is exported from the start.
    pub const ALL: [ReloadReason; 6] = [
        ReloadReason::BackendAdded,
        ReloadReason::BackendChanged,
        ReloadReason::BackendRemoved,
        ReloadReason::CheckChanged,
        ReloadReason::Failed,
        ReloadReason::Rejected,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadReason::BackendAdded => "backend-added",
            ReloadReason::BackendChanged => "backend-changed",
            ReloadReason::BackendRemoved => "backend-removed",
            ReloadReason::CheckChanged => "check-changed",
            ReloadReason::Failed => "failed",
            ReloadReason::Rejected => "rejected",
        }
    }
}

impl EncodeLabelValue for ReloadReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

/// How one apply (a `Driver::apply` or `Driver::sync` call) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyOutcome {
    /// Everything wanted was applied (or deferred to coalesce a reload).
    Ok,
    /// HAProxy answered, but a server change failed or the reload was
    /// rejected or failed; the daemon retries.
    Partial,
    /// The apply failed: HAProxy unreachable or a managed file not written.
    Error,
}

impl ApplyOutcome {
    /// Every outcome, so each label value is exported from the start.
    pub const ALL: [ApplyOutcome; 3] =
        [ApplyOutcome::Ok, ApplyOutcome::Partial, ApplyOutcome::Error];

    /// The outcome of a driver's answer. Refusals do not make an apply
    /// partial: they repeat on every apply until the job changes, and are
    /// counted in `hnc_haproxy_refusals_total`.
    pub fn of<E>(result: &Result<ApplyReport, E>) -> ApplyOutcome {
        match result {
            Err(_) => ApplyOutcome::Error,
            Ok(report)
                if !report.failed.is_empty()
                    || !report.failed_domains.is_empty()
                    || matches!(
                        report.reload,
                        ReloadOutcome::Rejected { .. }
                            | ReloadOutcome::Failed { .. }
                            | ReloadOutcome::Done {
                                held_back: Some(_),
                                ..
                            }
                    ) =>
            {
                ApplyOutcome::Partial
            }
            Ok(_) => ApplyOutcome::Ok,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Ok => "ok",
            ApplyOutcome::Partial => "partial",
            ApplyOutcome::Error => "error",
        }
    }
}

impl EncodeLabelValue for ApplyOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    reason: ReloadReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApplyLabels {
    outcome: ApplyOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabels {
    service: String,
    check: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReadLabels {
    reason: &'static str,
}

/// Why the verdict monitor read an allocation's check results.
pub const VERDICT_READ_REASONS: [&str; 3] = ["state-change", "confirm", "sweep"];

/// Label values longer than this are cut (check names are free-form).
const MAX_LABEL: usize = 128;

fn label(s: &str) -> String {
    s.chars().take(MAX_LABEL).collect()
}

type HistogramFamily = Family<ApplyLabels, Histogram, fn() -> Histogram>;

fn apply_histogram() -> Histogram {
    Histogram::new(APPLY_BUCKETS)
}

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text: what Prometheus asks for when it scrapes.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4: for `curl` and older scrapers.
    Prometheus,
}

impl Format {
    /// The format a request's `Accept` header asks for: OpenMetrics when it
    /// names `application/openmetrics-text`, else the classic format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The connector's metrics. `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    applies: HistogramFamily,
    reloads: Family<ReloadLabels, Counter>,
    servers: Gauge,
    disagreements: Family<VerdictLabels, Counter>,
    disagreeing: Gauge,
    verdict_reads: Family<ReadLabels, Counter>,
    verdict_read_errors: Counter,
}

impl Metrics {
    /// A registry with the daemon's own metrics and the snapshots of `sources`.
    pub fn new(sources: Sources) -> Metrics {
        let mut registry = Registry::default();
        let applies = HistogramFamily::new_with_constructor(apply_histogram);
        for outcome in ApplyOutcome::ALL {
            applies.get_or_create_owned(&ApplyLabels { outcome });
        }
        registry.register_with_unit(
            "hnc_apply_duration",
            "Time to apply one change set to HAProxy (runtime API batch, plus a validated \
             reload when backends changed), by outcome: ok, partial (a server change failed \
             or the reload was rejected or failed; retried) or error (HAProxy unreachable)",
            Unit::Seconds,
            applies.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        for reason in ReloadReason::ALL {
            reloads.get_or_create_owned(&ReloadLabels { reason });
        }
        registry.register(
            "hnc_reloads",
            "HAProxy reloads by reason: backend-added, backend-changed, backend-removed, \
             check-changed (a reload with several kinds of change counts once for each), \
             failed (the old worker kept serving) or rejected (the render failed haproxy -c; \
             the rejected file is kept for inspection)",
            reloads.clone(),
        );
        let servers = Gauge::default();
        registry.register(
            "hnc_servers_managed",
            "Servers the connector manages in HAProxy right now (all managed backends)",
            servers.clone(),
        );
        let disagreements = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "hnc_verdict_disagreements",
            "Disagreements between HAProxy's check and Nomad's check results (HAProxy DOWN \
             while Nomad passes, or the reverse) that lasted longer than the check's interval \
             + timeout, by Nomad service and check; each counts once. They never change routing",
            disagreements.clone(),
        );
        let disagreeing = Gauge::default();
        registry.register(
            "hnc_verdict_disagreements_current",
            "Servers whose HAProxy and Nomad verdicts disagree right now (counted ones)",
            disagreeing.clone(),
        );
        let verdict_reads = Family::<ReadLabels, Counter>::default();
        for reason in VERDICT_READ_REASONS {
            verdict_reads.get_or_create_owned(&ReadLabels { reason });
        }
        registry.register(
            "hnc_verdict_nomad_reads",
            "Reads of an allocation's check results from Nomad by the verdict monitor, by \
             reason: state-change (HAProxy changed the server's state), confirm (a \
             disagreement is read again after interval + timeout) or sweep",
            verdict_reads.clone(),
        );
        let verdict_read_errors = Counter::default();
        registry.register(
            "hnc_verdict_nomad_read_errors",
            "Reads of check results that failed (Nomad unreachable, no permission, unknown \
             allocation, a body too large)",
            verdict_read_errors.clone(),
        );
        registry.register(
            "hnc_build",
            "The connector's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(Snapshots::new(sources)));
        Metrics {
            registry,
            applies,
            reloads,
            servers,
            disagreements,
            disagreeing,
            verdict_reads,
            verdict_read_errors,
        }
    }

    /// Counts a confirmed disagreement of `service`'s `check`.
    pub fn disagreement(&self, service: &str, check: &str) {
        self.disagreements
            .get_or_create(&VerdictLabels {
                service: label(service),
                check: label(check),
            })
            .inc();
    }

    /// Sets the number of servers that disagree now.
    pub fn disagreeing(&self, n: usize) {
        self.disagreeing.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a read of check results (`reason` from [`VERDICT_READ_REASONS`]).
    pub fn verdict_read(&self, reason: &'static str) {
        self.verdict_reads
            .get_or_create(&ReadLabels { reason })
            .inc();
    }

    /// Counts a failed read of check results.
    pub fn verdict_read_failed(&self) {
        self.verdict_read_errors.inc();
    }

    /// Records one apply: how long it took and how it ended.
    pub fn apply_finished(&self, took: Duration, outcome: ApplyOutcome) {
        self.applies
            .get_or_create(&ApplyLabels { outcome })
            .observe(took.as_secs_f64());
    }

    /// Counts a reload (or a wanted reload that did not take effect).
    pub fn reloaded(&self, reason: ReloadReason) {
        self.reloads.get_or_create(&ReloadLabels { reason }).inc();
    }

    /// Sets the number of servers the connector manages.
    pub fn servers_managed(&self, n: usize) {
        self.servers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Renders every metric, reading the snapshots now.
    ///
    /// # Errors
    /// The encoder failed (not expected).
    pub fn render(&self, format: Format) -> Result<String, Error> {
        let mut out = String::new();
        match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        }
        .map_err(Error::EncodeFailed)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(m: &Metrics) -> String {
        m.render(Format::OpenMetrics).unwrap()
    }

    #[test]
    fn metrics_can_be_shared_between_the_daemon_loop_and_the_admin_listener() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Metrics>();
    }

    #[test]
    fn every_reason_and_outcome_is_exported_before_anything_happens() {
        let text = render(&Metrics::new(Sources::default()));
        for reason in ReloadReason::ALL {
            let line = format!("hnc_reloads_total{{reason=\"{}\"}} 0", reason.as_str());
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        for outcome in ApplyOutcome::ALL {
            let line = format!(
                "hnc_apply_duration_seconds_count{{outcome=\"{}\"}} 0",
                outcome.as_str()
            );
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        assert!(text.contains("# UNIT hnc_apply_duration_seconds seconds"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn daemon_updates_appear_in_a_scrape() {
        let m = Metrics::new(Sources::default());
        m.reloaded(ReloadReason::CheckChanged);
        m.reloaded(ReloadReason::CheckChanged);
        m.reloaded(ReloadReason::Rejected);
        m.apply_finished(Duration::from_millis(30), ApplyOutcome::Ok);
        m.apply_finished(Duration::from_secs(2), ApplyOutcome::Partial);
        m.servers_managed(42);
        let text = render(&m);
        assert!(text.contains("hnc_reloads_total{reason=\"check-changed\"} 2"));
        assert!(text.contains("hnc_reloads_total{reason=\"rejected\"} 1"));
        assert!(text.contains("hnc_reloads_total{reason=\"failed\"} 0"));
        assert!(text.contains("hnc_apply_duration_seconds_bucket{le=\"0.05\",outcome=\"ok\"} 1"));
        assert!(
            text.contains("hnc_apply_duration_seconds_bucket{le=\"1.0\",outcome=\"partial\"} 0")
        );
        assert!(text.contains("hnc_apply_duration_seconds_count{outcome=\"partial\"} 1"));
        assert!(text.contains("hnc_servers_managed 42"));
        assert!(text.contains("hnc_build_info{version=\""));
    }

    #[test]
    fn disagreements_are_counted_by_service_and_check_with_escaped_labels() {
        let m = Metrics::new(Sources::default());
        assert!(render(&m).contains("hnc_verdict_nomad_reads_total{reason=\"sweep\"} 0"));
        m.disagreement("web", "service: \"web\" check");
        m.disagreement("web", "service: \"web\" check");
        m.disagreeing(1);
        m.verdict_read("state-change");
        let text = render(&m);
        assert!(
            text.contains(
                "hnc_verdict_disagreements_total{service=\"web\",check=\"service: \\\"web\\\" check\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("hnc_verdict_disagreements_current 1"));
        assert!(text.contains("hnc_verdict_nomad_reads_total{reason=\"state-change\"} 1"));
    }

    #[test]
    fn the_classic_format_has_no_eof_marker_and_its_own_content_type() {
        let text = Metrics::new(Sources::default())
            .render(Format::Prometheus)
            .unwrap();
        assert!(text.contains("# TYPE hnc_reloads_total counter"));
        assert!(!text.contains("# EOF"));
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert!(
            Format::Prometheus
                .content_type()
                .starts_with("text/plain; version=0.0.4")
        );
    }

    #[test]
    fn apply_outcome_is_partial_when_haproxy_answered_but_did_not_do_everything() {
        let ok: Result<ApplyReport, ()> = Ok(ApplyReport::default());
        assert_eq!(ApplyOutcome::of(&ok), ApplyOutcome::Ok);
        let failed: Result<_, ()> = Ok(ApplyReport {
            reload: ReloadOutcome::Failed {
                reason: "no new worker".into(),
            },
            ..ApplyReport::default()
        });
        assert_eq!(ApplyOutcome::of(&failed), ApplyOutcome::Partial);
        let deferred: Result<_, ()> = Ok(ApplyReport {
            reload: ReloadOutcome::Deferred(Duration::from_secs(1)),
            ..ApplyReport::default()
        });
        assert_eq!(ApplyOutcome::of(&deferred), ApplyOutcome::Ok);
        assert_eq!(
            ApplyOutcome::of(&Err::<ApplyReport, _>("down")),
            ApplyOutcome::Error
        );
    }
}
