//! The connector's TOML config file, validated at load with errors that name the key.

use crate::haproxy::check::RenderContext;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole config file. Every section and key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[nomad]`: where Nomad is and how to read it (NOMAD_* variables fill
    /// what the file leaves out).
    pub nomad: crate::nomad::Config,
    /// `[haproxy]`: sockets, managed files, timings.
    pub haproxy: crate::haproxy::Config,
    /// `[mapping]`: plugins, their settings and limits.
    pub mapping: crate::mapping::Config,
    /// `[daemon]`: the reconcile loop and the admin listener.
    pub daemon: DaemonConfig,
    /// `[log]`: text or JSON, and the level.
    pub log: crate::logging::Config,
}

/// `[daemon]`: the reconcile loop and the admin listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// A full resync (every service re-planned, HAProxy read back and
    /// repaired) runs this often, in seconds, whatever the events say. It
    /// bounds how long a missed event or an HAProxy restart can go
    /// unnoticed. Default 30.
    pub resync_interval_secs: u64,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`). Default
    /// `127.0.0.1:9180`; an empty string turns it off.
    pub admin_listen: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            resync_interval_secs: 30,
            admin_listen: "127.0.0.1:9180".into(),
        }
    }
}

impl DaemonConfig {
    /// [`DaemonConfig::resync_interval_secs`] as a duration (at least 1 s).
    pub fn resync_interval(&self) -> Duration {
        Duration::from_secs(self.resync_interval_secs.max(1))
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
    /// The TOML is invalid, or a key is unknown, mistyped or inconsistent.
    #[error("config {path}: {message}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong, naming the key (and line, for TOML errors).
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

    /// Parses config text; the error names the key.
    ///
    /// # Errors
    /// Invalid TOML, or an unknown, mistyped or inconsistent key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.mapping.routes().map_err(|e| e.to_string())?;
        config.log.validate().map_err(|e| e.to_string())?;
        if !config.daemon.admin_listen.is_empty() {
            config
                .daemon
                .admin_listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    format!("daemon.admin_listen: {e} (an address:port, or \"\" to turn it off)")
                })?;
        }
        Ok(config)
    }

    /// How checks are rendered: the map files the driver maintains, and the
    /// CA file. One source, so rendering and the driver cannot disagree.
    pub fn render_context(&self) -> RenderContext {
        RenderContext {
            host_map: self.haproxy.host_map.clone(),
            uri_map: self.haproxy.uri_map.clone(),
            ca_file: self
                .mapping
                .ca_file
                .clone()
                .unwrap_or_else(|| RenderContext::default().ca_file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_all_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.daemon, DaemonConfig::default());
        assert_eq!(config.render_context().ca_file, "@system-ca");
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::parse("[daemon]\nresync_interval_secs = \"soon\"\n").unwrap_err();
        assert!(err.contains("resync_interval_secs"), "{err}");
        let err = Config::parse("[mapping]\nfuel = 3\n").unwrap_err();
        assert!(err.contains("fuel"), "{err}");
        let err = Config::parse("[daemon]\nadmin_listen = \"nowhere\"\n").unwrap_err();
        assert!(err.contains("daemon.admin_listen"), "{err}");
        let err = Config::parse("[mapping.plugins]\ngrpc = \"magic\"\n").unwrap_err();
        assert!(err.contains("mapping.plugins.grpc"), "{err}");
    }

    #[test]
    fn rendering_uses_the_drivers_map_files() {
        let config = Config::parse(
            "[haproxy]\nhost_map = \"/var/lib/h.map\"\nuri_map = \"/var/lib/u.map\"\n",
        )
        .unwrap();
        let ctx = config.render_context();
        assert_eq!(ctx.host_map, Some("/var/lib/h.map".into()));
        assert_eq!(ctx.uri_map, Some("/var/lib/u.map".into()));
    }
}
