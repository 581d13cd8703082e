//! The mapping engine: check type → plugin, tags, fallbacks, validation, counters.
//!
//! [`Engine::map`] never fails: whatever goes wrong (no check, an unsupported
//! type, a plugin that traps or refuses, a value HAProxy must not see) ends
//! in a TCP check for that one service, a warning that names the service,
//! the plugin and the cause (once per cause), and a counter.

use super::config::{Config, ConfigError, Source};
use super::error::{CallError, LoadError};
use super::failures::Failures;
use super::limits::Limits;
use super::plugin::Plugin;
use super::stats::{Snapshot, Stats};
use super::tags::CheckTags;
use super::{load, wasm};
use crate::plan::{CheckMapper, CheckOrigin, Fallback, Mapped};
use crate::vocab::check::{RenderContext, RenderedCheck, Step, render, render_steps};
use hnc_core::builtin::tcp;
use hnc_core::model::{BackendCheck, CheckPlan, NomadCheck, ServiceContext, Settings};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `[mapping]` value is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A plugin cannot be used.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A plugin refuses its configured settings.
    #[error(
        "mapping.settings.{check_type}: plugin {plugin} refuses a sample {check_type} check with these settings: {cause}"
    )]
    SettingsRejected {
        /// The check type.
        check_type: String,
        /// The plugin label.
        plugin: String,
        /// The plugin's answer.
        cause: String,
    },
    /// wasmtime could not start.
    #[error("wasm engine: {0}")]
    Wasm(String),
}

struct Route {
    plugin: Arc<Plugin>,
    settings: Settings,
}

/// The mapping engine. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    routes: HashMap<String, Route>,
    render: RenderContext,
    stats: Stats,
    warned: Mutex<HashSet<u64>>,
    failures: Failures,
    interrupted: AtomicBool,
}

impl Engine {
    /// Loads every configured plugin (each source once) and checks its settings.
    ///
    /// # Errors
    /// A bad config value, a plugin that cannot load, or settings a plugin refuses.
    pub fn new(config: &Config, render: RenderContext) -> Result<Engine, Error> {
        let engine = wasm::new_engine().map_err(|e| Error::Wasm(format!("{e:#}")))?;
        let mut components = BTreeMap::new();
        let mut loaded: BTreeMap<(Source, Limits), Arc<Plugin>> = BTreeMap::new();
        let mut routes = HashMap::new();
        for (check_type, source) in config.routes()? {
            let limits = config.limits_for(&check_type)?;
            let plugin = match loaded.get(&(source.clone(), limits)) {
                Some(plugin) => plugin.clone(),
                None => {
                    if !components.contains_key(&source) {
                        let component =
                            load::component(&engine, &source, config.cache_dir.as_deref())?;
                        components.insert(source.clone(), component);
                    }
                    let component = &components[&source];
                    let plugin =
                        Arc::new(Plugin::load(&engine, component, &source.origin(), limits)?);
                    loaded.insert((source.clone(), limits), plugin.clone());
                    plugin
                }
            };
            if !plugin.info().check_types.contains(&check_type) {
                tracing::warn!(
                    check_type,
                    plugin = plugin.label(),
                    declared = ?plugin.info().check_types,
                    "plugin serves a check type it does not declare"
                );
            }
            let settings = config.settings_for(&check_type)?;
            load::trial(&plugin, &check_type, &settings, &render)?;
            routes.insert(check_type, Route { plugin, settings });
        }
        Ok(Engine {
            routes,
            render,
            stats: Stats::default(),
            warned: Mutex::new(HashSet::new()),
            failures: Failures::default(),
            interrupted: AtomicBool::new(false),
        })
    }

