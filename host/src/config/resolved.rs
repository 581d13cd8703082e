//! The config every command runs on: the file's values checked, merged with
//! the environment and turned into the types the daemon uses (raw →
//! resolved, as ripgrep's `LowArgs` → `HiArgs`).

use super::{Config, Error};
use crate::nomad::{Env, ProcessEnv, Settings};
use crate::vocab::check::RenderContext;
use crate::vocab::syntax::Token;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Characters a path written into HAProxy's config or sent on its socket
/// may hold, besides ASCII letters and digits.
const HAPROXY_PATH_CHARS: &str = "/._-+@";

/// The longest such path.
const MAX_HAPROXY_PATH: usize = 512;

/// A config checked as a whole: paths, maps, sockets, addresses and the
/// Nomad settings, each in its final form. `run`, `validate`, `plan`,
/// `explain` and `map` all start from one, so they accept and refuse the
/// same files.
///
/// # Guarantees
/// Every path the connector gives HAProxy is absolute and in HAProxy's
/// grammar; no two maps share a file; the admin address parses; the Nomad
/// settings are merged with the `NOMAD_*` variables and valid; the plugin
/// routes, their settings and the log level parse.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `[nomad]`, merged with the Nomad CLI's variables.
    pub nomad: Settings,
    /// `[haproxy]`, its paths checked.
    pub haproxy: crate::haproxy::Config,
    /// `[mapping]`, its plugin routes and settings checked.
    pub mapping: crate::mapping::Config,
    /// How checks are rendered: the Host and URI maps and the CA file.
    pub render: RenderContext,
    /// The admin listener's address; `None` when `daemon.admin_listen` is `""`.
    pub admin_listen: Option<SocketAddr>,
    /// How often a full resync runs (`daemon.resync_interval_secs`).
    pub resync_interval: Duration,
    /// `[verdicts]`, its values checked.
    pub verdicts: super::verdicts::Config,
    /// `[log]`, its level checked.
    pub log: crate::logging::Config,
}

impl TryFrom<Config> for Resolved {
    type Error = Error;

    /// Resolves against the process environment ([`ProcessEnv`]).
    fn try_from(config: Config) -> Result<Resolved, Error> {
        Resolved::new(config, &ProcessEnv)
    }
}

impl Resolved {
    /// Reads, parses and resolves a config file; `None` resolves the
    /// defaults (and the environment).
    ///
    /// # Errors
    /// The file is unreadable or invalid; the message names the file and
    /// the key.
    pub fn load(path: Option<&Path>) -> Result<Resolved, Error> {
        let Some(path) = path else {
            return Resolved::try_from(Config::default());
        };
        let config = Config::load(path)?;
        Resolved::try_from(config).map_err(|e| Error::Invalid {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Resolves `config` with the `NOMAD_*` variables of `env`.
    ///
    /// # Errors
    /// The first unusable value, naming its key.
    pub fn new(config: Config, env: &dyn Env) -> Result<Resolved, Error> {
        check_haproxy(&config.haproxy)?;
        config.mapping.routes()?;
        for check_type in config.mapping.settings.keys() {
            config.mapping.settings_for(check_type)?;
        }
        if let Some(ca_file) = &config.mapping.ca_file {
            Token::word("mapping.ca_file", ca_file, MAX_HAPROXY_PATH)
                .map_err(|e| value("mapping.ca_file", e.to_string()))?;
        }
        if let Some(dir) = &config.mapping.cache_dir {
            absolute("mapping.cache_dir", dir)?;
        }
        config.log.validate()?;
        let admin_listen = match config.daemon.admin_listen.as_str() {
            "" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|e| {
                value(
                    "daemon.admin_listen",
                    format!("{text:?}: {e} (an address:port, or \"\" to turn it off)"),
                )
            })?),
        };
        if config.daemon.resync_interval_secs == 0 {
            return Err(value(
                "daemon.resync_interval_secs",
                "must be at least 1".into(),
            ));
        }
        if let Some((key, message)) = config.verdicts.problem() {
            return Err(value(key, message.into()));
        }
        let nomad = config.nomad.resolve(env)?;
        Ok(Resolved {
            nomad,
            render: config.render_context(),
            resync_interval: config.daemon.resync_interval(),
            admin_listen,
            verdicts: config.verdicts,
            haproxy: config.haproxy,
            mapping: config.mapping,
            log: config.log,
        })
    }
}

fn value(key: &str, message: String) -> Error {
    Error::Value {
        key: key.into(),
        message,
    }
}

fn absolute(key: &str, path: &Path) -> Result<(), Error> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(value(
            key,
            format!("{} is not an absolute path", path.display()),
        ))
    }
}

