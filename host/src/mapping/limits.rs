//! The bounds on every plugin call: CPU (fuel), memory (a `ResourceLimiter`), output and logs.

use serde::Deserialize;

/// Per-call limits of a plugin; the same for every plugin of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel per call (about one unit per wasm instruction). A built-in
    /// mapping burns ~10k; the default stops an endless loop within ~10 ms.
    pub fuel: u64,
    /// Linear memory a plugin instance may hold, in bytes. Rust guests built
    /// with the default 1 MiB stack need ~1.1 MiB; ours use 128 KiB.
    pub memory_bytes: usize,
    /// Size cap of a plugin's answer (all its strings and lists), in bytes.
    pub output_bytes: usize,
    /// `log` calls honoured per mapping call; the rest are dropped.
    pub log_lines_per_call: u32,
    /// Warm instances kept per plugin (an instance is reused across calls
    /// until it fails; a call with none free instantiates a new one).
    pub warm_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000,
            memory_bytes: 4 << 20,
            output_bytes: 64 << 10,
            log_lines_per_call: 16,
            warm_instances: 4,
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
    pub(super) memory_bytes: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(MemoryCapExceeded {
                limit: self.memory_bytes,
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
        Ok(desired <= 10_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}
