//! The status page's data: what the reconcile loop publishes after each pass
//! ([`Publisher`]), joined at request time with HAProxy's live view, the
//! plugins' counters and Nomad's stream state ([`StatusSource`]).
//!
//! `/status.json` serves [`Status`] as it is; `/status` renders it as HTML
//! (`status_html.rs`); the loop's side is in `status_publish.rs`.

use super::status_live::{self, Live};
use super::status_publish::unix_now;
pub use super::status_publish::{Published, Publisher};
use crate::haproxy::socket::Socket;
use crate::mapping::Engine;
use crate::nomad::HealthWatch;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When this was assembled (Unix seconds).
    pub generated_at: u64,
    /// The service-name filter applied (`?service=`), if any.
    pub filter: Option<String>,
    /// Managed services in all (before the filter).
    pub services_total: usize,
    /// The services that match the filter, by namespace and name.
    pub services: Vec<ServiceView>,
    /// Each check type's plugin and its counters.
    pub plugins: Vec<PluginView>,
    /// The last reloads, newest first.
    pub reloads: Vec<ReloadView>,
    /// Nomad's event stream, per watched scope.
    pub nomad: Vec<NomadView>,
    /// Whether HAProxy answered `show stat` for this page, or why not.
    pub haproxy: HaproxyView,
}

/// One service and its instances.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// Namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
    /// Its HAProxy backend, when an instance is enabled.
    pub backend: Option<String>,
    /// Refused tags and other problems.
    pub problems: Vec<String>,
    /// Every instance, enabled or not.
    pub instances: Vec<InstanceView>,
}

/// One instance: what Nomad says, what the connector made of it, and what
/// HAProxy says about its server.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    /// Registration ID.
    pub id: String,
    /// Its HAProxy server name.
    pub server: String,
    /// `address:port`.
    pub address: String,
    /// `haproxy.enable=true`.
    pub enabled: bool,
    /// The job version its allocation runs, when the spec was read.
    pub job_version: Option<u64>,
    /// The job spec's check, summarised (`http GET /health every 10s`).
    pub check: Option<String>,
    /// The service's other checks, summarised alike: HAProxy runs them
    /// after the first, and the server is UP only when every one passes.
    pub other_checks: Vec<String>,
    /// Where the check came from: `job spec`, `tags` or `none`.
    pub origin: &'static str,
    /// The plugin that mapped it, `name@version`.
    pub plugin: Option<String>,
    /// The TCP fallback taken, and its cause.
    pub fallback: Option<FallbackView>,
    /// `haproxy.check.*` tags applied.
    pub check_tags: Vec<String>,
    /// The server's check arguments in HAProxy.
    pub server_args: String,
    /// HAProxy's live view of the server; `None` if it runs no such server.
    pub haproxy: Option<Live>,
}

/// A TCP fallback.
#[derive(Debug, Clone, Serialize)]
pub struct FallbackView {
    /// `no-check`, `unsupported-type`, a plugin error cause, `invalid-value`.
    pub cause: String,
    /// The explanation.
    pub reason: String,
}

/// A check type's plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginView {
    /// The check type it serves.
    pub check_type: String,
    /// `name@version`.
    pub plugin: String,
    /// `builtin:NAME` or a file path.
    pub origin: String,
    /// Calls since the engine was loaded.
    pub calls: u64,
    /// Failed calls (every cause).
    pub failures: u64,
    /// Calls stopped because they used up their fuel (or their time).
    pub fuel_exhausted: u64,
    /// The fuel its calls burned, on average (0 before the first call).
    pub fuel_mean: u64,
    /// The fuel each call may burn.
    pub fuel_per_call: u64,
}

/// One reload.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadView {
    /// When (Unix seconds).
    pub at: u64,
    /// Why: `backend-added`, `check-changed`...
    pub reasons: Vec<&'static str>,
}

/// One scope's event stream.
#[derive(Debug, Clone, Serialize)]
pub struct NomadView {
    /// `*` or a namespace.
    pub scope: String,
    /// Listed and streaming.
    pub connected: bool,
    /// The highest Raft index seen.
    pub last_index: u64,
    /// Seconds since the last frame or heartbeat.
    pub lag_seconds: Option<f64>,
    /// Full listings after the first (reconnects, restarts, index resets).
    pub relists: u64,
    /// Streams re-opened after the first.
    pub reconnects: u64,
    /// The last error, kept after recovery.
    pub last_error: Option<String>,
}

