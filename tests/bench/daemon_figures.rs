//! Figures of the daemon, measured end to end: the real connector binary
//! against the Nomad simulator and a real HAProxy.
//!
//! `cargo run --release -p hnc-tests --bin bench-daemon -- [all|latency [N [S]]|burst|coldstart [N]]`
//!
//! - latency: from placing an allocation (its events) to the server in
//!   HAProxy (`show servers state`), p50/p99 over 1,000 samples, beside 10
//!   other servers and beside 10,000 (`latency N S`: S services × 5);
//! - burst: 1,000 new instances of 10 existing services, time to applied
//!   and reloads; `BENCH_RUNS` runs per event buffer size (default 3), with
//!   the median, and its ratio to HAProxy's floor for the same 1,000 adds
//!   sent raw, measured in the same run;
//! - coldstart: 2,000 services × 5 instances already in Nomad, the connector
//!   started: time to every server in HAProxy, reloads, and the daemon's RSS.

use hnc_tests::backends::HttpBackend;
use hnc_tests::haproxy::{Haproxy, free_port, send};
use hnc_tests::process::{rss_mb, status_mb};
use hnc_tests::world::{metric, metrics};
use nomad_sim::{PlaceAlloc, Sim, SimConfig, StopKind};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";

struct Bench {
    sim: Sim,
    haproxy: Haproxy,
    target: HttpBackend,
    connector: Option<Child>,
    /// The connector's admin listener.
    admin: u16,
}

impl Bench {
    async fn new() -> Bench {
        Bench::with(SimConfig::default()).await
    }

    async fn with(config: SimConfig) -> Bench {
        let sim = Sim::start(config).await.expect("simulator");
        Bench {
            sim,
            haproxy: Haproxy::start("").await,
            target: HttpBackend::start().await,
            connector: None,
            admin: free_port(),
        }
    }

    /// One job per service: a tcp check every 30 s (the checks are not what is measured).
    fn register(&self, service: &str) {
        self.sim.register_job(json!({
            "ID": service, "Namespace": "default", "Type": "service",
            "TaskGroups": [{"Name": "g",
                "Services": [{"Name": service, "PortLabel": "p", "Provider": "nomad",
                              "Tags": [ON, "haproxy.mode=tcp"],
                              "Checks": [{"Name": "c", "Type": "tcp",
                                          "Interval": 30_000_000_000_i64, "Timeout": 1_000_000_000_i64}]}],
                "Tasks": [{"Name": "t"}]}]
        }));
    }

    fn place(&self, service: &str) -> String {
        self.sim
            .place_alloc(PlaceAlloc::new(service, "g").port("p", self.target.port))
    }

