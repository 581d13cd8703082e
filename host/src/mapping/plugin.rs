//! One loaded plugin: its `InstancePre`, a pool of warm instances, and bounded calls.

use super::bindings::{self, Mapper, MapperPre};
use super::error::{CallError, LoadError};
use super::host::{self, HostState, MAX_MESSAGE, Switches};
use super::imports::check_imports;
use super::limits::{Limits, MemoryCapExceeded};
use crate::escape::sanitize;
use hnc_core::model::{CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, Linker};
use wasmtime::{Store, Trap};

/// Where a wasmtime error happened.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Instantiate,
    Call,
}

/// A warm instance with its store.
struct Warm {
    store: Store<HostState>,
    mapper: Mapper,
}

/// A loaded, validated plugin. Cheap to share; calls may run concurrently.
pub struct Plugin {
    origin: String,
    info: PluginInfo,
    label: Arc<str>,
    pre: MapperPre<HostState>,
    limits: Limits,
    pool: Mutex<Vec<Warm>>,
    switches: Arc<Switches>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("origin", &self.origin)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Validates a compiled component and prepares its instantiation.
    ///
    /// `origin` names where it came from (`builtin:http`, a path) in errors.
    ///
    /// # Errors
    /// A forbidden import (WASI...), another WIT major version, a missing
    /// export, or an `info()` that fails.
    pub fn load(
        engine: &wasmtime::Engine,
        component: &Component,
        origin: &str,
        limits: Limits,
    ) -> Result<Plugin, LoadError> {
        check_imports(
            component
                .component_type()
                .imports(engine)
                .map(|(name, _)| name),
            origin,
        )?;
        let mut linker = Linker::<HostState>::new(engine);
        let link = |e: wasmtime::Error| LoadError::LinkFailed {
            plugin: origin.into(),
            message: format!("{e:#}"),
        };
        host::add_to_linker(&mut linker).map_err(link)?;
        let pre = MapperPre::new(linker.instantiate_pre(component).map_err(link)?).map_err(link)?;
        let mut plugin = Plugin {
            origin: origin.into(),
            info: PluginInfo::default(),
            label: Arc::from(origin),
            pre,
            limits,
            pool: Mutex::new(Vec::new()),
            switches: Arc::default(),
        };
        plugin.info = plugin.call_info()?;
        plugin.label = Arc::from(format!("{}@{}", plugin.info.name, plugin.info.version));
        Ok(plugin)
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// `name@version`, as logs and metrics name the plugin.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where the plugin came from (`builtin:http` or a path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Makes every running and future call trap at once: the connector is
    /// stopping and must not wait for a plugin.
    pub fn interrupt(&self) {
        self.switches.interrupted.store(true, Ordering::Relaxed);
    }

    /// Whether [`Plugin::interrupt`] was called.
    pub fn interrupted(&self) -> bool {
        self.switches.interrupted.load(Ordering::Relaxed)
    }

    /// Drops (or keeps again) the plugin's `log` calls; they still cost fuel.
    pub fn mute(&self, muted: bool) {
        self.switches.muted.store(muted, Ordering::Relaxed);
    }

    /// Maps one check within the limits.
    ///
    /// # Errors
    /// A [`CallError`]; the instance that failed is discarded, so the next
    /// call starts clean.
    pub fn call(
        &self,
        service: &ServiceContext,
        check: &NomadCheck,
        settings: &Settings,
    ) -> Result<CheckPlan, CallError> {
        let mut warm = self.check_out()?;
        let called = self.call_warm(&mut warm, service, check, settings);
        self.check_in(warm, called)
    }

    /// As [`Plugin::call`], with the fuel the call burned (the whole
    /// budget when it ran out; instantiating a new instance not included).
    pub fn call_metered(
        &self,
        service: &ServiceContext,
        check: &NomadCheck,
        settings: &Settings,
    ) -> (Result<CheckPlan, CallError>, u64) {
        let mut warm = match self.check_out() {
            Ok(warm) => warm,
            Err(e) => return (Err(e), 0),
        };
        let called = self.call_warm(&mut warm, service, check, settings);
        let burned = self
            .limits
            .fuel
            .saturating_sub(warm.store.get_fuel().unwrap_or(0));
        (self.check_in(warm, called), burned)
    }

    /// A warm instance from the pool, or a new one.
    fn check_out(&self) -> Result<Warm, CallError> {
        match self.pool.lock().ok().and_then(|mut p| p.pop()) {
            Some(warm) => Ok(warm),
            None => self.instantiate(),
        }
    }

    /// Puts the instance back in the pool if the plugin answered (a plan, or
    /// an answer the host refuses); one that failed is dropped.
    fn check_in(
        &self,
        warm: Warm,
        called: Result<Result<CheckPlan, CallError>, CallError>,
    ) -> Result<CheckPlan, CallError> {
        let outcome = called?;
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < self.limits.warm_instances
        {
            pool.push(warm);
        }
        outcome
    }

    /// One call on a warm instance; the outer error means the instance
    /// failed (a trap, a limit, an answer that could not be read).
    fn call_warm(
        &self,
        warm: &mut Warm,
        service: &ServiceContext,
        check: &NomadCheck,
        settings: &Settings,
    ) -> Result<Result<CheckPlan, CallError>, CallError> {
        host::start_call(&mut warm.store, &self.limits)
            .map_err(|e| CallError::Host(format!("{e:#}")))?;
        let borrowed = bindings::Borrowed::new(service, check, settings);
        let headers = borrowed.headers(check);
        let result = warm.mapper.call_map_check(
            &mut warm.store,
            bindings::service_to_wit(service, &borrowed),
            bindings::check_to_wit(check, &headers, &borrowed),
            &borrowed.settings,
        );
        let answer = result.map_err(|e| self.classify(e, Stage::Call))?;
        let dropped = host::logs_dropped(&warm.store);
        if dropped > 0 {
            tracing::debug!(
                plugin = &*self.label,
                dropped,
                "log messages over the per-call caps were dropped"
            );
        }
        Ok(match answer {
            Err(refusal) if refusal.len() > self.limits.output_bytes => {
                Err(CallError::InvalidOutput(format!(
                    "refusal of {} bytes is over the cap of {} bytes",
                    refusal.len(),
                    self.limits.output_bytes
                )))
            }
            Err(refusal) => Err(CallError::Rejected(sanitize(&refusal, MAX_MESSAGE))),
            Ok(plan) => {
                let size = bindings::plan_size(&plan);
                if size > self.limits.output_bytes {
                    Err(CallError::InvalidOutput(format!(
                        "answer of {size} bytes is over the cap of {} bytes",
                        self.limits.output_bytes
                    )))
                } else {
                    Ok(bindings::plan_from_wit(plan))
                }
            }
        })
    }

    fn instantiate(&self) -> Result<Warm, CallError> {
        let mut store = host::new_store(
            self.pre.engine(),
            self.label.clone(),
            self.limits,
            self.switches.clone(),
        )
        .map_err(|e| CallError::Host(format!("{e:#}")))?;
        let mapper = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.classify(e, Stage::Instantiate))?;
        Ok(Warm { store, mapper })
    }