/// An absolute path that HAProxy's config and socket can take as one word.
fn haproxy_path(key: &str, path: &Path) -> Result<(), Error> {
    absolute(key, path)?;
    Token::restricted(
        key,
        &path.to_string_lossy(),
        HAPROXY_PATH_CHARS,
        MAX_HAPROXY_PATH,
    )
    .map(drop)
    .map_err(|_| {
        value(
            key,
            format!(
                "{} holds characters HAProxy's config cannot take (letters, digits and {HAPROXY_PATH_CHARS} only)",
                path.display()
            ),
        )
    })
}

fn check_haproxy(h: &crate::haproxy::Config) -> Result<(), Error> {
    absolute("haproxy.stats_socket", &h.stats_socket)?;
    absolute("haproxy.master_socket", &h.master_socket)?;
    absolute("haproxy.managed_config", &h.managed_config)?;
    haproxy_path("haproxy.state_file", &h.state_file)?;
    for (n, path) in h.operator_configs.iter().enumerate() {
        let key = format!("haproxy.operator_configs[{n}]");
        absolute(&key, path)?;
        if *path == h.managed_config {
            return Err(value(
                &key,
                "is haproxy.managed_config; list only the operator's own files".into(),
            ));
        }
    }
    let maps: [(&str, &Option<PathBuf>); 5] = [
        ("haproxy.host_map", &h.host_map),
        ("haproxy.uri_map", &h.uri_map),
        ("haproxy.domain_map_exact", &h.domain_map_exact),
        ("haproxy.domain_map_prefix", &h.domain_map_prefix),
        ("haproxy.domain_map_regex", &h.domain_map_regex),
    ];
    for (n, (key, path)) in maps.iter().enumerate() {
        let Some(path) = path else { continue };
        haproxy_path(key, path)?;
        if let Some((other, _)) = maps[..n]
            .iter()
            .find(|(_, earlier)| earlier.as_ref() == Some(path))
        {
            return Err(value(
                key,
                format!(
                    "{} is also {other}; each map needs its own file",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resolve(text: &str) -> Result<Resolved, String> {
        let config = Config::parse(text)?;
        Resolved::new(config, &BTreeMap::new()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_resolve() {
        let r = resolve("").unwrap();
        assert_eq!(r.admin_listen, Some("127.0.0.1:9180".parse().unwrap()));
        assert_eq!(r.resync_interval, Duration::from_secs(30));
        assert_eq!(r.nomad.namespaces, ["*"]);
        assert_eq!(r.render.ca_file, "@system-ca");
    }

    #[test]
    fn every_error_names_its_key() {
        for (text, key) in [
            ("[haproxy]\nstate_file = \"state\"", "haproxy.state_file"),
            (
                "[haproxy]\nstats_socket = \"admin.sock\"",
                "haproxy.stats_socket",
            ),
            (
                "[haproxy]\nmaster_socket = \"m.sock\"",
                "haproxy.master_socket",
            ),
            (
                "[haproxy]\nmanaged_config = \"x.cfg\"",
                "haproxy.managed_config",
            ),
            ("[haproxy]\nhost_map = \"/a b.map\"", "haproxy.host_map"),
            (
                "[haproxy]\nuri_map = \"/var/lib/x;y.map\"",
                "haproxy.uri_map",
            ),
            (
                "[haproxy]\nhost_map = \"/m.map\"\ndomain_map_regex = \"/m.map\"",
                "haproxy.domain_map_regex",
            ),
            (
                "[haproxy]\noperator_configs = [\"/etc/haproxy/nomad-connector.cfg\"]",
                "haproxy.operator_configs[0]",
            ),
            (
                "[haproxy]\noperator_configs = [\"h.cfg\"]",
                "haproxy.operator_configs[0]",
            ),
            (
                "[daemon]\nadmin_listen = \"nowhere\"",
                "daemon.admin_listen",
            ),
            (
                "[daemon]\nresync_interval_secs = 0",
                "daemon.resync_interval_secs",
            ),
            (
                "[mapping.plugins]\ngrpc = \"magic\"",
                "mapping.plugins.grpc",
            ),
            (
                "[mapping.settings.http]\nrise = [1]",
                "mapping.settings.http.rise",
            ),
            ("[mapping]\nca_file = \"/a b.pem\"", "mapping.ca_file"),
            ("[mapping]\ncache_dir = \"cache\"", "mapping.cache_dir"),
            (
                "[log]\nlevel = \"info,haproxy_nomad_connector=loud\"",
                "[log] level",
            ),
            ("[nomad]\naddress = \"nomad:4646\"", "nomad.address"),
            ("[nomad]\nbackoff_min = \"2m\"", "nomad.backoff_min"),
        ] {
            let err = resolve(text).unwrap_err();
            assert!(err.starts_with(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn an_empty_admin_listen_turns_it_off() {
        let r = resolve("[daemon]\nadmin_listen = \"\"").unwrap();
        assert_eq!(r.admin_listen, None);
    }

    #[test]
    fn a_file_error_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[haproxy]\nstate_file = \"rel/state\"\n").unwrap();
        let err = Resolved::load(Some(path.as_path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("haproxy.state_file"),
            "{err}"
        );
    }
}