    fn start_connector(&mut self, drain_ms: u64) -> u32 {
        let d = self.haproxy.dir.path();
        let config = self.haproxy.connector_toml(
            &format!("address = \"{}\"", self.sim.url()),
            &format!(
                r#"drain_grace_ms = {drain_ms}
reload_delay_ms = 200
[daemon]
resync_interval_secs = 60
admin_listen = "127.0.0.1:{admin}"
[log]
level = "{log}"
"#,
                admin = self.admin,
                log = std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        );
        let path = d.join("connector.toml");
        std::fs::write(&path, config).expect("config");
        let binary: PathBuf = std::env::current_exe()
            .expect("exe")
            .parent()
            .expect("dir")
            .join("haproxy-nomad-connector");
        // BENCH_WRAP runs the connector under a profiler; the figures then
        // measure the profiler too.
        let child = hnc_tests::process::connector_command(&binary)
            .args(["run", "--config"])
            .arg(&path)
            .spawn()
            .expect("build the connector in release first");
        let pid = child.id();
        self.connector = Some(child);
        pid
    }

    /// Servers HAProxy lists in a backend (or in all, with `None`).
    async fn count(&self, backend: Option<&str>) -> usize {
        let cmd = backend.map_or("show servers state".to_string(), |b| {
            format!("show servers state {b}")
        });
        let text = send(&self.haproxy.stats_socket, &cmd)
            .await
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count()
            .saturating_sub(1)
    }

    async fn wait_count(
        &self,
        backend: Option<&str>,
        want: usize,
        poll: Duration,
        limit: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.count(backend).await == want {
                return Some(start.elapsed());
            }
            tokio::time::sleep(poll).await;
        }
        None
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut child) = self.connector.take() {
            hnc_tests::process::stop_connector(&mut child);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `world` services × 5 instances are in Nomad and HAProxy besides the
/// measured service: the cost of one event must not grow with them.
async fn latency(samples: usize, world: usize) {
    let mut b = Bench::new().await;
    populate(&b, world, 5);
    b.register("lat");
    b.place("lat");
    b.start_connector(0);
    b.wait_count(
        None,
        world * 5 + 1,
        Duration::from_millis(20),
        Duration::from_secs(120),
    )
    .await
    .expect("the world converged");
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let alloc = b.place("lat");
        let ok = b
            .wait_count(
                Some("default_lat"),
                2,
                Duration::from_micros(200),
                Duration::from_secs(10),
            )
            .await;
        took.push(started.elapsed());
        assert!(ok.is_some(), "a server never appeared");
        b.sim.stop_alloc(&alloc, StopKind::ClientDeregister);
        b.wait_count(
            Some("default_lat"),
            1,
            Duration::from_millis(1),
            Duration::from_secs(10),
        )
        .await
        .expect("the server is removed");
    }
    took.sort();
    println!(
        "event → server in HAProxy, {} other servers, {samples} samples: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        world * 5,
        ms(percentile(&took, 0.5)),
        ms(percentile(&took, 0.9)),
        ms(percentile(&took, 0.99)),
        ms(*took.last().expect("samples"))
    );
}

/// Registers `services` services with `per_service` instances each.
fn populate(b: &Bench, services: usize, per_service: usize) {
    let setup = Instant::now();
    for i in 0..services {
        let s = format!("svc{i}");
        b.register(&s);
        for _ in 0..per_service {
            b.place(&s);
        }
    }
    if services > 0 {
        eprintln!(
            "(world of {} instances set up in {:.1} s)",
            services * per_service,
            setup.elapsed().as_secs_f64()
        );
    }
}

/// `buffer`: Nomad's `event_buffer_size` (Raft batches; default 100). The
/// simulator applies a placement as 3 batches at ~10,000 batches/s, so with
/// the default a reader 10 ms behind falls out of the buffer, the stream
/// ends and the connector re-lists: both are measured.
/// Bursts with the same event buffer, one world each; prints every run and
/// the median of the time after the last event (the machine is noisy).
/// Returns the median ms after the last event.
async fn bursts(runs: usize, new_instances: usize, buffer: usize) -> Option<f64> {
    let mut after_last: Vec<f64> = Vec::new();
    for _ in 0..runs {
        after_last.extend(burst(new_instances, buffer).await);
    }
    after_last.sort_by(f64::total_cmp);
    let (min, max) = (after_last.first()?, after_last.last()?);
    let median = after_last[after_last.len() / 2];
    println!(
        "  event buffer {buffer}: {} of {runs} runs converged; after the last event: median {median:.0} ms, min {min:.0}, max {max:.0}",
        after_last.len(),
    );
    Some(median)
}

/// One burst; returns the ms from the last event to all servers in HAProxy.
async fn burst(new_instances: usize, buffer: usize) -> Option<f64> {
    let mut b = Bench::with(SimConfig {
        buffer_size: buffer,
        ..SimConfig::default()
    })
    .await;
    let services: Vec<String> = (0..10).map(|i| format!("burst{i}")).collect();
    for s in &services {
        b.register(s);
        b.place(s);
    }
    b.start_connector(30_000);
    b.wait_count(
        None,
        services.len(),
        Duration::from_millis(20),
        Duration::from_secs(60),
    )
    .await
    .expect("the services converged");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reloads = b.haproxy.reloads().await.0;
    let started = Instant::now();
    for i in 0..new_instances {
        b.place(&services[i % services.len()]);
    }
    let placed = started.elapsed();
    let want = services.len() + new_instances;
    let converged = b
        .wait_count(
            None,
            want,
            Duration::from_millis(
                std::env::var("BENCH_POLL_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(2),
            ),
            Duration::from_secs(60),
        )
        .await
        .map(|_| started.elapsed());
    let reloads = b.haproxy.reloads().await.0 - reloads;
    match converged {
        Some(t) => {
            println!(
                "burst of {new_instances} new instances of {} existing services (event buffer {buffer}): all in HAProxy {:.0} ms after the first event ({:.0} ms after the last; the simulator took {:.0} ms to emit them), {reloads} reloads",
                services.len(),
                ms(t),
                ms(t.saturating_sub(placed)),
                ms(placed)
            );
            Some(ms(t.saturating_sub(placed)))
        }
        None => {
            println!("burst: did not converge within 60 s");
            None
        }
    }
}

async fn coldstart(services: usize, per_service: usize) {
    let mut b = Bench::new().await;
    populate(&b, services, per_service);
    let reloads = b.haproxy.reloads().await.0;
    let started = Instant::now();
    let pid = b.start_connector(30_000);
    let converged = b
        .wait_count(
            None,
            services * per_service,
            Duration::from_millis(50),
            Duration::from_secs(120),
        )
        .await
        .map(|_| started.elapsed());
    let reloads = b.haproxy.reloads().await.0 - reloads;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mb(pid);
    let (anon, file) = (status_mb(pid, "RssAnon:"), status_mb(pid, "RssFile:"));
    let heap = metrics(SocketAddr::from(([127, 0, 0, 1], b.admin))).await;
    let heap_mb = |kind| metric(&heap, "hnc_heap_bytes", &[("kind", kind)]) / 1e6;
    match converged {
        Some(t) => println!(
            "cold start, {services} services × {per_service} instances: converged in {:.2} s (from process start), {reloads} reload(s); daemon RSS at {} servers: {rss:.1} MB (heap and stacks {anon:.1} MB, binary and files {file:.1} MB; the allocator's live data {:.1} MB, its pages in use {:.1} MB, resident {:.1} MB)",
            t.as_secs_f64(),
            services * per_service,
            heap_mb("allocated"),
            heap_mb("active"),
            heap_mb("resident"),
        ),
        None => {
            // HAProxy's reason, when it refused the reload (at 50,000
            // checked servers: an open-files limit below what it needs).
            let log = b.haproxy.log();
            let alert = log
                .lines()
                .rfind(|l| l.contains("[ALERT]"))
                .unwrap_or("none");
            println!(
                "cold start: did not converge within 120 s ({} servers seen); HAProxy's last alert: {alert}",
                b.count(None).await
            );
        }
    }
    // BENCH_HOLD=S keeps the world up S more seconds, to inspect the
    // converged daemon (/proc/PID/smaps, gdb...).
    if let Some(secs) = std::env::var("BENCH_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        eprintln!("(holding for {secs} s: the connector is pid {pid})");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let samples = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    if what == "all" {
        // With 10 servers besides, and with 10,000.
        latency(samples, 2).await;
        latency(samples, 2000).await;
    }
    if what == "latency" {
        // `latency N S`: S services × 5 instances besides (default 2).
        let world = std::env::args()
            .nth(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(2);
        latency(samples, world).await;
    }
    if matches!(what.as_str(), "all" | "burst") {
        // BENCH_RUNS bursts per buffer size (default 3).
        let runs = std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3);
        let medians = [
            bursts(runs, 1000, SimConfig::default().buffer_size).await,
            bursts(runs, 1000, 4 * 1000).await,
        ];
        // HAProxy's own floor for the same adds, in this run.
        let floor = hnc_tests::floor::adds(10, 100, "30s", runs)
            .await
            .expect("the floor");
        println!(
            "  HAProxy's floor, the same 1,000 checked adds sent raw (10 backends × 100, median of {runs}): {:.0} ms",
            ms(floor)
        );
        for (buffer, median) in [SimConfig::default().buffer_size, 4 * 1000]
            .iter()
            .zip(medians)
        {
            if let Some(median) = median {
                println!(
                    "  event buffer {buffer}: after the last event / the floor = {:.2}",
                    median / ms(floor)
                );
            }
        }
    }
    if matches!(what.as_str(), "all" | "coldstart") {
        // `coldstart N` starts with N services instead (RSS at small scale).
        let services = std::env::args()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000);
        coldstart(services, 5).await;
    }
}
