//! `[nomad]` of the config file, merged with the Nomad CLI's environment variables.
//!
//! Precedence: a key set in the file wins over its `NOMAD_*` variable, which
//! wins over the default. The environment is read through [`Env`] so tests
//! can inject one.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[nomad]`: how to reach Nomad, what to watch, and the client's timing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Nomad's HTTP API: `http://`, `https://` or `unix:///path`.
    /// Env `NOMAD_ADDR`; default `http://127.0.0.1:4646`.
    pub address: Option<String>,
    /// ACL token secret, sent as `X-Nomad-Token`. Env `NOMAD_TOKEN`; default
    /// none (the anonymous policy). Prefer the variable over putting a secret in the file.
    pub token: Option<String>,
    /// Region, sent as `region=`. Env `NOMAD_REGION`; default none (the agent's own).
    pub region: Option<String>,
    /// Namespaces to watch; `["*"]` means every namespace the token may read.
    /// Env `NOMAD_NAMESPACE` (one namespace); default `["*"]`. Nomad 1.9.6+
    /// lets a `*` event stream through only with `read-job` in *every*
    /// namespace; a token limited to some must list them here.
    pub namespaces: Option<Vec<String>>,
    /// CA certificate (PEM) that verifies Nomad's certificate; replaces the
    /// system roots. Env `NOMAD_CACERT`; default none.
    pub ca_cert: Option<PathBuf>,
    /// A directory of CA certificates (PEM files). Env `NOMAD_CAPATH`; default none.
    pub ca_path: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS. Env `NOMAD_CLIENT_CERT`; default none.
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM). Env `NOMAD_CLIENT_KEY`; default none.
    pub client_key: Option<PathBuf>,
    /// The name Nomad's certificate is verified against (and sent as SNI),
    /// e.g. `server.global.nomad`. Env `NOMAD_TLS_SERVER_NAME`; default the address's host.
    pub tls_server_name: Option<String>,
    /// Accept any certificate: for tests only. Env `NOMAD_SKIP_VERIFY`; default false.
    pub skip_verify: Option<bool>,
    /// `user[:password]` for HTTP basic auth (a proxy in front of Nomad).
    /// Env `NOMAD_HTTP_AUTH`; default none.
    pub http_auth: Option<String>,
    /// Take checks from job specs. `false` leaves tags and TCP
    /// checks and makes no job or allocation reads. Default true.
    pub job_spec_checks: bool,
    /// How long a job version's spec is kept. Specs of one version never
    /// change, so this only bounds memory. Default `15m`.
    #[serde(deserialize_with = "duration")]
    pub cache_ttl: Duration,
    /// How long a failed job-spec read is remembered before it is retried
    /// (its instances get TCP checks meanwhile). Default `30s`.
    #[serde(deserialize_with = "duration")]
    pub negative_cache_ttl: Duration,
    /// First retry delay after a failure (`Permission denied` included);
    /// doubles per failure in a row, with jitter, and a successful list
    /// starts it over. Shorter notices a recovered Nomad sooner. Default
    /// `250ms`.
    #[serde(deserialize_with = "duration")]
    pub backoff_min: Duration,
    /// Cap of the retry delay: the longest a recovered Nomad or a fixed
    /// token goes unnoticed. Longer spares a Nomad that is down. Default
    /// `60s`.
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// The event stream is re-opened when nothing (not even a heartbeat,
    /// sent every 30 s) arrives for this long. Default `45s`.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Time-out of each list and job read (not of the stream). Default `30s`.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// The largest event-stream frame read (one line: a job registration
    /// carries the whole job). A larger one drops the stream and re-lists.
    /// Default 64 MiB: far above real jobs, and a bound on what a broken or
    /// hostile server can make the connector buffer.
    pub max_frame_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: None,
            token: None,
            region: None,
            namespaces: None,
            ca_cert: None,
            ca_path: None,
            client_cert: None,
            client_key: None,
            tls_server_name: None,
            skip_verify: None,
            http_auth: None,
            job_spec_checks: true,
            cache_ttl: Duration::from_secs(15 * 60),
            negative_cache_ttl: Duration::from_secs(30),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(45),
            request_timeout: Duration::from_secs(30),
            max_frame_bytes: super::watch::frames::DEFAULT_MAX_FRAME,
        }
    }
}

/// The smallest `max_frame_bytes` accepted: below it ordinary jobs would
/// be refused and every stream would end in a re-list.
const MIN_FRAME_CAP: usize = 64 << 10;

/// Where Nomad listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `http://` or `https://` base URL, without a trailing `/`.
    Tcp(String),
    /// A Unix socket (`unix:///path`), spoken to in plain HTTP.
    Unix(PathBuf),
}

