//! Soak (not in CI): the real connector binary against the Nomad
//! simulator and a real HAProxy, under N minutes of churn at E events/s.
//!
//! `cargo run --release -p hnc-tests --bin soak -- --minutes N --events-per-sec E`
//! (build the connector first: `cargo build --release -p haproxy-nomad-connector`).
//!
//! An event is one simulator action: an allocation placed or stopped (in
//! each of the four ways Nomad removes services), a new job version (its
//! check path and its `haproxy.weight` tag change, so placements roll it
//! out and stops take the oldest versions first), a new service, or a job
//! purged. It prints the connector's RSS every 10 s, with the allocator's
//! figures (`hnc_heap_bytes`: live data, and what the allocator keeps) and
//! what the job-spec caches hold (`hnc_job_spec_cached`); at
//! the end it waits for quiescence and prints the difference between HAProxy
//! (`show servers state` of every backend) and Nomad (the simulator's
//! registrations), which must be empty: the exit status is 1 otherwise.
//! See `tests/bench/README.md`.

use clap::Parser;
use hnc_tests::backends::HttpBackend;
use hnc_tests::convergence;
use hnc_tests::haproxy::{Haproxy, free_port, send};
use hnc_tests::load::http_get;
use hnc_tests::world::metric;
use nomad_sim::{PlaceAlloc, Sim, SimConfig, StopKind};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
const STOPS: [StopKind; 4] = [
    StopKind::ClientDeregister,
    StopKind::ClientTerminal,
    StopKind::PlanTerminal,
    StopKind::NodeDown,
];

/// N minutes of churn at E events/s; exits 1 if HAProxy and Nomad differ at the end.
#[derive(Parser)]
#[command(name = "soak")]
struct Options {
    /// How long the churn runs.
    #[arg(long, default_value_t = 5.0, value_parser = not_negative)]
    minutes: f64,
    /// Simulator actions per second.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    events_per_sec: f64,
    /// Services at the start (the churn keeps between half and 1.5 times as many).
    #[arg(long, default_value_t = 30,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    services: usize,
    /// The seed of the churn: the same seed replays the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The connector's `drain_grace_ms`.
    #[arg(long, default_value_t = 2_000)]
    drain_ms: u64,
    /// The connector's `resync_interval_secs`.
    #[arg(long, default_value_t = 30)]
    resync_secs: u64,
    /// How long to wait for HAProxy to equal Nomad after the churn.
    #[arg(long, default_value_t = 120)]
    settle_secs: u64,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{text} is not a positive number")),
    }
}

fn not_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{text} is not a number of minutes")),
    }
}

/// One service (one job, group `g`) as the churn knows it.
struct Service {
    name: String,
    tcp: bool,
    version: u64,
    /// Live allocations: (ID, job version).
    allocs: Vec<(String, u64)>,
}

impl Service {
    /// The job spec of the current version: the check path and the weight
    /// tag change with every version.
    fn spec(&self) -> Value {
        let mut tags = vec![
            ON.to_string(),
            format!("haproxy.weight={}", 1 + self.version % 5),
        ];
        let check = if self.tcp {
            tags.push("haproxy.mode=tcp".into());
            json!({"Name": "alive", "Type": "tcp", "Interval": 5_000_000_000_i64, "Timeout": 1_000_000_000_i64})
        } else {
            json!({"Name": "health", "Type": "http", "Path": format!("/health/v{}", self.version),
                   "Interval": 5_000_000_000_i64, "Timeout": 1_000_000_000_i64})
        };
        json!({
            "ID": self.name, "Namespace": "default", "Type": "service",
            "Meta": {"rev": self.version.to_string()},
            "TaskGroups": [{"Name": "g",
                "Services": [{"Name": self.name, "PortLabel": "http", "Provider": "nomad",
                              "Tags": tags, "Checks": [check]}],
                "Tasks": [{"Name": "t"}]}]
        })
    }
}

/// The simulated cluster and what the churn does to it.
struct Churn {
    sim: Sim,
    rng: StdRng,
    services: Vec<Service>,
    created: usize,
    /// Jobs purged so far.
    purged: usize,
    /// Ports of the real backends instances run on (several instances
    /// share one, as they would share a host port in tests).
    ports: Vec<u16>,
    max_services: usize,
    events: u64,
}

const MAX_INSTANCES: usize = 6;

impl Churn {
    fn new_service(&mut self) {
        let name = format!("soak{}", self.created);
        self.created += 1;
        let mut service = Service {
            name,
            tcp: self.created.is_multiple_of(4),
            version: 0,
            allocs: Vec::new(),
        };
        let outcome = self.sim.register_job(service.spec());
        service.version = outcome.version;
        self.services.push(service);
        self.events += 1;
    }

    fn place(&mut self, i: usize) {
        let port = self.ports[self.rng.random_range(0..self.ports.len())];
        let s = &mut self.services[i];
        let alloc = self
            .sim
            .place_alloc(PlaceAlloc::new(&s.name, "g").port("http", port));
        s.allocs.push((alloc, s.version));
        self.events += 1;
    }