    /// Makes every plugin call, running or future, end at once (in a TCP
    /// fallback): the connector is stopping.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        for route in self.routes.values() {
            route.plugin.interrupt();
        }
    }

    /// The plugin serving each check type.
    pub fn plugins(&self) -> BTreeMap<&str, &Plugin> {
        self.routes
            .iter()
            .map(|(t, r)| (t.as_str(), &*r.plugin))
            .collect()
    }

    /// Whether [`Engine::interrupt`] was called: its results since are
    /// fallbacks that must not reach HAProxy.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// The settings a check type's plugin is called with (none for a type
    /// no plugin serves).
    pub fn settings(&self, check_type: &str) -> &Settings {
        static NONE: Settings = Vec::new();
        self.routes.get(check_type).map_or(&NONE, |r| &r.settings)
    }

    /// The counters.
    pub fn stats(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// Maps one service instance's check (from its job spec, if any) to HAProxy.
    pub fn map(&self, service: &ServiceContext, job_check: Option<&NomadCheck>) -> Mapped {
        let tags = CheckTags::parse(&service.tags);
        for problem in &tags.problems {
            self.warn_once(service, None, "invalid-tag", problem);
        }
        let origin = match (job_check, &tags.check_type) {
            (Some(_), _) => CheckOrigin::JobSpec,
            (None, Some(_)) => CheckOrigin::Tags,
            (None, None) => CheckOrigin::None,
        };
        let mut mapped = Mapped {
            plan: CheckPlan::tcp_fallback(),
            rendered: RenderedCheck::default(),
            plugin: None,
            origin,
            fallback: None,
            tags: tags.applied.clone(),
            notes: tags.problems.clone(),
        };
        let Some(check) = tags.apply_to_input(job_check.cloned()) else {
            mapped.fallback = Some(Fallback {
                cause: "no-check",
                reason: "no check in the job spec or tags: plain TCP check".into(),
            });
            self.stats.fallback("no-check");
            return self.finish(service, mapped, &tags, None, true);
        };
        let check_type = check.check_type.to_ascii_lowercase();
        let Some(route) = self.routes.get(&check_type) else {
            let reason = format!("unsupported check type '{check_type}': TCP check instead");
            self.warn_once(service, None, "unsupported-type", &reason);
            self.stats.fallback("unsupported-type");
            mapped.fallback = Some(Fallback {
                cause: "unsupported-type",
                reason,
            });
            return self.finish(service, mapped, &tags, Some(&check), true);
        };
        let label = route.plugin.label().to_string();
        mapped.plugin = Some(label.clone());
        match self.call(route, service, &check) {
            Ok(plan) => {
                for warning in &plan.warnings {
                    self.warn_once(service, Some(&label), "plugin-warning", warning);
                }
                mapped.notes.extend(plan.notes.iter().cloned());
                mapped.notes.extend(plan.warnings.iter().cloned());
                mapped.plan = plan;
                self.finish(service, mapped, &tags, Some(&check), false)
            }
            Err(error) => {
                self.plugin_failed(service, &label, &error);
                mapped.fallback = Some(Fallback {
                    cause: error.cause(),
                    reason: format!("plugin {label} {error}: TCP check instead"),
                });
                self.finish(service, mapped, &tags, Some(&check), true)
            }
        }
    }

    /// Maps every check of a service instance: Nomad's AND. One plugin call
    /// per check (the plugin interface is the same as for one check); the
    /// results run as one HAProxy rule sequence, so the server is UP only
    /// when every check passes. The first check is the one `haproxy.check.*`
    /// tags apply to. Timing: the shortest interval, the longest timeout,
    /// the largest rise and the smallest fall of the checks.
    ///
    /// When a check cannot be one step of the sequence (it fell back to
    /// TCP, or its mapping has rules of its own), the whole service gets a
    /// TCP check of every port its checks use, logged with the cause.
    /// Without a URI map (the servers' own URIs and ports), only the first
    /// check is mapped, with a note.
    pub fn map_all(&self, service: &ServiceContext, checks: &[NomadCheck]) -> Mapped {
        let Some((first, rest)) = checks.split_first() else {
            return self.map(service, None);
        };
        let primary = self.map(service, Some(first));
        if rest.is_empty() || !primary.plan.server.enabled {
            return primary;
        }
        let names = || {
            checks
                .iter()
                .map(|c| format!("{:?} ({})", c.name, c.check_type))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.render.uri_map.is_none() {
            let mut primary = primary;
            let note = format!(
                "only the first of the checks {} is mapped: several checks need haproxy.uri_map",
                names()
            );
            self.warn_once(service, primary.plugin.as_deref(), "several-checks", &note);
            primary.notes.push(note);
            return primary;
        }
        // `haproxy.check.*` tags belong to the first check only.
        let untagged = ServiceContext {
            tags: service
                .tags
                .iter()
                .filter(|t| !t.starts_with("haproxy.check."))
                .cloned()
                .collect(),
            ..service.clone()
        };
        let others: Vec<Mapped> = rest.iter().map(|c| self.map(&untagged, Some(c))).collect();
        let all: Vec<(&Mapped, &NomadCheck)> = std::iter::once((&primary, first))
            .chain(others.iter().zip(rest))
            .collect();
        let steps: Result<Vec<Step>, (String, &'static str)> =
            all.iter().map(|(m, c)| step(service, m, c)).collect();
        let tags = CheckTags::parse(&service.tags);
        let mut plan = merged(all.iter().map(|(m, _)| &m.plan), &primary.plan);
        tags.apply_to_output(&mut plan);
        let mut mapped = Mapped {
            plan,
            plugin: primary.plugin.clone(),
            fallback: None,
            ..primary.clone()
        };
        for (m, _) in &all[1..] {
            for note in &m.notes {
                if !mapped.notes.contains(note) {
                    mapped.notes.push(note.clone());
                }
            }
        }
        let failed = match steps {
            Ok(steps) => match render_steps(&mapped.plan, &steps, &self.render) {
                Ok(rendered) => {
                    mapped.rendered = rendered;
                    mapped.notes.push(format!(
                        "checks {} run in one sequence: the server is UP only when every one passes",
                        names()
                    ));
                    let intervals: BTreeSet<u64> = checks.iter().map(|c| c.interval_ms).collect();
                    if intervals.len() > 1 {
                        mapped.notes.push(format!(
                            "the checks' intervals differ ({} ms): HAProxy runs them all every {} ms, the shortest",
                            intervals.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                            mapped.plan.server.inter_ms.unwrap_or_default()
                        ));
                    }
                    return mapped;
                }
                Err(invalid) => (format!("invalid value: {invalid}"), "invalid-value"),
            },
            Err(cause) => cause,
        };
        // One check cannot join the sequence: a TCP check of every port.
        let reason = format!(
            "several checks, one not mappable ({}): TCP check of every port the checks use",
            failed.0
        );
        self.warn_once(
            service,
            primary.plugin.as_deref(),
            "several-checks",
            &reason,
        );
        self.stats.fallback("several-checks");
        let mut plan = tcp_plan(service, tags.apply_to_input(Some(first.clone())).as_ref());
        tags.apply_to_output(&mut plan);
        plan.server.inter_ms = mapped.plan.server.inter_ms;
        let ports = check_ports(service, all.iter().map(|(m, c)| (m.plan.server.port, *c)));
        mapped.rendered = self.tcp_of_ports(service, &plan, &ports);
        mapped.plan = plan;
        mapped.fallback = Some(Fallback {
            cause: failed.1,
            reason,
        });
        mapped
    }

    /// Applies the output tags, renders, and falls back once more if a
    /// value is invalid. With `fallback` set, the plan is replaced by the TCP
    /// fallback built from `check`'s timing.
    fn finish(
        &self,
        service: &ServiceContext,
        mut mapped: Mapped,
        tags: &CheckTags,
        check: Option<&NomadCheck>,
        fallback: bool,
    ) -> Mapped {
        if fallback {
            mapped.plan = tcp_plan(service, check);
        }
        mapped.notes.extend(tags.apply_to_output(&mut mapped.plan));
        let clamped = crate::vocab::timers::clamp(&mut mapped.plan);
        if !clamped.is_empty() {
            let note = format!(
                "{} above HAProxy's limit: clamped to {} ms (~24.8 days)",
                clamped.join(", "),
                crate::vocab::timers::MAX_TIMER_MS
            );
            self.warn_once(service, mapped.plugin.as_deref(), "clamped-timer", &note);
            mapped.notes.push(note);
        }
        match render(&mapped.plan, &self.render) {
            Ok(rendered) => mapped.rendered = rendered,
            Err(invalid) => {
                let plugin = mapped.plugin.as_deref().unwrap_or("tags");
                let reason = format!("invalid value from {plugin}: {invalid}: TCP check instead");
                self.warn_once(service, mapped.plugin.as_deref(), "invalid-value", &reason);
                self.stats.fallback("invalid-value");
                let mut plan = tcp_plan(service, check);
                tags.apply_to_output(&mut plan);
                mapped.rendered = render(&plan, &self.render).unwrap_or_else(|_| {
                    plan = CheckPlan::tcp_fallback();
                    render(&plan, &self.render).unwrap_or_default()
                });
                mapped.plan = plan;
                mapped.fallback = Some(Fallback {
                    cause: "invalid-value",
                    reason,
                });
            }
        }
        mapped
    }

    /// A plugin call, or the error the same input gave within the failure TTL.
    fn call(
        &self,
        route: &Route,
        service: &ServiceContext,
        check: &NomadCheck,
    ) -> Result<CheckPlan, CallError> {
        let label = route.plugin.label();
        let key = self.failures.key(label, service, check, &route.settings);
        let now = std::time::Instant::now();
        if let Some(error) = self.failures.get(key, now) {
            return Err(error);
        }
        let (result, fuel) = route.plugin.call_metered(service, check, &route.settings);
        self.stats.call(label, fuel);
        if let Err(error) = &result {
            self.stats.error(label, error.cause());
            if !route.plugin.interrupted() {
                self.failures.put(key, error.clone(), now);
            }
        }
        result
    }

    /// A TCP check of each of `ports` in one sequence (a plain `check`
    /// when there is one port).
    fn tcp_of_ports(
        &self,
        service: &ServiceContext,
        plan: &CheckPlan,
        ports: &[u16],
    ) -> RenderedCheck {
        if ports.len() < 2 {
            return render(plan, &self.render).unwrap_or_default();
        }
        let steps: Vec<Step> = ports
            .iter()
            .map(|&port| Step {
                http: None,
                port,
                host: host_value(&service.address, port),
                ssl: false,
                sni: None,
                alpn: None,
                proto: None,
            })
            .collect();
        render_steps(plan, &steps, &self.render).unwrap_or_default()
    }

    /// The same service's checks as a TCP check, because HAProxy refused
    /// what `mapped` rendered: `reason` names the plugin, the field and the
    /// value. With several checks on different ports (and a URI map), every
    /// port is checked, as when one of them cannot be mapped. Logged once,
    /// counted as an `haproxy-refused` fallback.
    pub fn refused_by_haproxy(
        &self,
        service: &ServiceContext,
        checks: &[NomadCheck],
        mapped: &Mapped,
        reason: String,
    ) -> Mapped {
        let check = checks.first();
        self.log_once(
            true,
            service,
            mapped.plugin.as_deref(),
            "haproxy-refused",
            &reason,
        );
        self.stats.fallback("haproxy-refused");
        let tags = CheckTags::parse(&service.tags);
        let check = tags.apply_to_input(check.cloned());
        let mut refused = Mapped {
            plan: CheckPlan::tcp_fallback(),
            rendered: RenderedCheck::default(),
            fallback: None,
            ..mapped.clone()
        };
        refused.notes.push(reason.clone());
        let mut refused = self.finish(service, refused, &tags, check.as_ref(), true);
        if checks.len() > 1 && self.render.uri_map.is_some() {
            // The first check's port may come from `haproxy.check.port`.
            let tagged = std::iter::once(refused.plan.server.port).chain(std::iter::repeat(None));
            let ports = check_ports(service, tagged.zip(checks));
            refused.plan.server.inter_ms = mapped.plan.server.inter_ms;
            refused.rendered = self.tcp_of_ports(service, &refused.plan, &ports);
        }
        refused.fallback = Some(Fallback {
            cause: "haproxy-refused",
            reason,
        });
        refused
    }

    fn plugin_failed(&self, service: &ServiceContext, label: &str, error: &CallError) {
        self.stats.fallback(error.cause());
        let reason = format!("plugin {label} {error}: TCP check instead");
        self.warn_once(service, Some(label), error.cause(), &reason);
    }

    /// Logs a warning once per (service, plugin, cause, message).
    fn warn_once(
        &self,
        service: &ServiceContext,
        plugin: Option<&str>,
        cause: &str,
        message: &str,
    ) {
        self.log_once(false, service, plugin, cause, message);
    }

    /// Logs a warning (or an error) once per (service, plugin, cause, message).
    fn log_once(
        &self,
        error: bool,
        service: &ServiceContext,
        plugin: Option<&str>,
        cause: &str,
        message: &str,
    ) {
        let mut key = DefaultHasher::new();
        (&service.namespace, &service.name, plugin, cause, message).hash(&mut key);
        let first = self.warned.lock().is_ok_and(|mut seen| {
            if seen.len() > 10_000 {
                seen.clear();
            }
            seen.insert(key.finish())
        });
        if !first {
            return;
        }
        let service_name = format!("{}/{}", service.namespace, service.name);
        let plugin = plugin.unwrap_or("-");
        if error {
            tracing::error!(service = %service_name, job = %service.job, plugin, cause, "{message}");
        } else {
            tracing::warn!(service = %service_name, job = %service.job, plugin, cause, "{message}");
        }
    }
}

/// One mapped check as a step of a sequence, or why it cannot be one
/// (with the fallback cause).
fn step<'a>(
    service: &ServiceContext,
    mapped: &'a Mapped,
    check: &NomadCheck,
) -> Result<Step<'a>, (String, &'static str)> {
    if let Some(f) = &mapped.fallback {
        return Err((format!("check {:?}: {}", check.name, f.reason), f.cause));
    }
    let server = &mapped.plan.server;
    let refuse = |what: &str| {
        Err((
            format!(
                "check {:?}: {what} cannot be one step of a sequence",
                check.name
            ),
            "several-checks",
        ))
    };
    if !server.enabled {
        return refuse("a disabled check");
    }
    if server.agent.is_some() || server.addr.is_some() {
        return refuse("an agent check or a check address");
    }
    let http = match &mapped.plan.backend {
        BackendCheck::Tcp => None,
        BackendCheck::Http(h) => Some(h),
        BackendCheck::TcpCheck(_) => return refuse("its tcp-check rules"),
    };
    let port = server.port.unwrap_or(service.port);
    Ok(Step {
        http,
        port,
        host: host_value(&service.address, port),
        ssl: server.ssl,
        sni: server.sni.as_deref(),
        alpn: server.alpn.as_deref(),
        proto: server.proto.as_deref(),
    })
}

