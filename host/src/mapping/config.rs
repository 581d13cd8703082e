//! The `[mapping]` section of the config: which plugin serves which check type, settings, limits.

use super::limits::{Limits, LimitsOverride};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The built-in plugins by name.
pub const BUILTIN_NAMES: &[&str] = &["http", "tcp", "grpc", "script"];

/// The `[mapping]` section, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Check type → plugin: a built-in name (`http`, `tcp`, `grpc`,
    /// `script`) or a path to a `.wasm` component. Types not listed use the
    /// built-in of the same name; a type with no plugin gets a TCP check.
    pub plugins: BTreeMap<String, String>,
    /// Check type → settings handed to its plugin.
    pub settings: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Per-call limits of every plugin.
    pub limits: Limits,
    /// Check type → the limits to change for its plugin only (the other
    /// keys come from `limits`).
    pub plugin_limits: BTreeMap<String, LimitsOverride>,
    /// Directory for compiled site plugins (`.cwasm`); none compiles them at
    /// every start (the built-ins come precompiled). It must be as trusted
    /// as the binary.
    pub cache_dir: Option<PathBuf>,
    /// `ca-file` for TLS checks that verify certificates. Default `@system-ca`.
    pub ca_file: Option<String>,
}

/// Where a check type's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// One of [`BUILTIN_NAMES`].
    Builtin(String),
    /// A component file.
    File(PathBuf),
}

impl Source {
    /// How errors and `explain` name the source.
    pub fn origin(&self) -> String {
        match self {
            Source::Builtin(name) => format!("builtin:{name}"),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// A `[mapping]` value that makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither a built-in name nor a path.
    #[error(
        "mapping.plugins.{check_type}: unknown built-in plugin {value:?} (built-ins: http, tcp, grpc, script; or a path to a .wasm file)"
    )]
    UnknownBuiltin {
        /// The check type key.
        check_type: String,
        /// The value.
        value: String,
    },
    /// Limits for a check type no plugin serves.
    #[error(
        "mapping.plugin_limits.{check_type}: no plugin serves this check type (types: {known})"
    )]
    LimitsForUnknownType {
        /// The check type key.
        check_type: String,
        /// The check types served.
        known: String,
    },
    /// A setting that is not a string, number or boolean.
    #[error("mapping.settings.{check_type}.{key}: settings are strings, numbers or booleans")]
    BadSetting {
        /// The check type key.
        check_type: String,
        /// The setting key.
        key: String,
    },
}

impl Config {
    /// Every check type with its plugin source: the defaults plus the config.
    ///
    /// # Errors
    /// A value that names no built-in and is not a path.
    pub fn routes(&self) -> Result<BTreeMap<String, Source>, ConfigError> {
        let mut routes: BTreeMap<String, Source> = BUILTIN_NAMES
            .iter()
            .map(|n| (n.to_string(), Source::Builtin(n.to_string())))
            .collect();
        for (check_type, value) in &self.plugins {
            let source = if value.contains('/') || value.ends_with(".wasm") {
                Source::File(PathBuf::from(value))
            } else if BUILTIN_NAMES.contains(&value.as_str()) {
                Source::Builtin(value.clone())
            } else {
                return Err(ConfigError::UnknownBuiltin {
                    check_type: check_type.clone(),
                    value: value.clone(),
                });
            };
            routes.insert(check_type.to_ascii_lowercase(), source);
        }
        Ok(routes)
    }

    /// The limits of a check type's plugin: `limits` with its
    /// `plugin_limits` entry over them.
    ///
    /// # Errors
    /// A `plugin_limits` entry for a check type with no plugin.
    pub fn limits_for(&self, check_type: &str) -> Result<Limits, ConfigError> {
        let routes = self.routes()?;
        if let Some(unknown) = self
            .plugin_limits
            .keys()
            .find(|t| !routes.contains_key(&t.to_ascii_lowercase()))
        {
            return Err(ConfigError::LimitsForUnknownType {
                check_type: unknown.clone(),
                known: routes.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        Ok(self
            .plugin_limits
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(check_type))
            .map_or(self.limits, |(_, o)| o.over(self.limits)))
    }

    /// The settings of a check type's plugin, as strings.
    ///
    /// # Errors
    /// A table or array as a setting value.
    pub fn settings_for(&self, check_type: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(table) = self.settings.get(check_type) else {
            return Ok(Vec::new());
        };
        table
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(ConfigError::BadSetting {
                            check_type: check_type.into(),
                            key: key.clone(),
                        });
                    }
                };
                Ok((key.clone(), text))
            })
            .collect()
    }
}
