//! Scrape-time metrics: the counters other components already keep, read
//! through [`Sources`] on every scrape and encoded as they are.

use crate::escape::one_line;
use crate::haproxy::stats::Snapshot as DriverStats;
use crate::mapping::stats::Snapshot as EngineStats;
use crate::nomad::{ChecksStats, Health};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A function that returns a component's counters as they are now.
pub type Source<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// Where the scrape-time metrics come from.
///
/// Closures, so that the daemon decides what stands behind them: after a
/// SIGHUP that builds a new mapping engine, `engine` reads the new one.
/// A new engine starts its counters at zero, which Prometheus' `rate()`
/// treats as a counter reset. [`Sources::default`] reads nothing (zeros,
/// not ready): set the fields the daemon has.
#[derive(Clone)]
pub struct Sources {
    /// `mapping::Engine::stats`: calls, errors and fallbacks.
    pub engine: Source<EngineStats>,
    /// `haproxy::RuntimeDriver::stats`: batches, commands, server changes.
    pub haproxy: Source<DriverStats>,
    /// `nomad::HealthWatch::scopes`: the watcher's health per scope.
    pub nomad: Source<BTreeMap<String, Health>>,
    /// `nomad::Checks::stats`: job-spec look-ups and fetches.
    pub checks: Source<ChecksStats>,
    /// Whether `/readyz` would answer 200 (`Readiness::is_ready`).
    pub ready: Source<bool>,
}

