//! The `[haproxy]` section of the config: sockets, files, the binary and timings.

use crate::vocab::DomainMatch;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `[haproxy]` section: how the runtime driver reaches HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The stats socket, at admin level (`stats socket <path> level admin`).
    /// Default `/run/haproxy/admin.sock`.
    pub stats_socket: PathBuf,
    /// The master socket (`haproxy -W -S <path>`), used for reloads and
    /// `show proc`. Default `/run/haproxy/master.sock`.
    pub master_socket: PathBuf,
    /// The managed config file: the connector's backends and servers,
    /// rewritten atomically after every applied change. HAProxy must load
    /// it after the operator's config (`-f haproxy.cfg -f <this>`).
    /// Default `/etc/haproxy/nomad-connector.cfg`.
    pub managed_config: PathBuf,
    /// The server-state file the managed backends load after a reload or
    /// restart (`load-server-state-from-file local`), dumped before every
    /// reload and after every applied change. Default
    /// `/var/lib/haproxy/nomad-connector.state`.
    pub state_file: PathBuf,
    /// The Host map (server name → `address:port`) behind Nomad's default
    /// `Host` header in HTTP checks. Default none (no map is written).
    pub host_map: Option<PathBuf>,
    /// The URI map (server name → check URI) that gives each server its
    /// own HTTP check path, changed without a reload. Default none (no map
    /// is written).
    pub uri_map: Option<PathBuf>,
    /// The map of exact domains (`haproxy.domain`: host → backend) that the
    /// operator's frontend reads with `map_str` (see
    /// `docs/haproxy-driver.md`). Updated at runtime and rewritten after
    /// every change; created empty at start when missing, since HAProxy
    /// refuses a config naming a missing map. `""` turns exact domains off
    /// (they are then refused). Default
    /// `/var/lib/haproxy/nomad-connector-domains.map`.
    #[serde(deserialize_with = "optional_path")]
    pub domain_map_exact: Option<PathBuf>,
    /// The map of domain prefixes (`haproxy.domain.prefix`), read with
    /// `map_beg` (the longest prefix wins); as `domain_map_exact`. Default
    /// `/var/lib/haproxy/nomad-connector-domains-prefix.map`.
    #[serde(deserialize_with = "optional_path")]
    pub domain_map_prefix: Option<PathBuf>,
    /// The map of domain regexes (`haproxy.domain.regex`), read with
    /// `map_reg` (the first match in the map's order wins); as
    /// `domain_map_exact`. Default
    /// `/var/lib/haproxy/nomad-connector-domains-regex.map`.
    #[serde(deserialize_with = "optional_path")]
    pub domain_map_regex: Option<PathBuf>,
    /// The operator's config files, passed to `haproxy -c` before the
    /// managed file, in the order HAProxy loads them. They must not include
    /// the managed file. Default `["/etc/haproxy/haproxy.cfg"]`.
    pub operator_configs: Vec<PathBuf>,
    /// The HAProxy binary that validates renders. Default `haproxy`
    /// (searched in `PATH`); use the binary HAProxy runs from.
    pub haproxy_bin: PathBuf,
    /// How long a removed instance drains before it is put in maintenance
    /// and deleted, in milliseconds; cancelled if the instance comes back.
    /// Longer lets long requests finish; shorter frees the slot sooner.
    /// Default 30000.
    pub drain_grace_ms: u64,
    /// The window that coalesces backend-level changes into one reload, in
    /// milliseconds: the first change opens it, the reload renders the
    /// latest desired state when it closes. Longer gives fewer reloads in a
    /// deployment burst; shorter makes new backends and check changes
    /// appear sooner. Server changes are never delayed. Default 1000.
    pub reload_delay_ms: u64,
    /// The time limit of one socket exchange, in milliseconds (large
    /// batches get 1 ms more per command). Default 10000.
    pub socket_timeout_ms: u64,
    /// How long a reload may take to show a new worker that answers on the
    /// stats socket, and the time limit of `haproxy -c`, in milliseconds.
    /// Default 30000.
    pub reload_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stats_socket: "/run/haproxy/admin.sock".into(),
            master_socket: "/run/haproxy/master.sock".into(),
            managed_config: "/etc/haproxy/nomad-connector.cfg".into(),
            state_file: "/var/lib/haproxy/nomad-connector.state".into(),
            host_map: None,
            uri_map: None,
            domain_map_exact: Some("/var/lib/haproxy/nomad-connector-domains.map".into()),
            domain_map_prefix: Some("/var/lib/haproxy/nomad-connector-domains-prefix.map".into()),
            domain_map_regex: Some("/var/lib/haproxy/nomad-connector-domains-regex.map".into()),
            operator_configs: vec!["/etc/haproxy/haproxy.cfg".into()],
            haproxy_bin: "haproxy".into(),
            drain_grace_ms: 30_000,
            reload_delay_ms: 1_000,
            socket_timeout_ms: 10_000,
            reload_timeout_ms: 30_000,
        }
    }
}

/// A path that `""` turns off (TOML has no null).
fn optional_path<'de, D: Deserializer<'de>>(de: D) -> Result<Option<PathBuf>, D::Error> {
    let text = String::deserialize(de)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

impl Config {
    /// The map file of domains of this kind, if configured.
    pub fn domain_map(&self, kind: DomainMatch) -> Option<&Path> {
        match kind {
            DomainMatch::Exact => self.domain_map_exact.as_deref(),
            DomainMatch::Prefix => self.domain_map_prefix.as_deref(),
            DomainMatch::Regex => self.domain_map_regex.as_deref(),
        }
    }

    /// [`Config::drain_grace_ms`] as a duration.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_millis(self.drain_grace_ms)
    }

    /// [`Config::reload_delay_ms`] as a duration.
    pub fn reload_delay(&self) -> Duration {
        Duration::from_millis(self.reload_delay_ms)
    }

    /// [`Config::socket_timeout_ms`] as a duration.
    pub fn socket_timeout(&self) -> Duration {
        Duration::from_millis(self.socket_timeout_ms)
    }

    /// [`Config::reload_timeout_ms`] as a duration.
    pub fn reload_timeout(&self) -> Duration {
        Duration::from_millis(self.reload_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_keys_are_refused() {
        let config: Config = toml::from_str("drain_grace_ms = 5000").unwrap();
        assert_eq!(config.drain_grace(), Duration::from_secs(5));
        assert_eq!(
            config.stats_socket,
            PathBuf::from("/run/haproxy/admin.sock")
        );
        let err = toml::from_str::<Config>("drain_grace = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn domain_maps_default_beside_the_state_file_and_empty_turns_one_off() {
        let config: Config =
            toml::from_str("domain_map_prefix = \"\"\ndomain_map_regex = \"/etc/haproxy/re.map\"")
                .unwrap();
        assert_eq!(
            config.domain_map(DomainMatch::Exact),
            Some(Path::new("/var/lib/haproxy/nomad-connector-domains.map"))
        );
        assert_eq!(config.domain_map(DomainMatch::Prefix), None);
        assert_eq!(
            config.domain_map(DomainMatch::Regex),
            Some(Path::new("/etc/haproxy/re.map"))
        );
    }
}
