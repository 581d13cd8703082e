//! The connector's TOML config file, validated at load with errors that name the key.

use crate::haproxy::check::RenderContext;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[mapping]`: plugins, their settings and limits.
    pub mapping: crate::mapping::Config,
    /// `[checks]`: how rendered checks reach HAProxy.
    pub checks: ChecksConfig,
}

/// `[checks]`: site settings of check rendering.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksConfig {
    /// The map file (server name → `address:port`) that gives HTTP checks
    /// Nomad's default `Host` header. Default: none, so checks whose job
    /// sets no Host send none.
    pub host_map: Option<PathBuf>,
    /// The map file (server name → check URI) that gives each server its own
    /// HTTP check path: old and new allocations of a rolling deploy keep the
    /// paths of their own job versions, and a path change needs no reload.
    /// Default: none, so the path is part of the backend's check.
    pub uri_map: Option<PathBuf>,
    /// `ca-file` for checks that verify TLS certificates. Default `@system-ca`.
    pub ca_file: String,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        let ctx = RenderContext::default();
        ChecksConfig {
            host_map: ctx.host_map,
            uri_map: ctx.uri_map,
            ca_file: ctx.ca_file,
        }
    }
}

impl ChecksConfig {
    /// The rendering context these settings describe.
    pub fn render_context(&self) -> RenderContext {
        RenderContext {
            host_map: self.host_map.clone(),
            uri_map: self.uri_map.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("config {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is invalid or a key is unknown or mistyped.
    #[error("config {path}: {message}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// toml's message, which names the key and line.
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// The file is unreadable, not TOML, or has an unknown or mistyped key.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text).map_err(|message| Error::Invalid {
            path: path.into(),
            message,
        })
    }

    /// Parses config text; the error names the key and line.
    ///
    /// # Errors
    /// Invalid TOML, or an unknown or mistyped key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.mapping.routes().map_err(|e| e.to_string())?;
        Ok(config)
    }
}