/// TLS settings, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA file.
    pub ca_cert: Option<PathBuf>,
    /// CA directory.
    pub ca_path: Option<PathBuf>,
    /// Client certificate and key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Name to verify and send as SNI.
    pub server_name: Option<String>,
    /// Skip verification.
    pub skip_verify: bool,
}

/// `[nomad]` after merging with the environment and validating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where Nomad listens.
    pub address: Address,
    /// ACL token.
    pub token: Option<String>,
    /// Region parameter.
    pub region: Option<String>,
    /// Namespaces to watch (`["*"]`: all readable).
    pub namespaces: Vec<String>,
    /// TLS.
    pub tls: Tls,
    /// Basic auth (user, password).
    pub http_auth: Option<(String, Option<String>)>,
    /// Job-spec checks on.
    pub job_spec_checks: bool,
    /// Positive cache TTL.
    pub cache_ttl: Duration,
    /// Negative cache TTL.
    pub negative_cache_ttl: Duration,
    /// Back-off floor.
    pub backoff_min: Duration,
    /// Back-off cap.
    pub backoff_max: Duration,
    /// Stream idle time-out.
    pub idle_timeout: Duration,
    /// Per-request time-out.
    pub request_timeout: Duration,
    /// Cap on one event-stream frame, in bytes.
    pub max_frame_bytes: usize,
}

/// A `[nomad]` value (or its variable) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nomad.{key}: {message}")]
pub struct ConfigError {
    /// The key, with its variable when it came from there (`address (NOMAD_ADDR)`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Read access to environment variables.
pub trait Env {
    /// The variable's value; unset and empty are both `None`.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

impl Config {
    /// Merges the Nomad CLI's variables under the file's keys and validates.
    ///
    /// # Errors
    /// A bad address, namespace list, boolean, basic-auth value, a client
    /// certificate without its key, or inconsistent timings.
    pub fn resolve(&self, env: &dyn Env) -> Result<Settings, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            key: key.to_string(),
            message,
        };
        let pick = |file: &Option<String>, var: &str| file.clone().or_else(|| env.var(var));
        let path = |file: &Option<PathBuf>, var: &str| {
            file.clone().or_else(|| env.var(var).map(PathBuf::from))
        };
        let address =
            pick(&self.address, "NOMAD_ADDR").unwrap_or_else(|| "http://127.0.0.1:4646".into());
        let address = parse_address(&address).map_err(|m| err("address (NOMAD_ADDR)", m))?;
        let namespaces = match &self.namespaces {
            Some(list) => list.clone(),
            None => vec![env.var("NOMAD_NAMESPACE").unwrap_or_else(|| "*".into())],
        };
        check_namespaces(&namespaces).map_err(|m| err("namespaces (NOMAD_NAMESPACE)", m))?;
        let skip_verify = match (self.skip_verify, env.var("NOMAD_SKIP_VERIFY")) {
            (Some(b), _) => b,
            (None, Some(v)) => parse_go_bool(&v).ok_or_else(|| {
                err(
                    "skip_verify (NOMAD_SKIP_VERIFY)",
                    format!("{v:?} is not a boolean"),
                )
            })?,
            (None, None) => false,
        };
        let client_cert = match (
            path(&self.client_cert, "NOMAD_CLIENT_CERT"),
            path(&self.client_key, "NOMAD_CLIENT_KEY"),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(err(
                    "client_cert/client_key",
                    "set both or neither (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY)".into(),
                ));
            }
        };
        let http_auth = pick(&self.http_auth, "NOMAD_HTTP_AUTH").map(|v| match v.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (v, None),
        });
        if http_auth.as_ref().is_some_and(|(u, _)| u.is_empty()) {
            return Err(err("http_auth (NOMAD_HTTP_AUTH)", "empty user name".into()));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err(err(
                "backoff_min",
                "must be above zero and at most backoff_max".into(),
            ));
        }
        for (key, d) in [
            ("cache_ttl", self.cache_ttl),
            ("negative_cache_ttl", self.negative_cache_ttl),
            ("idle_timeout", self.idle_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(err(key, "must be above zero".into()));
            }
        }
        if self.max_frame_bytes < MIN_FRAME_CAP {
            return Err(err(
                "max_frame_bytes",
                format!("must be at least {MIN_FRAME_CAP} (a job registration is one frame)"),
            ));
        }
        Ok(Settings {
            address,
            token: pick(&self.token, "NOMAD_TOKEN"),
            region: pick(&self.region, "NOMAD_REGION"),
            namespaces,
            tls: Tls {
                ca_cert: path(&self.ca_cert, "NOMAD_CACERT"),
                ca_path: path(&self.ca_path, "NOMAD_CAPATH"),
                client_cert,
                server_name: pick(&self.tls_server_name, "NOMAD_TLS_SERVER_NAME"),
                skip_verify,
            },
            http_auth,
            job_spec_checks: self.job_spec_checks,
            cache_ttl: self.cache_ttl,
            negative_cache_ttl: self.negative_cache_ttl,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
            max_frame_bytes: self.max_frame_bytes,
        })
    }
}