    /// Stops the oldest allocation of the oldest version (a rolling deploy).
    fn stop(&mut self, i: usize) {
        let how = STOPS[self.rng.random_range(0..STOPS.len())];
        let s = &mut self.services[i];
        let Some(oldest) = (0..s.allocs.len()).min_by_key(|&k| s.allocs[k].1) else {
            return;
        };
        let (alloc, _) = s.allocs.remove(oldest);
        self.sim.stop_alloc(&alloc, how);
        self.events += 1;
    }

    fn deploy(&mut self, i: usize) {
        let s = &mut self.services[i];
        s.version += 1;
        let outcome = self.sim.register_job(s.spec());
        s.version = outcome.version;
        self.events += 1;
    }

    fn purge(&mut self, i: usize) {
        let s = self.services.swap_remove(i);
        self.sim.deregister_job("default", &s.name, true);
        self.purged += 1;
        self.events += 1;
    }

    /// One event, chosen at random among what the cluster allows.
    fn step(&mut self) {
        let i = self.rng.random_range(0..self.services.len().max(1));
        let live = self.services.get(i).map_or(0, |s| s.allocs.len());
        match self.rng.random_range(0..100) {
            0..=3 if self.services.len() < self.max_services => {
                self.new_service();
                let last = self.services.len() - 1;
                self.place(last);
            }
            4..=7 if self.services.len() > self.max_services / 2 => self.purge(i),
            8..=19 => self.deploy(i),
            20..=59 if live < MAX_INSTANCES => self.place(i),
            _ if live > 1 => self.stop(i),
            _ => self.place(i),
        }
    }

    fn instances(&self) -> usize {
        self.services.iter().map(|s| s.allocs.len()).sum()
    }
}

/// The connector as a child process, with its config and log in HAProxy's temp dir.
struct Connector {
    child: Child,
    log: PathBuf,
    admin: SocketAddr,
}

impl Connector {
    fn start(sim: &Sim, haproxy: &Haproxy, o: &Options) -> Result<Connector, String> {
        let d = haproxy.dir.path();
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = haproxy.connector_toml(
            &format!("address = \"{}\"", sim.url()),
            &format!(
                r#"drain_grace_ms = {drain}
reload_delay_ms = 500
[daemon]
resync_interval_secs = {resync}
admin_listen = "{admin}"
[log]
level = "warn"
"#,
                drain = o.drain_ms,
                resync = o.resync_secs,
            ),
        );
        let path = d.join("connector.toml");
        std::fs::write(&path, config).map_err(|e| format!("writing the config: {e}"))?;
        let log = d.join("connector.log");
        let file = std::fs::File::create(&log).map_err(|e| format!("connector.log: {e}"))?;
        let binary = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("haproxy-nomad-connector");
        let child = hnc_tests::process::connector_command(&binary)
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: {e} (build it first: cargo build --release -p haproxy-nomad-connector)",
                    binary.display()
                )
            })?;
        Ok(Connector { child, log, admin })
    }

    fn rss_mb(&self) -> f64 {
        hnc_tests::process::rss_mb(self.child.id())
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn metrics(&self) -> String {
        http_get(self.admin, "/metrics")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        hnc_tests::process::stop_connector(&mut self.child);
    }
}

/// The master's reload and failed-reload counts (`show proc`), or `None`
/// while the master re-executes (its socket refuses then).
async fn reload_counts(haproxy: &Haproxy) -> Option<(u32, u32)> {
    let text = send(&haproxy.master_socket, "show proc").await.ok()?;
    let line = text.lines().find(|l| l.contains(" master "))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let n = |s: &str| s.trim_end_matches(']').parse::<u32>().ok();
    Some((n(f.get(2)?)?, n(f.get(4)?)?))
}

/// Servers HAProxy runs for the connector.
async fn haproxy_servers(haproxy: &Haproxy) -> usize {
    convergence::haproxy_view(haproxy)
        .await
        .map(|(view, _)| view.values().map(|s| s.len()).sum())
        .unwrap_or(0)
}