/// `address:port` as Go's client names it in `Host` (brackets around IPv6).
fn host_value(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The timing of several checks run as one: the shortest interval, the
/// longest timeout, the largest rise and the smallest fall; the rest from
/// `first`.
fn merged<'a>(plans: impl Iterator<Item = &'a CheckPlan>, first: &CheckPlan) -> CheckPlan {
    fn pick(a: Option<u32>, b: Option<u32>, f: fn(u32, u32) -> u32) -> Option<u32> {
        match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        }
    }
    let mut out = first.clone();
    for p in plans {
        let (s, o) = (&p.server, &mut out.server);
        o.inter_ms = pick(o.inter_ms, s.inter_ms, u32::min);
        o.fastinter_ms = pick(o.fastinter_ms, s.fastinter_ms, u32::min);
        o.downinter_ms = pick(o.downinter_ms, s.downinter_ms, u32::min);
        o.rise = pick(o.rise, s.rise, u32::max);
        o.fall = pick(o.fall, s.fall, u32::min);
        out.timeout_check_ms = pick(out.timeout_check_ms, p.timeout_check_ms, u32::max);
    }
    out
}

/// The distinct ports a service's checks use, in order: each check's
/// mapped port, else its own `check_port`, else the service's port.
fn check_ports<'a>(
    service: &ServiceContext,
    checks: impl IntoIterator<Item = (Option<u16>, &'a NomadCheck)>,
) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    for (mapped, check) in checks {
        let port = mapped.or(check.check_port).unwrap_or(service.port);
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// The ADR's TCP check, keeping the timing of `check` when there is one.
fn tcp_plan(service: &ServiceContext, check: Option<&NomadCheck>) -> CheckPlan {
    check
        .and_then(|c| tcp::map(service, c, &Vec::new()).ok())
        .unwrap_or_else(CheckPlan::tcp_fallback)
}

/// The engine is the planner's check mapper in production.
impl CheckMapper for Engine {
    fn map(&self, service: &ServiceContext, check: Option<&NomadCheck>) -> Arc<Mapped> {
        Arc::new(Engine::map(self, service, check))
    }

    fn map_checks(&self, service: &ServiceContext, checks: &[NomadCheck]) -> Arc<Mapped> {
        Arc::new(Engine::map_all(self, service, checks))
    }
}

#[cfg(test)]
#[path = "several_tests.rs"]
mod several_tests;
