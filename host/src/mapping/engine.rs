//! The mapping engine: check type → plugin, tags, fallbacks, validation, counters.
//!
//! [`Engine::map`] never fails: whatever goes wrong (no check, an unsupported
//! type, a plugin that traps or refuses, a value HAProxy must not see) ends
//! in a TCP check for that one service, a warning that names the service,
//! the plugin and the cause (once per cause), and a counter.

use super::config::{Config, ConfigError, Source};
use super::error::{CallError, LoadError};
use super::plugin::Plugin;
use super::stats::{Snapshot, Stats};
use super::tags::CheckTags;
use super::{builtin, sample, wasm};
use crate::haproxy::check::{RenderContext, RenderedCheck, render};
use hnc_core::builtin::tcp;
use hnc_core::model::{CheckPlan, NomadCheck, ServiceContext, Settings};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
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

/// Where the check that was mapped came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOrigin {
    /// The job specification.
    JobSpec,
    /// `haproxy.check.type` declared it.
    Tags,
    /// Neither: the ADR's plain TCP check.
    None,
}

/// The TCP fallback taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// `no-check`, `unsupported-type`, a [`CallError::cause`], or `invalid-value`.
    pub cause: &'static str,
    /// The explanation logged.
    pub reason: String,
}

/// The outcome of mapping one service's check.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The final typed check (after tags and any fallback).
    pub plan: CheckPlan,
    /// The same as validated HAProxy syntax.
    pub rendered: RenderedCheck,
    /// The plugin that was asked (`name@version`), if any.
    pub plugin: Option<String>,
    /// Where the check came from.
    pub origin: CheckOrigin,
    /// Set when the result is a TCP fallback.
    pub fallback: Option<Fallback>,
    /// The `haproxy.check.*` tags applied.
    pub tags: Vec<String>,
    /// Notes and warnings for `map` and `explain`.
    pub notes: Vec<String>,
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
}

impl Engine {
    /// Loads every configured plugin (each source once) and checks its settings.
    ///
    /// # Errors
    /// A bad config value, a plugin that cannot load, or settings a plugin refuses.
    pub fn new(config: &Config, render: RenderContext) -> Result<Engine, Error> {
        let engine = wasm::new_engine().map_err(|e| Error::Wasm(format!("{e:#}")))?;
        let mut loaded: BTreeMap<Source, Arc<Plugin>> = BTreeMap::new();
        let mut routes = HashMap::new();
        for (check_type, source) in config.routes()? {
            let plugin = match loaded.get(&source) {
                Some(plugin) => plugin.clone(),
                None => {
                    let plugin = Arc::new(load(&engine, &source, config)?);
                    loaded.insert(source.clone(), plugin.clone());
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
            trial(&plugin, &check_type, &settings)?;
            routes.insert(check_type, Route { plugin, settings });
        }
        Ok(Engine {
            routes,
            render,
            stats: Stats::default(),
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// The plugin serving each check type.
    pub fn plugins(&self) -> BTreeMap<&str, &Plugin> {
        self.routes
            .iter()
            .map(|(t, r)| (t.as_str(), &*r.plugin))
            .collect()
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
        self.stats.call(&label);
        match route.plugin.call(service, &check, &route.settings) {
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
        let clamped = crate::haproxy::timers::clamp(&mut mapped.plan);
        if !clamped.is_empty() {
            let note = format!(
                "{} above HAProxy's limit: clamped to {} ms (~24.8 days)",
                clamped.join(", "),
                crate::haproxy::timers::MAX_TIMER_MS
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

    fn plugin_failed(&self, service: &ServiceContext, label: &str, error: &CallError) {
        self.stats.error(label, error.cause());
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
        let mut key = DefaultHasher::new();
        (&service.namespace, &service.name, plugin, cause, message).hash(&mut key);
        let first = self.warned.lock().is_ok_and(|mut seen| {
            if seen.len() > 10_000 {
                seen.clear();
            }
            seen.insert(key.finish())
        });
        if first {
            tracing::warn!(
                service = %format_args!("{}/{}", service.namespace, service.name),
                job = %service.job,
                plugin = plugin.unwrap_or("-"),
                cause,
                "{message}"
            );
        }
    }
}

/// The ADR's TCP check, keeping the timing of `check` when there is one.
fn tcp_plan(service: &ServiceContext, check: Option<&NomadCheck>) -> CheckPlan {
    check
        .and_then(|c| tcp::map(service, c, &Vec::new()).ok())
        .unwrap_or_else(CheckPlan::tcp_fallback)
}

/// Loads one plugin from its source.
fn load(engine: &wasmtime::Engine, source: &Source, config: &Config) -> Result<Plugin, LoadError> {
    let origin = source.origin();
    if let Source::Builtin(name) = source
        && let Some(component) = builtin::precompiled(engine, name)
    {
        return Plugin::load(engine, &component, &origin, config.limits);
    }
    let bytes: std::borrow::Cow<'_, [u8]> = match source {
        Source::Builtin(name) => builtin::BUILTINS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| (*b).into())
            .ok_or_else(|| LoadError::CompileFailed {
                plugin: origin.clone(),
                message: "no such built-in".into(),
            })?,
        Source::File(path) => std::fs::read(path)
            .map_err(|source| LoadError::ReadFailed {
                path: path.clone(),
                source,
            })?
            .into(),
    };
    load_bytes(engine, &bytes, &origin, config)
}

/// Compiles (through the cache) and validates a component.
///
/// # Errors
/// Any [`LoadError`].
pub fn load_bytes(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    origin: &str,
    config: &Config,
) -> Result<Plugin, LoadError> {
    if wasmparser_is_core_module(bytes) {
        return Err(LoadError::CompileFailed {
            plugin: origin.into(),
            message: "this is a core wasm module, not a component; encode it with \
                      `hnc-plugin-build` (docs/plugin-guide.md)"
                .into(),
        });
    }
    let component = wasm::compile(engine, bytes, config.cache_dir.as_deref()).map_err(|e| {
        LoadError::CompileFailed {
            plugin: origin.into(),
            message: format!("{e:#}"),
        }
    })?;
    Plugin::load(engine, &component, origin, config.limits)
}

/// A core module starts `\0asm` version 1; a component has layer 1 in bytes 6..8.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Maps a canonical check of `check_type` so that bad settings fail at start.
fn trial(plugin: &Plugin, check_type: &str, settings: &Settings) -> Result<(), Error> {
    let (service, check) = (sample::service(), sample::check(check_type));
    plugin
        .call(&service, &check, settings)
        .map(drop)
        .map_err(|e| Error::SettingsRejected {
            check_type: check_type.into(),
            plugin: plugin.label().into(),
            cause: e.to_string(),
        })
}
