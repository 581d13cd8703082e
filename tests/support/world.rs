//! A whole world for end-to-end tests: the Nomad simulator, a real HAProxy,
//! and the connector's daemon running in-process against both.

use crate::haproxy::{Haproxy, Layout};
use haproxy_nomad_connector::config::{Config, DaemonConfig, Resolved};
use haproxy_nomad_connector::daemon::{self, Control};
use haproxy_nomad_connector::nomad;
use nomad_sim::{PlaceAlloc, Sim, SimConfig};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How often the test daemon resyncs: "within one resync period" below.
pub const RESYNC: Duration = Duration::from_secs(2);

/// A running daemon: its control channel and its task.
type Daemon = (mpsc::Sender<Control>, JoinHandle<Result<(), daemon::Error>>);

/// A config as the daemon and `snapshot` take it (resolved against this
/// process's environment).
pub fn resolved(config: Config) -> Resolved {
    Resolved::try_from(config).expect("a valid config")
}

/// The simulator, HAProxy, and (when started) the daemon.
pub struct World {
    /// The Nomad simulator.
    pub sim: Sim,
    /// The real HAProxy.
    pub haproxy: Haproxy,
    daemon: Option<Daemon>,
}

impl World {
    /// Starts the simulator (heartbeats every 200 ms) and HAProxy.
    pub async fn start() -> World {
        World::start_with(SimConfig::default(), Layout::default()).await
    }

    /// Starts the simulator with `sim` (heartbeats every 200 ms) and HAProxy
    /// with its files and sockets as `layout` says.
    pub async fn start_with(sim: SimConfig, layout: Layout) -> World {
        let sim = Sim::start(SimConfig {
            heartbeat: Duration::from_millis(200),
            ..sim
        })
        .await
        .expect("the simulator starts");
        World {
            sim,
            haproxy: Haproxy::start_with(layout, "").await,
            daemon: None,
        }
    }

    /// The connector's config for this world: short drains, resyncs and
    /// reload windows, no admin listener.
    pub fn config(&self) -> Config {
        let mut haproxy = self.haproxy.driver_config();
        haproxy.drain_grace_ms = 1_000;
        haproxy.reload_delay_ms = 100;
        haproxy.uri_map = Some(self.haproxy.uri_map.clone());
        Config {
            nomad: nomad::Config {
                address: Some(self.sim.url()),
                namespaces: Some(vec!["*".into()]),
                backoff_min: Duration::from_millis(20),
                backoff_max: Duration::from_millis(500),
                ..nomad::Config::default()
            },
            haproxy,
            mapping: Default::default(),
            daemon: DaemonConfig {
                resync_interval_secs: RESYNC.as_secs(),
                admin_listen: String::new(),
            },
            verdicts: Default::default(),
            log: Default::default(),
        }
    }

    /// Starts the daemon with [`World::config`].
    pub fn start_daemon(&mut self) {
        self.start_daemon_with(self.config());
    }

    /// Starts the daemon with a given config.
    pub fn start_daemon_with(&mut self, config: Config) {
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(daemon::run(resolved(config), None, rx));
        self.daemon = Some((tx, task));
    }

    /// Stops the daemon gracefully and waits for it.
    pub async fn stop_daemon(&mut self) {
        if let Some((tx, task)) = self.daemon.take() {
            let _ = tx.send(Control::Shutdown).await;
            let stopped = tokio::time::timeout(Duration::from_secs(30), task).await;
            let result = stopped.expect("the daemon stops").expect("the daemon task");
            result.expect("the daemon ran without error");
        }
    }

    /// Asks the daemon to stop; whether it stopped, without error, within `bound`.
    pub async fn stop_daemon_within(&mut self, bound: Duration) -> bool {
        let Some((tx, task)) = self.daemon.take() else {
            return true;
        };
        let _ = tx.send(Control::Shutdown).await;
        matches!(tokio::time::timeout(bound, task).await, Ok(Ok(Ok(()))))
    }

    /// Places an allocation of `job`/`group` on 127.0.0.1 with its ports.
    pub fn place(&self, job: &str, group: &str, ports: &[(&str, u16)]) -> String {
        let mut place = PlaceAlloc::new(job, group);
        for (label, port) in ports {
            place = place.port(label, *port);
        }
        self.sim.place_alloc(place)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((_, task)) = self.daemon.take() {
            task.abort();
        }
    }
}

/// A Nomad `http` check every 500 ms with a 1 s timeout.
pub fn http_check(path: &str) -> Value {
    json!({"Name": "health", "Type": "http", "Path": path,
           "Interval": 500_000_000_i64, "Timeout": 1_000_000_000_i64})
}

/// A Nomad `tcp` check every 500 ms.
pub fn tcp_check() -> Value {
    json!({"Name": "alive", "Type": "tcp", "Interval": 500_000_000_i64, "Timeout": 1_000_000_000_i64})
}

/// A job with one group `g` and one Nomad service on port label `http`.
pub fn job(id: &str, service: &str, tags: &[&str], check: Option<Value>) -> Value {
    json!({
        "ID": id, "Namespace": "default", "Type": "service",
        "TaskGroups": [{"Name": "g",
            "Services": [{"Name": service, "PortLabel": "http", "Provider": "nomad",
                          "Tags": tags, "Checks": check.map(|c| vec![c])}],
            "Tasks": [{"Name": "t"}]}]
    })
}

/// For fault tests: the daemon's admin listener, and HAProxy compared with
/// Nomad's truth ([`crate::convergence`]).
impl World {
    /// [`World::config`] with the admin listener (`/metrics`, `/readyz`) on a
    /// free loopback port.
    pub fn config_with_admin(&self) -> (Config, std::net::SocketAddr) {
        let mut config = self.config();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], crate::haproxy::free_port()));
        config.daemon.admin_listen = addr.to_string();
        (config, addr)
    }

    /// Whether the daemon runs (started, and its task has not ended).
    pub fn daemon_running(&self) -> bool {
        self.daemon
            .as_ref()
            .is_some_and(|(_, task)| !task.is_finished())
    }

    /// Every difference between HAProxy and Nomad's truth; empty when converged.
    pub async fn diff(&self) -> Vec<String> {
        crate::convergence::diff(&self.sim, &self.haproxy).await
    }

    /// Waits until HAProxy equals Nomad's truth ([`World::diff`] is empty)
    /// and returns the time since `since`; panics with the last difference
    /// after `timeout`. Never use it to assert a duration.
    pub async fn wait_converged(
        &self,
        what: &str,
        timeout: Duration,
        since: std::time::Instant,
    ) -> Duration {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let diff = self.diff().await;
            if diff.is_empty() {
                return since.elapsed();
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}: HAProxy still differs from Nomad:\n{}\n--- HAProxy's log ---\n{}",
                    diff.join("\n"),
                    self.haproxy.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The daemon's `/readyz`: whether it answers 200, and its text.
pub async fn readyz(admin: std::net::SocketAddr) -> (bool, String) {
    match crate::load::http_get(admin, "/readyz").await {
        Ok((code, body)) => (code == 200, body),
        Err(e) => (false, format!("admin listener unreachable: {e}")),
    }
}

/// The daemon's `/metrics` (the classic text format); empty if unreachable.
pub async fn metrics(admin: std::net::SocketAddr) -> String {
    crate::load::http_get(admin, "/metrics")
        .await
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// The sum of the samples of metric `name` whose labels include every
/// pair of `labels` (Prometheus text format).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let rest = rest.strip_suffix('}')?;
            let matches = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        // An empty float sum is -0.0: print 0.
        .sum::<f64>()
        + 0.0
}
