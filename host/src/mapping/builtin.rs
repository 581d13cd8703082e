//! The built-in plugins, compiled by build.rs and embedded in the binary.

use wasmtime::component::Component;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The built-in `name` as build.rs precompiled it, if this engine can run
/// that artifact; none when it was not precompiled (a cross build) or was
/// compiled for other CPU features, and the component must be compiled.
pub fn precompiled(engine: &wasmtime::Engine, name: &str) -> Option<Component> {
    let (_, artifact) = PRECOMPILED.iter().find(|(n, _)| *n == name)?;
    // SAFETY: the artifact was produced by wasmtime's `precompile_component`
    // in this binary's build and is embedded in it, so it is as trusted as
    // the binary; wasmtime checks its version, configuration and CPU
    // features against this engine before using it.
    match unsafe { Component::deserialize(engine, artifact) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::debug!(plugin = name, "compiling the built-in: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads_its_precompiled_artifact() {
        // Built and run on the same machine: an artifact that does not load
        // means build.rs compiled with another configuration than the engine's.
        let engine = crate::mapping::wasm::new_engine().expect("engine");
        for (name, _) in BUILTINS {
            assert!(precompiled(&engine, name).is_some(), "{name}");
        }
    }
}
