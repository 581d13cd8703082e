//! Loading plugins: reading, checking imports, compiling (through the
//! cache) and validating a component.

use super::config::Source;
use super::engine::Error;
use super::error::LoadError;
use super::imports::{check_imports, top_level_imports};
use super::limits::Limits;
use super::plugin::Plugin;
use super::{builtin, sample, wasm};
use crate::vocab::check::{RenderContext, render};
use hnc_core::model::Settings;
use std::path::Path;
use wasmtime::component::Component;

/// The compiled component of a source (a built-in comes precompiled).
///
/// # Errors
/// The file cannot be read, is not a component, imports what a plugin may
/// not, or does not compile.
pub fn component(
    engine: &wasmtime::Engine,
    source: &Source,
    cache_dir: Option<&Path>,
) -> Result<Component, LoadError> {
    let origin = source.origin();
    if let Source::Builtin(name) = source
        && let Some(component) = builtin::precompiled(engine, name)
    {
        return Ok(component);
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
        Source::File(path) => crate::regular_file::read(path)
            .map_err(|source| LoadError::ReadFailed {
                path: path.clone(),
                source,
            })?
            .into(),
    };
    compile(engine, &bytes, &origin, cache_dir)
}

/// Checks a component's imports, then compiles it (through the cache).
///
/// # Errors
/// A core module, a forbidden import, or bytes that do not compile.
pub fn compile(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    origin: &str,
    cache_dir: Option<&Path>,
) -> Result<Component, LoadError> {
    if is_core_module(bytes) {
        return Err(LoadError::CompileFailed {
            plugin: origin.into(),
            message: "this is a core wasm module, not a component; encode it with \
                      `hnc-plugin-build` (docs/plugin-guide.md)"
                .into(),
        });
    }
    check_imports(top_level_imports(bytes), origin)?;
    wasm::compile(engine, bytes, cache_dir).map_err(|e| LoadError::CompileFailed {
        plugin: origin.into(),
        message: format!("{e:#}"),
    })
}

/// Compiles (through the cache) and validates a component under `limits`.
///
/// # Errors
/// Any [`LoadError`].
pub fn load_bytes(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    origin: &str,
    cache_dir: Option<&Path>,
    limits: Limits,
) -> Result<Plugin, LoadError> {
    let component = compile(engine, bytes, origin, cache_dir)?;
    Plugin::load(engine, &component, origin, limits)
}

/// A core module starts `\0asm` version 1; a component has layer 1 in bytes 6..8.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Maps and renders a canonical check of `check_type`, so that settings the
/// plugin refuses, or that make it answer what HAProxy must not see, stop
/// the start (or the reload).
pub(super) fn trial(
    plugin: &Plugin,
    check_type: &str,
    settings: &Settings,
    ctx: &RenderContext,
) -> Result<(), Error> {
    let (service, check) = (sample::service(), sample::check(check_type));
    let rejected = |cause: String| Error::SettingsRejected {
        check_type: check_type.into(),
        plugin: plugin.label().into(),
        cause,
    };
    let plan = plugin
        .call(&service, &check, settings)
        .map_err(|e| rejected(e.to_string()))?;
    render(&plan, ctx)
        .map_err(|invalid| rejected(format!("it answers an invalid value: {invalid}")))?;
    Ok(())
}
