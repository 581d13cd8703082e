//! The wasmtime engine of the plugin host, and compiling components with a `.cwasm` cache.
//!
//! Compiling a plugin takes ~20 ms; loading a cached compiled artifact takes
//! ~50 µs (`reference/wasm.md` §4). The cache key hashes the component bytes
//! with wasmtime's own compatibility hash of the engine configuration, so a
//! changed wasmtime or `Config` never loads a stale artifact.
//!
//! Compiling happens on a throwaway engine of the same configuration: the
//! compiler keeps its scratch contexts (~10 MB for the four built-ins) for
//! the engine's lifetime, and the daemon's engine only ever loads artifacts.
//! `host/build.rs` precompiles the built-ins with a copy of [`new_engine`]'s
//! configuration; keep the two equal (a test in `builtin.rs` fails if not).

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// How often the epoch ticker advances every engine's epoch: the
/// granularity of the per-call wall-time deadline.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// The engine every plugin runs on: fuel-metered, epoch-interruptible, no
/// WASI; a ticker thread advances its epoch every [`EPOCH_TICK`] until the
/// engine is dropped.
///
/// # Errors
/// wasmtime refuses the configuration (not expected on supported hosts), or
/// the ticker thread cannot start.
pub fn new_engine() -> wasmtime::Result<wasmtime::Engine> {
    let engine = wasmtime::Engine::new(&config())?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(engine)
}

/// The engine configuration; `host/build.rs` `engine_config` is its copy.
fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}

/// Where a compiled artifact for `bytes` would be cached.
pub fn cache_path(engine: &wasmtime::Engine, dir: &Path, bytes: &[u8]) -> PathBuf {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let mut digest = Sha256::new();
    digest.update(compat.finish().to_le_bytes());
    digest.update(bytes);
    dir.join(format!("{}.cwasm", hex::encode(&digest.finalize()[..16])))
}

/// Compiles a component, through the cache when one is configured.
///
/// A cache that cannot be read is skipped with a debug log, one that cannot
/// be written with a warning: it only saves time.
///
/// # Errors
/// The bytes are not a valid component.
pub fn compile(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir else {
        return load(engine, &precompile(bytes)?);
    };
    let path = cache_path(engine, dir, bytes);
    if path.exists() {
        // SAFETY: the file sits in the operator's cache directory, is named by a
        // hash of the component and of this engine's configuration, and was
        // written by `serialize` below; the directory must be as trusted as the
        // binary (docs/configuration.md, `mapping.cache_dir`).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::debug!(path = %path.display(), "ignoring unusable cached plugin: {e:#}")
            }
        }
    }
    let compiled = precompile(bytes)?;
    if let Err(e) = cache(&path, &compiled) {
        // Not fatal (the plugin is compiled and runs), but the next start
        // compiles it again: a full or read-only cache_dir shows here.
        tracing::warn!(file = %path.display(), error = %e, "cannot cache a compiled plugin");
    }
    load(engine, &compiled)
}

/// Compiles a component on an engine of [`new_engine`]'s configuration that
/// is dropped at once, with its compiler's scratch memory.
fn precompile(bytes: &[u8]) -> wasmtime::Result<Vec<u8>> {
    wasmtime::Engine::new(&config())?.precompile_component(bytes)
}

/// Loads an artifact [`precompile`] just produced.
fn load(engine: &wasmtime::Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` comes from `precompile` in this process, on an
    // engine of the same configuration; wasmtime checks that again.
    unsafe { Component::deserialize(engine, compiled) }
}

/// Writes a compiled artifact into the cache, durably: a torn artifact is
/// never left under a name a later start would load.
fn cache(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::durable::write(path, bytes)
}
