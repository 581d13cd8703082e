//! The connector's TOML config file as written ([`Config`]), and what the
//! commands run on: the same, checked and resolved ([`Resolved`]).

mod resolved;
pub mod verdicts;

pub use resolved::Resolved;

use crate::vocab::check::RenderContext;
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
    /// `[verdicts]`: Nomad's check results compared with HAProxy's.
    pub verdicts: verdicts::Config,
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
    /// The file is not valid TOML, or a key is unknown, mistyped or
    /// unusable; the message names the key.
    #[error("config {path}: {message}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong, naming the key (and line, for TOML errors).
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("{key}: {message}")]
    Value {
        /// The key, with its section (`haproxy.state_file`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A `[nomad]` value, or the `NOMAD_*` variable behind it.
    #[error(transparent)]
    Nomad(#[from] crate::nomad::ConfigError),
    /// A `[mapping]` value.
    #[error(transparent)]
    Mapping(#[from] crate::mapping::config::ConfigError),
    /// The `[log]` level (or `RUST_LOG`).
    #[error(transparent)]
    Log(#[from] crate::logging::Error),
}

/// Keys whose values are secrets: a TOML error on their line quotes
/// neither the line nor the value.
const SECRET_KEYS: &[&str] = &["token", "http_auth"];

impl Config {
    /// Reads a config file (TOML only; [`Resolved`] checks the values).
    ///
    /// # Errors
    /// The file is unreadable, not TOML, or has an unknown or mistyped key.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = crate::regular_file::read_to_string(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text).map_err(|message| Error::Invalid {
            path: path.into(),
            message,
        })
    }

    /// Parses config text; the error names the key and the line, and never
    /// quotes a secret ([`SECRET_KEYS`]).
    ///
    /// # Errors
    /// Invalid TOML, or an unknown or mistyped key.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| toml_error(text, &e))
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

/// The TOML error as the toml crate writes it (with the offending line),
/// unless that line holds a secret: then its line and column, and the
/// message with quoted values masked.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        // No line to judge by: mask the values.
        return mask_quoted(error.message());
    };
    let secret = text
        .get(line_start(text, span.start)..line_end(text, span.end))
        .is_none_or(|lines| {
            let lower = lines.to_ascii_lowercase();
            SECRET_KEYS.iter().any(|key| lower.contains(key))
        });
    if !secret {
        return error.to_string().trim_end().to_string();
    }
    let line = text
        .get(..span.start)
        .map_or(0, |t| t.matches('\n').count())
        + 1;
    let column = span.start - line_start(text, span.start) + 1;
    format!(
        "TOML parse error at line {line}, column {column}: {} (the line is not shown: it holds a secret)",
        mask_quoted(error.message())
    )
}

fn line_start(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(0, |t| t.rfind('\n').map_or(0, |i| i + 1))
}

fn line_end(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|t| t.find('\n'))
        .map_or(text.len(), |i| at + i)
}

/// Replaces what is between backticks or double quotes with `…`.
fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
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
    fn toml_errors_name_the_key_and_line() {
        let err = Config::parse("[daemon]\nresync_interval_secs = \"soon\"\n").unwrap_err();
        assert!(
            err.contains("resync_interval_secs") && err.contains("line 2"),
            "{err}"
        );
        let err = Config::parse("[mapping]\nfuel = 3\n").unwrap_err();
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn toml_errors_never_quote_the_token() {
        for text in [
            "[nomad]\ntoken = \"s3cr3t-0d5e\n",
            "[nomad]\ntoken = s3cr3t-0d5e\n",
            "[nomad]\ntoken = [\"s3cr3t-0d5e\"]\n",
            "[nomad]\nhttp_auth = { user = \"s3cr3t-0d5e\" }\n",
            "nomad = { token = \"s3cr3t-0d5e\", bogus = 1 }\n",
            "[nomad]\ntoken = \"s3cr3t-0d5e\"\ntoken = \"s3cr3t-0d5e\"\n",
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(!err.contains("s3cr3t"), "{text:?} gave {err}");
            assert!(err.contains("line") && err.contains("secret"), "{err}");
        }
        // Other lines keep the toml crate's excerpt.
        let err = Config::parse("[nomad]\ntoken = \"s3cr3t\"\nbogus = 1\n").unwrap_err();
        assert!(
            err.contains("bogus = 1") && !err.contains("s3cr3t"),
            "{err}"
        );
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
