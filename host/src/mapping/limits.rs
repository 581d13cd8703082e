//! The bounds on every plugin call: CPU (fuel), wall time (an epoch
//! deadline), memory and tables (a `ResourceLimiter`), output and logs.

use serde::Deserialize;
use std::time::Duration;

/// Per-call limits of a plugin: `[mapping.limits]` for every plugin, and
/// `[mapping.plugin_limits.<check type>]` to raise them for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel per call (about one unit per wasm instruction; a `log` call
    /// costs one unit per byte of its message on top). A built-in mapping
    /// burns ~10k; the default stops an endless loop within ~10 ms.
    pub fuel: u64,
    /// Wall time of one call (and of instantiating a plugin), in
    /// milliseconds. Fuel bounds the plugin's own work; the deadline bounds
    /// everything else, such as the host's work for it. The default (500 ms,
    /// 50× what the fuel allows) leaves room for a loaded machine: a call
    /// that misses it falls back, and the failure is remembered.
    pub deadline_ms: u64,
    /// Linear memory a plugin instance may hold, in bytes. Rust guests built
    /// with the default 1 MiB stack need ~1.1 MiB; ours use 128 KiB.
    pub memory_bytes: usize,
    /// Size cap of a plugin's answer (all its strings and lists), and of
    /// one `log` message, in bytes. It applies while the answer is read:
    /// the host copies no more than about this much before refusing it.
    pub output_bytes: usize,
    /// `log` calls honoured per mapping call; the rest are dropped.
    pub log_lines_per_call: u32,
    /// Bytes of `log` messages honoured per mapping call; the rest are
    /// dropped (but still cost fuel).
    pub log_bytes_per_call: usize,
    /// Warm instances kept per plugin (an instance is reused across calls
    /// until it fails; a call with none free instantiates a new one).
    pub warm_instances: usize,
    /// Core instances a component may create. Rust guests need a few;
    /// componentize-py needs 17.
    pub instances: usize,
    /// Tables a component may create.
    pub tables: usize,
    /// Elements one table may grow to.
    pub table_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000,
            deadline_ms: 500,
            memory_bytes: 4 << 20,
            output_bytes: 64 << 10,
            log_lines_per_call: 16,
            log_bytes_per_call: 16 << 10,
            warm_instances: 4,
            instances: 16,
            tables: 16,
            table_elements: 10_000,
        }
    }
}

impl Limits {
    /// The wall-time deadline of one call.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms.max(1))
    }
}

/// `[mapping.plugin_limits.<check type>]`: the keys of [`Limits`] to change
/// for one check type's plugin; the others come from `[mapping.limits]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsOverride {
    /// See [`Limits::fuel`].
    pub fuel: Option<u64>,
    /// See [`Limits::deadline_ms`].
    pub deadline_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    pub memory_bytes: Option<usize>,
    /// See [`Limits::output_bytes`].
    pub output_bytes: Option<usize>,
    /// See [`Limits::log_lines_per_call`].
    pub log_lines_per_call: Option<u32>,
    /// See [`Limits::log_bytes_per_call`].
    pub log_bytes_per_call: Option<usize>,
    /// See [`Limits::warm_instances`].
    pub warm_instances: Option<usize>,
    /// See [`Limits::instances`].
    pub instances: Option<usize>,
    /// See [`Limits::tables`].
    pub tables: Option<usize>,
    /// See [`Limits::table_elements`].
    pub table_elements: Option<usize>,
}

impl LimitsOverride {
    /// `base` with the keys this override sets.
    pub fn over(&self, base: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            deadline_ms: self.deadline_ms.unwrap_or(base.deadline_ms),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
            log_lines_per_call: self.log_lines_per_call.unwrap_or(base.log_lines_per_call),
            log_bytes_per_call: self.log_bytes_per_call.unwrap_or(base.log_bytes_per_call),
            warm_instances: self.warm_instances.unwrap_or(base.warm_instances),
            instances: self.instances.unwrap_or(base.instances),
            tables: self.tables.unwrap_or(base.tables),
            table_elements: self.table_elements.unwrap_or(base.table_elements),
        }
    }
}

/// The memory cap was hit: growth refused and the call trapped.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {wanted} bytes)")]
pub struct MemoryCapExceeded {
    /// The configured cap.
    pub limit: usize,
    /// What the plugin asked for.
    pub wanted: usize,
}

/// A `ResourceLimiter` that turns refused growth into a typed trap.
#[derive(Debug)]
pub(super) struct Limiter {
    pub(super) limits: Limits,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            return Err(MemoryCapExceeded {
                limit: self.limits.memory_bytes,
                wanted: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.limits.table_elements)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_changes_only_its_keys() {
        let base = Limits::default();
        let raised = LimitsOverride {
            memory_bytes: Some(10 << 20),
            instances: Some(17),
            ..LimitsOverride::default()
        }
        .over(base);
        assert_eq!(raised.memory_bytes, 10 << 20);
        assert_eq!(raised.instances, 17);
        assert_eq!(raised.fuel, base.fuel);
        assert_eq!(raised.deadline_ms, base.deadline_ms);
    }
}
