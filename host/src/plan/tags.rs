//! The service tags the planner reads: `haproxy.enable`, backend class and
//! name, mode, balance, weight, maxconn, backup, domains and the canary
//! weights (`haproxy.canary*`). Check tags (`haproxy.check.*`) belong to the
//! mapping engine.
//!
//! Parsing is strict: a bad value is left out and described in `problems`,
//! so that one hostile tag never reaches HAProxy and never spoils the rest.

use super::model::{BackendClass, Balance, DomainMatch, Mode};
use crate::vocab::names;

/// The prefix of every tag the connector reads.
pub const PREFIX: &str = "haproxy.";

/// The parsed service tags of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTags {
    /// `haproxy.enable=true`: only such services take part.
    pub enabled: bool,
    /// `haproxy.backend=dynamic|custom` (default dynamic).
    pub class: BackendClass,
    /// `haproxy.backend.name`: the backend's name (required for custom).
    pub backend_name: Option<String>,
    /// `haproxy.mode=http|tcp`.
    pub mode: Option<Mode>,
    /// `haproxy.balance`.
    pub balance: Option<Balance>,
    /// `haproxy.weight`, 0 to 256.
    pub weight: Option<u16>,
    /// `haproxy.maxconn`.
    pub maxconn: Option<u32>,
    /// `haproxy.backup=true`.
    pub backup: bool,
    /// `haproxy.domain`, `haproxy.domain.prefix`, `haproxy.domain.regex`.
    pub domains: Vec<(DomainMatch, String)>,
    /// `haproxy.canary=true`: this registration is a canary's (meant for
    /// the job's `canary_tags`, which Nomad registers until promotion).
    pub canary: bool,
    /// `haproxy.canary.weight`, 0 to 256: a canary's weight.
    pub canary_weight: Option<u16>,
    /// `haproxy.canary.share`, 1 to 99 (percent): the share of the
    /// service's traffic that its canaries get together.
    pub canary_share: Option<u8>,
    /// Refused tags with the reason.
    pub problems: Vec<String>,
}

impl Default for ServiceTags {
    fn default() -> Self {
        ServiceTags {
            enabled: false,
            class: BackendClass::Dynamic,
            backend_name: None,
            mode: None,
            balance: None,
            weight: None,
            maxconn: None,
            backup: false,
            domains: Vec::new(),
            canary: false,
            canary_weight: None,
            canary_share: None,
            problems: Vec::new(),
        }
    }
}

impl ServiceTags {
    /// Parses the `haproxy.*` tags (ignoring `haproxy.check.*`).
    pub fn parse(tags: &[String]) -> ServiceTags {
        let mut out = ServiceTags::default();
        for tag in tags {
            let Some(rest) = tag.strip_prefix(PREFIX) else {
                continue;
            };
            if rest.starts_with("check.") {
                continue;
            }
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            if let Err(reason) = out.set(key, value) {
                out.problems.push(format!(
                    "tag {:?} ignored: {reason}",
                    crate::escape::sanitize(tag, 120)
                ));
            }
        }
        out
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "enable" => self.enabled = boolean(value)?,
            "backend" => {
                self.class = match value {
                    "dynamic" => BackendClass::Dynamic,
                    "custom" => BackendClass::Custom,
                    _ => return Err("expected dynamic or custom".into()),
                }
            }
            "backend.name" => {
                if !names::is_valid(value) {
                    return Err(
                        "not a valid HAProxy backend name (letters, digits, '-', '_', '.', ':')"
                            .into(),
                    );
                }
                self.backend_name = Some(value.to_string());
            }
            "mode" => {
                self.mode = Some(match value {
                    "http" => Mode::Http,
                    "tcp" => Mode::Tcp,
                    _ => return Err("expected http or tcp".into()),
                })
            }
            "balance" => self.balance = Some(Balance::parse(value).map_err(|e| e.to_string())?),
            "weight" => {
                self.weight = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|w| *w <= 256)
                        .ok_or("a weight is 0 to 256")?,
                )
            }
            "maxconn" => {
                self.maxconn = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or("maxconn is 1 to 1000000")?,
                )
            }
            "backup" => self.backup = boolean(value)?,
            "domain" => self
                .domains
                .push((DomainMatch::Exact, host_pattern(value, false)?)),
            "domain.prefix" => self
                .domains
                .push((DomainMatch::Prefix, host_pattern(value, true)?)),
            "domain.regex" => self
                .domains
                .push((DomainMatch::Regex, regex_pattern(value)?)),
            "canary" => self.canary = boolean(value)?,
            "canary.weight" => {
                self.canary_weight = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|w| *w <= 256)
                        .ok_or("a canary weight is 0 to 256; canaries get the default weight")?,
                )
            }
            "canary.share" => {
                self.canary_share = Some(
                    value
                        .strip_suffix('%')
                        .unwrap_or(value)
                        .parse::<u8>()
                        .ok()
                        .filter(|p| (1..=99).contains(p))
                        .ok_or(
                            "a canary share is a percentage from 1 to 99; canaries get the default weight",
                        )?,
                )
            }
            _ => return Err(format!("unknown tag '{PREFIX}{key}'")),
        }
        Ok(())
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "true" | "" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// A host name (or its beginning), lowercased: letters, digits, `-`, `.`.
fn host_pattern(value: &str, prefix: bool) -> Result<String, String> {
    let lower = value.to_ascii_lowercase();
    let valid = !lower.is_empty()
        && lower.len() <= 253
        && lower
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && (prefix || !lower.starts_with(['-', '.']));
    if valid {
        Ok(lower)
    } else {
        Err("a domain holds only letters, digits, '-' and '.' (at most 253)".into())
    }
}