impl Default for Sources {
    fn default() -> Sources {
        Sources {
            engine: Arc::new(EngineStats::default),
            haproxy: Arc::new(DriverStats::default),
            nomad: Arc::new(BTreeMap::new),
            checks: Arc::new(ChecksStats::default),
            ready: Arc::new(|| false),
        }
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// The collector registered in [`super::Metrics`].
#[derive(Debug)]
pub(super) struct Snapshots {
    sources: Sources,
}

impl Snapshots {
    pub(super) fn new(sources: Sources) -> Snapshots {
        Snapshots { sources }
    }
}

impl Collector for Snapshots {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let ready = (self.sources.ready)();
        single(
            &mut enc,
            "hnc_ready",
            MetricType::Gauge,
            READY,
            u64::from(ready),
        )?;
        nomad(&mut enc, &(self.sources.nomad)())?;
        checks(&mut enc, &(self.sources.checks)())?;
        engine(&mut enc, &(self.sources.engine)())?;
        if let Some(heap) = crate::heap::bytes() {
            family(
                &mut enc,
                "hnc_heap_bytes",
                MetricType::Gauge,
                "The allocator's figures: kind=allocated (live data), active (the pages that \
                 hold it), resident (active, metadata and freed pages not yet given back to \
                 the OS), mapped. allocated growing under steady load is data kept; resident \
                 growing while allocated stays flat is memory the allocator keeps.",
                [
                    ([("kind", "allocated")], heap.allocated),
                    ([("kind", "active")], heap.active),
                    ([("kind", "resident")], heap.resident),
                    ([("kind", "mapped")], heap.mapped),
                ],
            )?;
        }
        driver(&mut enc, &(self.sources.haproxy)())
    }
}

const READY: &str = "1 when /readyz answers 200: the first full sync is done, every Nomad \
    event stream is connected, HAProxy answered the last sync and every file the connector \
    owns was written; 0 otherwise (GET /readyz tells why).";

fn nomad(enc: &mut DescriptorEncoder, scopes: &BTreeMap<String, Health>) -> fmt::Result {
    let by_scope = |f: fn(&Health) -> u64| {
        scopes
            .iter()
            .map(move |(s, h)| ([("scope", s.as_str())], f(h)))
    };
    family(
        enc,
        "hnc_nomad_connected",
        MetricType::Gauge,
        "1 while the scope's Nomad event stream is open and delivered its first heartbeat; \
         0 while listing, reconnecting or backing off after an error (GET /readyz or the \
         log tell the error). scope is * or a namespace.",
        by_scope(|h| u64::from(h.connected)),
    )?;
    family(
        enc,
        "hnc_nomad_last_index",
        MetricType::Gauge,
        "Highest Nomad Raft index the scope has seen in lists and event frames; it grows as \
         Nomad changes anything.",
        by_scope(|h| h.last_index),
    )?;
    let mut m = enc.encode_descriptor(
        "hnc_nomad_stream_lag",
        "Stream lag: the age of the last event frame or heartbeat received on the scope's \
         event stream (since the watcher started, before the first). Nomad sends a \
         heartbeat every 30 s, so a healthy stream stays below 30; a stalled or \
         disconnected stream grows without bound (the watcher re-opens a stream silent \
         for idle_timeout, 45 s by default).",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for (scope, health) in scopes {
        if let Some(lag) = health.stream_lag() {
            m.encode_family(&[("scope", scope.as_str())])?
                .encode_gauge(&lag.as_secs_f64())?;
        }
    }
    family(
        enc,
        "hnc_nomad_reconnects",
        MetricType::Counter,
        "Event streams re-opened after the first (after an error, a server restart or an idle \
         time-out; each re-open re-lists the scope first).",
        by_scope(|h| h.reconnects),
    )?;
    family(
        enc,
        "hnc_nomad_index_resets",
        MetricType::Counter,
        "Times Nomad's index went backwards (a wiped server, e.g. a restarted dev agent) and \
         the connector started over from Nomad's state.",
        by_scope(|h| h.index_resets),
    )?;
    family(
        enc,
        "hnc_nomad_frames",
        MetricType::Counter,
        "Event frames applied (frames older than the requested index are dropped, not counted).",
        by_scope(|h| h.frames),
    )?;
    let events = scopes.iter().flat_map(|(s, h)| {
        h.events
            .iter()
            .map(move |(topic, n)| ([("scope", s.as_str()), ("topic", *topic)], *n))
    });
    family(
        enc,
        "hnc_nomad_events",
        MetricType::Counter,
        "Events received on the scope's event stream, by topic (Service, Job, Allocation; \
         other for a topic not subscribed to).",
        events,
    )
}

fn checks(enc: &mut DescriptorEncoder, s: &ChecksStats) -> fmt::Result {
    single(
        enc,
        "hnc_job_spec_lookups",
        MetricType::Counter,
        "Job-spec check look-ups: one per service instance to map, answered from the cache \
         or by reading Nomad.",
        s.lookups,
    )?;
    family(
        enc,
        "hnc_job_spec_fetches",
        MetricType::Counter,
        "Nomad reads the job-spec resolver made because its cache could not answer: kind=job \
         (a job spec or its versions), job_allocations (a job's allocation list), allocation \
         (one allocation, for check ports). Concurrent look-ups of one job version share one \
         fetch; fetches per look-up is the cache's miss ratio.",
        [
            ([("kind", "job")], s.spec_fetches),
            ([("kind", "job_allocations")], s.alloc_list_fetches),
            ([("kind", "allocation")], s.alloc_fetches),
        ],
    )?;
    single(
        enc,
        "hnc_job_spec_unavailable",
        MetricType::Counter,
        "Look-ups that found no usable job spec (Nomad unreachable, job version no longer \
         kept, no matching service block): the instance gets a TCP check until a retry. The \
         log names the job once per cause.",
        s.unavailable,
    )?;
    family(
        enc,
        "hnc_job_spec_cached",
        MetricType::Gauge,
        "What the job-spec resolver's caches hold: kind=job (job versions, with failures \
         remembered for negative_cache_ttl), job_allocations (jobs whose allocations are \
         held), allocation (allocations, of all jobs). Entries older than cache_ttl are \
         swept once a cache has doubled, and jobs' allocations also a minute after the last \
         sweep; a purged job's allocations are not kept (Nomad 1.11.3 and later).",
        [
            ([("kind", "job")], s.cached_versions),
            ([("kind", "job_allocations")], s.cached_jobs),
            ([("kind", "allocation")], s.cached_allocations),
        ],
    )
}

fn engine(enc: &mut DescriptorEncoder, s: &EngineStats) -> fmt::Result {
    family(
        enc,
        "hnc_plugin_calls",
        MetricType::Counter,
        "Mapping plugin calls, by plugin (name@version, as the plugin reports itself).",
        // A plugin names itself: its label is kept to one line.
        s.calls.iter().map(|(p, n)| ([("plugin", one_line(p))], *n)),
    )?;
    family(
        enc,
        "hnc_plugin_fuel",
        MetricType::Counter,
        "Fuel (about one unit per wasm instruction) burned by mapping plugin calls, by plugin; \
         divided by hnc_plugin_calls_total, the mean cost of a call.",
        s.fuel.iter().map(|(p, n)| ([("plugin", one_line(p))], *n)),
    )?;
    family(
        enc,
        "hnc_plugin_errors",
        MetricType::Counter,
        "Failed mapping plugin calls, by plugin and cause: timeout, memory (limit hit), trap, \
         rejected (the plugin refused the check), invalid-output, host. Each falls back to a \
         TCP check.",
        s.errors
            .iter()
            .map(|((p, c), n)| ([("plugin", one_line(p)), ("cause", one_line(c))], *n)),
    )?;
    family(
        enc,
        "hnc_check_fallbacks",
        MetricType::Counter,
        "Checks that became a plain TCP check instead of the intended one, by cause: no-check \
         (none in the job or tags), unsupported-type (no plugin for the type), invalid-value \
         (the plugin's answer failed validation) or a plugin error cause (see \
         hnc_plugin_errors_total).",
        s.fallbacks
            .iter()
            .map(|(c, n)| ([("cause", c.as_str())], *n)),
    )
}

fn driver(enc: &mut DescriptorEncoder, s: &DriverStats) -> fmt::Result {
    single(
        enc,
        "hnc_haproxy_reloads_deferred",
        MetricType::Counter,
        "Applies that postponed their reload to coalesce a burst of backend changes into one.",
        s.reloads_deferred,
    )?;
    single(
        enc,
        "hnc_haproxy_runtime_batches",
        MetricType::Counter,
        "Batches sent to HAProxy's runtime API (one connection each).",
        s.batches,
    )?;
    single(
        enc,
        "hnc_haproxy_runtime_commands",
        MetricType::Counter,
        "Commands sent to HAProxy's runtime API.",
        s.commands,
    )?;
    let changes = s
        .applied
        .iter()
        .map(|(verb, n)| ([("verb", *verb), ("result", "applied")], *n))
        .chain(
            s.failed
                .iter()
                .map(|(verb, n)| ([("verb", *verb), ("result", "failed")], *n)),
        );
    family(
        enc,
        "hnc_haproxy_server_changes",
        MetricType::Counter,
        "Server changes sent to HAProxy, by verb and result (applied, or failed: HAProxy's \
         reply is logged and the change retried).",
        changes,
    )?;
    single(
        enc,
        "hnc_haproxy_refusals",
        MetricType::Counter,
        "Changes refused by the connector's validation or by HAProxy (counted on every apply \
         while they stand; the log names the service).",
        s.refusals,
    )?;
    let failed = FILES.map(|file| {
        let n = s.writes_failed.get(file).copied().unwrap_or(0);
        ([("file", file)], n)
    });
    family(
        enc,
        "hnc_file_write_errors",
        MetricType::Counter,
        "Failed writes of the connector's files (no space, quota, permission, I/O error), by \
         file: config, candidate (a render for haproxy -c), map, state. The old file stays; \
         the log names file and cause, /readyz fails until a write succeeds.",
        failed,
    )?;
    single(
        enc,
        "hnc_files_unwritten",
        MetricType::Gauge,
        "The connector's files whose last write failed (they keep their old contents).",
        s.unwritten.len() as u64,
    )
}

/// The `file` label values of `hnc_file_write_errors`, all exported from the start.
const FILES: [&str; 4] = ["config", "candidate", "map", "state"];

/// One family with labels.
fn family<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    kind: MetricType,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        value_of(m.encode_family(&labels)?, kind, value)?;
    }
    Ok(())
}