    fn call_info(&self) -> Result<PluginInfo, LoadError> {
        let fail = |cause: String| LoadError::InfoFailed {
            plugin: self.origin.clone(),
            cause,
        };
        let mut warm = self.instantiate().map_err(|e| fail(e.to_string()))?;
        let info = warm
            .mapper
            .call_info(&mut warm.store)
            .map_err(|e| fail(self.classify(e, Stage::Call).to_string()))?;
        let info = bindings::info_from_wit(info);
        let valid = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
        };
        if !valid(&info.name, 64)
            || !valid(&info.version, 32)
            || info.check_types.len() > 16
            || !info.check_types.iter().all(|t| valid(t, 32))
        {
            return Err(fail(format!(
                "name, version and check types must be short words, got {:?}",
                sanitize(&format!("{info:?}"), 200)
            )));
        }
        Ok(info)
    }

    /// Turns a wasmtime error into a typed call error.
    ///
    /// During a call, an error that is not a trap comes from lifting the
    /// plugin's answer (a pointer out of bounds, invalid UTF-8, a bad
    /// discriminant): the plugin's output is invalid.
    fn classify(&self, error: wasmtime::Error, stage: Stage) -> CallError {
        if let Some(cap) = error.downcast_ref::<MemoryCapExceeded>() {
            return CallError::ResourceExhausted(cap.to_string());
        }
        let message = sanitize(&format!("{error:#}"), 300);
        let limits = &self.limits;
        match (error.downcast_ref::<Trap>(), stage) {
            (Some(Trap::OutOfFuel), _) => {
                CallError::Timeout(format!("fuel budget of {} exhausted", limits.fuel))
            }
            (Some(Trap::Interrupt), _) if self.switches.interrupted.load(Ordering::Relaxed) => {
                CallError::Timeout("interrupted: the connector is stopping".into())
            }
            (Some(Trap::Interrupt), _) => CallError::Timeout(format!(
                "deadline of {} ms passed",
                limits.deadline().as_millis()
            )),
            (Some(trap), _) => CallError::Trapped(trap.to_string()),
            (None, _) if message.contains("exceeds memory limits") => {
                CallError::ResourceExhausted(message)
            }
            // wasmtime's hostcall fuel: a string or list over the cap.
            (None, _) if message.contains("too much data is being copied") => {
                CallError::InvalidOutput(format!(
                    "an answer or log message over the cap of {} bytes",
                    limits.output_bytes
                ))
            }
            (None, Stage::Call) => CallError::InvalidOutput(message),
            (None, Stage::Instantiate) => CallError::Trapped(message),
        }
    }
}
