//! What a plugin may import: `log` and the mapping types, nothing else.
//!
//! The rule is checked twice: on the component's bytes before compiling
//! (so that a refusal, say of a WASI import, takes milliseconds instead of
//! a compile of up to a minute for a large component) and on the compiled
//! component's type (the authority; also for precompiled built-ins).

use super::bindings::{WIT_COMPATIBLE, WIT_PACKAGE};
use super::error::LoadError;
use crate::escape::sanitize;
use wasmparser::{ComponentTypeRef, Parser, Payload};

/// Refuses an import beyond `log` and the mapping types.
///
/// # Errors
/// [`LoadError::ForbiddenImport`] or [`LoadError::IncompatibleVersion`] for
/// the first import that is not allowed.
pub(super) fn check_imports<'a>(
    names: impl IntoIterator<Item = &'a str>,
    origin: &str,
) -> Result<(), LoadError> {
    for name in names {
        if name == "log" {
            continue;
        }
        if let Some(version) = name
            .strip_prefix(WIT_PACKAGE)
            .and_then(|rest| rest.strip_prefix("/types@"))
        {
            if version.starts_with(WIT_COMPATIBLE) {
                continue;
            }
            return Err(LoadError::IncompatibleVersion {
                plugin: origin.into(),
                import: sanitize(name, 200),
            });
        }
        return Err(LoadError::ForbiddenImport {
            plugin: origin.into(),
            import: sanitize(name, 200),
        });
    }
    Ok(())
}

/// The import names of a component's outermost level, read without
/// compiling it. Bytes that do not parse give an empty list: the compiler
/// then explains what is wrong with them.
pub(super) fn top_level_imports(bytes: &[u8]) -> Vec<&str> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return Vec::new();
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    match import {
                        // A type import (a record the world's functions
                        // name) grants nothing: only functions and instances
                        // reach outside the sandbox.
                        Ok(import) if matches!(import.ty, ComponentTypeRef::Type(_)) => {}
                        Ok(import) => names.push(import.name.name),
                        Err(_) => return Vec::new(),
                    }
                }
            }
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wasi_import_is_found_before_compiling() {
        let bytes = wat::parse_str(
            r#"(component
                 (type $ctx (record (field "name" string)))
                 (import "service-context" (type (eq $ctx)))
                 (import "log" (func))
                 (import "wasi:cli/environment@0.2.0" (instance))
                 (component (import "wasi:nested/x" (instance))))"#,
        )
        .unwrap();
        let names = top_level_imports(&bytes);
        assert_eq!(names, vec!["log", "wasi:cli/environment@0.2.0"]);
        let err = check_imports(names, "p.wasm").unwrap_err();
        assert!(matches!(err, LoadError::ForbiddenImport { .. }), "{err}");
    }

    #[test]
    fn the_mapping_types_of_0_1_are_allowed_and_0_2_refused() {
        let ok = ["log", "haproxy-nomad:mapping/types@0.1.3"];
        assert!(check_imports(ok, "p").is_ok());
        let err = check_imports(["haproxy-nomad:mapping/types@0.2.0"], "p").unwrap_err();
        assert!(
            matches!(err, LoadError::IncompatibleVersion { .. }),
            "{err}"
        );
    }
}