/// One metric without labels.
fn single(
    enc: &mut DescriptorEncoder,
    name: &str,
    kind: MetricType,
    help: &str,
    value: u64,
) -> fmt::Result {
    value_of(enc.encode_descriptor(name, help, None, kind)?, kind, value)
}

fn value_of(mut m: MetricEncoder, kind: MetricType, value: u64) -> fmt::Result {
    if kind == MetricType::Counter {
        m.encode_counter::<NoLabelSet, _, u64>(&value, None)
    } else {
        m.encode_gauge(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, Metrics};
    use std::time::Duration;

    fn scrape(sources: Sources) -> String {
        Metrics::new(sources).render(Format::OpenMetrics).unwrap()
    }

    #[test]
    fn plugin_errors_by_cause_come_from_the_engine_snapshot() {
        let mut stats = EngineStats::default();
        stats.calls.insert("http@1.0.0".into(), 7);
        stats
            .errors
            .insert(("http@1.0.0".into(), "timeout".into()), 2);
        stats.fallbacks.insert("timeout".into(), 2);
        stats.fallbacks.insert("no-check".into(), 5);
        let text = scrape(Sources {
            engine: Arc::new(move || stats.clone()),
            ..Sources::default()
        });
        assert!(text.contains("hnc_plugin_calls_total{plugin=\"http@1.0.0\"} 7"));
        assert!(
            text.contains("hnc_plugin_errors_total{plugin=\"http@1.0.0\",cause=\"timeout\"} 2")
        );
        assert!(text.contains("hnc_check_fallbacks_total{cause=\"no-check\"} 5"));
        assert!(text.contains("hnc_check_fallbacks_total{cause=\"timeout\"} 2"));
    }

    #[test]
    fn a_new_engine_behind_the_source_is_read_on_the_next_scrape() {
        let current = Arc::new(std::sync::Mutex::new(EngineStats::default()));
        let read = current.clone();
        let m = Metrics::new(Sources {
            engine: Arc::new(move || read.lock().unwrap().clone()),
            ..Sources::default()
        });
        assert!(
            !m.render(Format::OpenMetrics)
                .unwrap()
                .contains("hnc_plugin_calls_total{")
        );
        current.lock().unwrap().calls.insert("grpc".into(), 1);
        let text = m.render(Format::OpenMetrics).unwrap();
        assert!(text.contains("hnc_plugin_calls_total{plugin=\"grpc\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn nomad_health_is_exported_per_scope_with_topics_and_lag() {
        let (board, watch) = crate::nomad::HealthWatch::test_board(&["*"]);
        board.update("*", |h| {
            h.connected = true;
            h.last_index = 812;
            h.reconnects = 3;
            h.frames = 4;
            h.received(
                tokio::time::Instant::now(),
                ["Service", "Service", "Job", "Node"],
            );
        });
        tokio::time::advance(Duration::from_secs(12)).await;
        let text = scrape(Sources {
            nomad: Arc::new(move || watch.scopes()),
            ..Sources::default()
        });
        for line in [
            "hnc_nomad_connected{scope=\"*\"} 1",
            "hnc_nomad_last_index{scope=\"*\"} 812",
            "hnc_nomad_reconnects_total{scope=\"*\"} 3",
            "hnc_nomad_frames_total{scope=\"*\"} 4",
            "hnc_nomad_events_total{scope=\"*\",topic=\"Service\"} 2",
            "hnc_nomad_events_total{scope=\"*\",topic=\"Job\"} 1",
            "hnc_nomad_events_total{scope=\"*\",topic=\"other\"} 1",
            "hnc_nomad_stream_lag_seconds{scope=\"*\"} 12.0",
            "# UNIT hnc_nomad_stream_lag_seconds seconds",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn driver_and_job_spec_counters_and_readiness_are_exported() {
        let mut driver = DriverStats {
            batches: 3,
            commands: 17,
            refusals: 1,
            ..DriverStats::default()
        };
        driver.applied.insert("add", 5);
        driver.failed.insert("add", 1);
        driver.writes_failed.insert("state", 2);
        driver.unwritten.insert(
            "/var/lib/h.state.07".into(),
            "No space left on device".into(),
        );
        let checks = ChecksStats {
            lookups: 100,
            spec_fetches: 2,
            alloc_list_fetches: 3,
            alloc_fetches: 1,
            unavailable: 4,
            cached_versions: 6,
            cached_jobs: 2,
            cached_allocations: 9,
        };
        let text = scrape(Sources {
            haproxy: Arc::new(move || driver.clone()),
            checks: Arc::new(move || checks),
            ready: Arc::new(|| true),
            ..Sources::default()
        });
        for line in [
            "hnc_ready 1",
            "hnc_haproxy_runtime_batches_total 3",
            "hnc_haproxy_runtime_commands_total 17",
            "hnc_haproxy_server_changes_total{verb=\"add\",result=\"applied\"} 5",
            "hnc_haproxy_server_changes_total{verb=\"add\",result=\"failed\"} 1",
            "hnc_haproxy_refusals_total 1",
            "hnc_file_write_errors_total{file=\"state\"} 2",
            "hnc_file_write_errors_total{file=\"config\"} 0",
            "hnc_files_unwritten 1",
            "hnc_job_spec_lookups_total 100",
            "hnc_job_spec_fetches_total{kind=\"job\"} 2",
            "hnc_job_spec_fetches_total{kind=\"job_allocations\"} 3",
            "hnc_job_spec_unavailable_total 4",
            "hnc_job_spec_cached{kind=\"job\"} 6",
            "hnc_job_spec_cached{kind=\"allocation\"} 9",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