/// Polls until HAProxy equals Nomad for `stable` in a row, or `limit`
/// passes; returns the time taken and the last difference.
async fn quiesce(sim: &Sim, haproxy: &Haproxy, limit: Duration) -> (Duration, Vec<String>) {
    let started = Instant::now();
    let mut agreed_since: Option<Instant> = None;
    let stable = Duration::from_secs(2);
    loop {
        let diff = convergence::diff(sim, haproxy).await;
        if diff.is_empty() {
            let since = *agreed_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= stable {
                return (since.duration_since(started), diff);
            }
        } else {
            agreed_since = None;
            if started.elapsed() >= limit {
                return (started.elapsed(), diff);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(o: Options) -> Result<bool, String> {
    let sim = Sim::start(SimConfig::default())
        .await
        .map_err(|e| format!("simulator: {e}"))?;
    let haproxy = Haproxy::start("").await;
    let mut pool = Vec::new();
    for _ in 0..8 {
        pool.push(HttpBackend::start().await);
    }
    let mut churn = Churn {
        sim: sim.clone(),
        rng: StdRng::seed_from_u64(o.seed),
        services: Vec::new(),
        created: 0,
        purged: 0,
        ports: pool.iter().map(|b| b.port).collect(),
        max_services: o.services * 3 / 2,
        events: 0,
    };
    for i in 0..o.services {
        churn.new_service();
        churn.place(i);
        churn.place(i);
    }
    println!(
        "soak: {} min at {} events/s; {} services, {} instances; seed {}; drain {} ms, resync {} s",
        o.minutes,
        o.events_per_sec,
        churn.services.len(),
        churn.instances(),
        o.seed,
        o.drain_ms,
        o.resync_secs
    );
    let mut connector = Connector::start(&sim, &haproxy, &o)?;
    let started = Instant::now();
    let (took, diff) = quiesce(&sim, &haproxy, Duration::from_secs(120)).await;
    if !diff.is_empty() {
        return Err(format!(
            "the initial world did not converge in {took:?}:\n{}\n--- connector log ---\n{}",
            diff.join("\n"),
            connector.log_tail(40)
        ));
    }
    let rss_start = connector.rss_mb();
    println!(
        "initial world converged {:.1} s after the connector started; RSS {rss_start:.1} MB",
        took.as_secs_f64()
    );

    let churn_for = Duration::from_secs_f64(o.minutes * 60.0);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.events_per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut report = tokio::time::interval(Duration::from_secs(10));
    report.tick().await;
    let churn_start = Instant::now();
    let events_before = churn.events;
    let mut rss_max = rss_start;
    while churn_start.elapsed() < churn_for {
        tokio::select! {
            _ = tick.tick() => churn.step(),
            _ = report.tick() => {
                if !connector.alive() {
                    return Err(format!("the connector died:\n{}", connector.log_tail(40)));
                }
                let rss = connector.rss_mb();
                rss_max = rss_max.max(rss);
                let secs = churn_start.elapsed().as_secs_f64();
                let events = churn.events - events_before;
                let heap = connector.metrics().await;
                let heap_mb = |kind| metric(&heap, "hnc_heap_bytes", &[("kind", kind)]) / 1e6;
                let cached = |kind| metric(&heap, "hnc_job_spec_cached", &[("kind", kind)]);
                println!(
                    "[{secs:5.0} s] RSS {rss:6.1} MB (heap: allocated {:.1}, active {:.1}, resident {:.1}; cached: {} versions, {} jobs' allocations) | events {events} ({:.1}/s) | services {} (jobs made {}, purged {}) | instances {} | HAProxy servers {} | reloads {}",
                    heap_mb("allocated"),
                    heap_mb("active"),
                    heap_mb("resident"),
                    cached("job"),
                    cached("job_allocations"),
                    events as f64 / secs,
                    churn.services.len(),
                    churn.created,
                    churn.purged,
                    churn.instances(),
                    haproxy_servers(&haproxy).await,
                    reload_counts(&haproxy).await.map_or("?".into(), |(n, _)| n.to_string()),
                );
            }
        }
    }
    let events = churn.events - events_before;
    println!(
        "churn done: {events} events in {:.0} s; waiting for quiescence",
        churn_start.elapsed().as_secs_f64()
    );
    let (took, diff) = quiesce(&sim, &haproxy, Duration::from_secs(o.settle_secs)).await;
    let rss_end = connector.rss_mb();
    rss_max = rss_max.max(rss_end);
    let text = connector.metrics().await;
    let (reloads, failed) = reload_counts(&haproxy).await.unwrap_or_default();
    println!(
        "connector RSS: start {rss_start:.1} MB, end {rss_end:.1} MB, max {rss_max:.1} MB (ran {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "HAProxy: {} servers, {reloads} reloads ({failed} failed); connector: rejected renders {}, failed server changes {}, apply errors {}",
        haproxy_servers(&haproxy).await,
        metric(&text, "hnc_reloads_total", &[("reason", "rejected")]),
        metric(
            &text,
            "hnc_haproxy_server_changes_total",
            &[("result", "failed")]
        ),
        metric(
            &text,
            "hnc_apply_duration_seconds_count",
            &[("outcome", "error")]
        ),
    );
    if diff.is_empty() {
        println!(
            "final diff HAProxy vs Nomad ({} instances): empty (quiet {:.1} s after the churn)",
            churn.instances(),
            took.as_secs_f64()
        );
        Ok(true)
    } else {
        println!(
            "final diff HAProxy vs Nomad after {:.0} s ({} lines):\n{}\n--- connector log (last 40 lines) ---\n{}",
            took.as_secs_f64(),
            diff.len(),
            diff.join("\n"),
            connector.log_tail(40)
        );
        Ok(false)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = Options::parse();
    match run(options).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("soak failed: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