fn parse_address(s: &str) -> Result<Address, String> {
    if let Some(path) = s.strip_prefix("unix://") {
        if path.is_empty() {
            return Err("unix:// needs a socket path".into());
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?}: expected http://, https:// or unix://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || s.contains(char::is_whitespace) {
        return Err(format!("{s:?}: no host"));
    }
    Ok(Address::Tcp(s.trim_end_matches('/').to_string()))
}

fn check_namespaces(list: &[String]) -> Result<(), String> {
    if list.is_empty() {
        return Err("empty; use [\"*\"] for every readable namespace".into());
    }
    if list.len() > 1 && list.iter().any(|n| n == "*") {
        return Err("\"*\" already means every namespace; list it alone".into());
    }
    let bad = list.iter().find(|n| {
        n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
    });
    match bad {
        Some(n) => Err(format!("{n:?} is not a namespace name")),
        None => Ok(()),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A Go-style duration string: `250ms`, `30s`, `15m`, `1h`, or a sum (`1m30s`).
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let d = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(d)?;
        rest = &rest[unit..];
    }
    Some(total)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration (e.g. \"250ms\", \"30s\", \"15m\")"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_nomad_cli() {
        let s = Config::default().resolve(&env(&[])).unwrap();
        assert_eq!(s.address, Address::Tcp("http://127.0.0.1:4646".into()));
        assert_eq!(s.namespaces, ["*"]);
        assert!(s.job_spec_checks && s.token.is_none() && !s.tls.skip_verify);
    }

    #[test]
    fn every_variable_is_read_and_the_file_wins() {
        let e = env(&[
            ("NOMAD_ADDR", "unix:///run/nomad.sock"),
            ("NOMAD_TOKEN", "secret"),
            ("NOMAD_NAMESPACE", "apps"),
            ("NOMAD_REGION", "eu"),
            ("NOMAD_CACERT", "/ca.pem"),
            ("NOMAD_CAPATH", "/cas"),
            ("NOMAD_CLIENT_CERT", "/c.pem"),
            ("NOMAD_CLIENT_KEY", "/k.pem"),
            ("NOMAD_TLS_SERVER_NAME", "server.eu.nomad"),
            ("NOMAD_SKIP_VERIFY", "1"),
            ("NOMAD_HTTP_AUTH", "u:p:q"),
        ]);
        let s = Config::default().resolve(&e).unwrap();
        assert_eq!(s.address, Address::Unix("/run/nomad.sock".into()));
        assert_eq!(s.token.as_deref(), Some("secret"));
        assert_eq!(s.namespaces, ["apps"]);
        assert_eq!(s.region.as_deref(), Some("eu"));
        assert_eq!(s.tls.ca_path, Some("/cas".into()));
        assert_eq!(s.tls.client_cert, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(s.tls.server_name.as_deref(), Some("server.eu.nomad"));
        assert!(s.tls.skip_verify);
        assert_eq!(s.http_auth, Some(("u".into(), Some("p:q".into()))));

        let file: Config = toml::from_str(
            r#"address = "https://nomad:4646/"
            token = "file"
            namespaces = ["a", "b"]
            skip_verify = false
            job_spec_checks = false
            backoff_max = "2m""#,
        )
        .unwrap();
        let s = file.resolve(&e).unwrap();
        assert_eq!(s.address, Address::Tcp("https://nomad:4646".into()));
        assert_eq!(s.token.as_deref(), Some("file"));
        assert_eq!(s.namespaces, ["a", "b"]);
        assert!(!s.tls.skip_verify && !s.job_spec_checks);
        assert_eq!(s.backoff_max, Duration::from_secs(120));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = |pairs: &[(&str, &str)]| Config::default().resolve(&env(pairs)).unwrap_err();
        assert!(
            e(&[("NOMAD_ADDR", "127.0.0.1:4646")])
                .key
                .contains("NOMAD_ADDR")
        );
        assert!(
            e(&[("NOMAD_SKIP_VERIFY", "yes")])
                .key
                .contains("skip_verify")
        );
        assert!(
            e(&[("NOMAD_CLIENT_CERT", "/c.pem")])
                .key
                .contains("client_key")
        );
        let both = Config {
            namespaces: Some(vec!["*".into(), "a".into()]),
            ..Config::default()
        };
        assert!(both.resolve(&env(&[])).is_err());
        assert!(toml::from_str::<Config>("cache_ttl = \"soon\"").is_err());
        assert!(toml::from_str::<Config>("nomad_addr = \"x\"").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration(""), None);
    }
}