/// HAProxy's answer to this page.
#[derive(Debug, Clone, Serialize)]
pub struct HaproxyView {
    /// `show stat` answered.
    pub reachable: bool,
    /// Why not.
    pub error: Option<String>,
}

/// The handlers' side: assembles a [`Status`] on request.
#[derive(Clone)]
pub struct StatusSource {
    published: watch::Receiver<Arc<Published>>,
    engine: watch::Receiver<Arc<Engine>>,
    nomad: HealthWatch,
    stats_socket: Socket,
}

impl std::fmt::Debug for StatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSource")
            .field("stats_socket", &self.stats_socket)
            .finish_non_exhaustive()
    }
}

impl StatusSource {
    /// Reads what `published` and `engine` hold, Nomad's health, and asks
    /// HAProxy's `stats_socket` for its live view on each request.
    pub fn new(
        published: watch::Receiver<Arc<Published>>,
        engine: watch::Receiver<Arc<Engine>>,
        nomad: HealthWatch,
        stats_socket: &std::path::Path,
    ) -> StatusSource {
        StatusSource {
            published,
            engine,
            nomad,
            stats_socket: Socket::new(stats_socket, Duration::from_secs(5)),
        }
    }

    /// The status of the services whose name contains `filter` (ignoring case).
    pub async fn status(&self, filter: Option<&str>) -> Status {
        let published = self.published.borrow().clone();
        let needle = filter.map(str::to_lowercase).filter(|f| !f.is_empty());
        let mut services: Vec<ServiceView> = published
            .services
            .iter()
            .filter(|s| {
                needle
                    .as_ref()
                    .is_none_or(|n| s.name.to_lowercase().contains(n.as_str()))
            })
            .map(|s| ServiceView::clone(s))
            .collect();
        let (live, haproxy) = match self.stats_socket.send("show stat -1 4 -1").await {
            Ok(reply) => (
                status_live::parse(&reply),
                HaproxyView {
                    reachable: true,
                    error: None,
                },
            ),
            Err(e) => (
                BTreeMap::new(),
                HaproxyView {
                    reachable: false,
                    error: Some(e.to_string()),
                },
            ),
        };
        for service in &mut services {
            let Some(backend) = service.backend.clone() else {
                continue;
            };
            for instance in &mut service.instances {
                instance.haproxy = live
                    .get(&(backend.clone(), instance.server.clone()))
                    .cloned();
            }
        }
        Status {
            generated_at: unix_now(),
            filter: needle,
            services_total: published.services.len(),
            services,
            plugins: self.plugins(),
            reloads: published.reloads.iter().cloned().collect(),
            nomad: self.nomad(&published.lists),
            haproxy,
        }
    }

    fn plugins(&self) -> Vec<PluginView> {
        let engine = self.engine.borrow().clone();
        let stats = engine.stats();
        engine
            .plugins()
            .into_iter()
            .map(|(check_type, plugin)| {
                let label = plugin.label();
                let calls = stats.calls.get(label).copied().unwrap_or(0);
                let failed = |cause: Option<&str>| -> u64 {
                    stats
                        .errors
                        .iter()
                        .filter(|((p, c), _)| p == label && cause.is_none_or(|want| c == want))
                        .map(|(_, n)| n)
                        .sum()
                };
                PluginView {
                    check_type: check_type.to_string(),
                    plugin: label.to_string(),
                    origin: plugin.origin().to_string(),
                    calls,
                    fuel_mean: stats
                        .fuel
                        .get(label)
                        .map_or(0, |f| f.checked_div(calls).unwrap_or(0)),
                    failures: failed(None),
                    fuel_exhausted: failed(Some("timeout")),
                    fuel_per_call: plugin.limits().fuel,
                }
            })
            .collect()
    }

    fn nomad(&self, lists: &BTreeMap<String, u64>) -> Vec<NomadView> {
        self.nomad
            .scopes()
            .into_iter()
            .map(|(scope, h)| NomadView {
                relists: lists.get(&scope).copied().unwrap_or(0).saturating_sub(1),
                connected: h.connected,
                last_index: h.last_index,
                lag_seconds: h
                    .stream_lag()
                    .map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
                reconnects: h.reconnects,
                last_error: h.last_error,
                scope,
            })
            .collect()
    }
}