/// A regular expression over the host: printable ASCII without blanks,
/// quotes, `;` or `#`, at most 256 bytes.
fn regex_pattern(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | ';' | '#'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(
            "a domain regex holds printable ASCII without blanks, quotes, ';' or '#' (at most 256)"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> ServiceTags {
        ServiceTags::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_every_service_tag() {
        let t = parse(&[
            "haproxy.enable=true",
            "haproxy.backend=custom",
            "haproxy.backend.name=be_api",
            "haproxy.mode=tcp",
            "haproxy.balance=leastconn",
            "haproxy.weight=50",
            "haproxy.maxconn=100",
            "haproxy.backup=true",
            "haproxy.domain=API.example.com",
            "haproxy.domain.prefix=api.",
            "haproxy.domain.regex=^api[0-9]+\\.example\\.com$",
            "haproxy.check.path=/x",
            "v1",
        ]);
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert!(t.enabled && t.backup);
        assert_eq!(t.class, BackendClass::Custom);
        assert_eq!(t.backend_name.as_deref(), Some("be_api"));
        assert_eq!(
            (t.mode, t.balance),
            (Some(Mode::Tcp), Some(Balance::LeastConn))
        );
        assert_eq!((t.weight, t.maxconn), (Some(50), Some(100)));
        assert_eq!(t.domains[0], (DomainMatch::Exact, "api.example.com".into()));
        assert_eq!(t.domains[2].0, DomainMatch::Regex);
    }

    #[test]
    fn canary_tags_parse_and_bad_values_are_refused() {
        let t = parse(&[
            "haproxy.enable=true",
            "haproxy.canary=true",
            "haproxy.canary.weight=5",
            "haproxy.canary.share=20%",
        ]);
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert!(t.canary);
        assert_eq!((t.canary_weight, t.canary_share), (Some(5), Some(20)));
        let bad = parse(&[
            "haproxy.enable=true",
            "haproxy.canary.weight=257",
            "haproxy.canary.share=0",
            "haproxy.canary.share=100",
            "haproxy.canary.share=ten",
            "haproxy.canary=maybe",
        ]);
        assert_eq!(bad.problems.len(), 5, "{:?}", bad.problems);
        assert!(!bad.canary && bad.canary_weight.is_none() && bad.canary_share.is_none());
        assert!(bad.problems[0].contains("haproxy.canary.weight=257"));
        assert!(bad.problems[0].contains("0 to 256"));
        assert!(bad.problems[3].contains("\"haproxy.canary.share=ten\""));
        assert!(bad.problems[3].contains("1 to 99"));
    }

    #[test]
    fn untagged_services_do_not_take_part() {
        assert!(!parse(&["web", "haproxy.weight=3"]).enabled);
        assert!(!parse(&["haproxy.enable=false"]).enabled);
    }

    #[test]
    fn hostile_values_are_refused_with_a_reason() {
        let t = parse(&[
            "haproxy.enable=true",
            "haproxy.backend.name=a b",
            "haproxy.backend.name=x;del",
            "haproxy.weight=300",
            "haproxy.balance=static-rr",
            "haproxy.domain=evil.com\nbackend x",
            "haproxy.domain.regex=a;b",
            "haproxy.frobnicate=1",
        ]);
        assert!(t.enabled);
        assert_eq!(t.problems.len(), 7, "{:?}", t.problems);
        assert!(t.backend_name.is_none() && t.weight.is_none() && t.balance.is_none());
        assert!(t.domains.is_empty());
        assert!(
            t.problems[3].contains("forbids servers added at runtime"),
            "{}",
            t.problems[3]
        );
        assert!(
            t.problems[4].contains("\\n"),
            "control characters are escaped in logs"
        );
        assert!(t.problems[6].contains("unknown tag 'haproxy.frobnicate'"));
    }
}
