//! A whole world for end-to-end tests: the Nomad simulator, a real HAProxy,
//! and the connector's daemon running in-process against both.

use crate::haproxy::Haproxy;
use haproxy_nomad_connector::config::{Config, DaemonConfig};
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
        let sim = Sim::start(SimConfig {
            heartbeat: Duration::from_millis(200),
            ..SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        World {
            sim,
            haproxy: Haproxy::start("").await,
            daemon: None,
        }
    }

    /// The connector's config for this world: short drains, resyncs and
    /// reload windows, no admin listener.
    pub fn config(&self) -> Config {
        let mut haproxy = self.haproxy.driver_config();
        haproxy.drain_grace_ms = 1_000;
        haproxy.reload_delay_ms = 100;
        haproxy.uri_map = Some(self.haproxy.dir.path().join("uris.map"));
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
        let task = tokio::spawn(daemon::run(config, None, rx));
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
