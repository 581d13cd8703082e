//! `haproxy.check.*` tags: parsed strictly, applied before the plugin (as its
//! input) and again after it (so that tags always win, as ADR-003 says).

use hnc_core::builtin::common::millis;
use hnc_core::model::{BackendCheck, CheckPlan, Header, NomadCheck};

/// The prefix of every check tag.
pub const PREFIX: &str = "haproxy.check.";

/// The check tags of one service, parsed. Invalid tags are left out and
/// described in `problems`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckTags {
    /// `haproxy.check.type`: the check type, choosing the plugin.
    pub check_type: Option<String>,
    /// `haproxy.check.path`.
    pub path: Option<String>,
    /// `haproxy.check.method`.
    pub method: Option<String>,
    /// `haproxy.check.host`: the Host header (and SNI over TLS).
    pub host: Option<String>,
    /// `haproxy.check.interval`, in ms.
    pub interval_ms: Option<u64>,
    /// `haproxy.check.timeout`, in ms.
    pub timeout_ms: Option<u64>,
    /// `haproxy.check.rise`.
    pub rise: Option<u32>,
    /// `haproxy.check.fall`.
    pub fall: Option<u32>,
    /// `haproxy.check.port`.
    pub port: Option<u16>,
    /// `haproxy.check.disabled=true`: no check at all.
    pub disabled: bool,
    /// `haproxy.check.grpc_service`.
    pub grpc_service: Option<String>,
    /// `haproxy.check.grpc_use_tls`.
    pub grpc_use_tls: Option<bool>,
    /// Tags that were refused, with the reason.
    pub problems: Vec<String>,
    /// The accepted tags, as written, for `explain`.
    pub applied: Vec<String>,
}

impl CheckTags {
    /// Parses the `haproxy.check.*` tags among a service's tags.
    pub fn parse(tags: &[String]) -> CheckTags {
        let mut out = CheckTags::default();
        for tag in tags {
            let Some(rest) = tag.strip_prefix(PREFIX) else {
                continue;
            };
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            match out.set(key, value) {
                Ok(()) => out.applied.push(tag.clone()),
                Err(reason) => out.problems.push(format!(
                    "tag {:?} ignored: {reason}",
                    crate::escape::sanitize(tag, 120)
                )),
            }
        }
        out
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "type" => self.check_type = Some(word(value, 16, "-_")?.to_ascii_lowercase()),
            "path" => {
                if !value.starts_with('/') {
                    return Err("a path must start with '/'".into());
                }
                self.path = Some(value.to_string());
            }
            "method" => self.method = Some(word(value, 16, "")?.to_ascii_uppercase()),
            "host" => self.host = Some(word(value, 253, "-.:[]")?.to_string()),
            "interval" => self.interval_ms = Some(duration_ms(value)?),
            "timeout" => self.timeout_ms = Some(duration_ms(value)?),
            "rise" => self.rise = Some(count(value)?),
            "fall" => self.fall = Some(count(value)?),
            "port" => {
                self.port = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or("a port must be 1 to 65535")?,
                )
            }
            "disabled" => self.disabled = boolean(value)?,
            "grpc_service" => self.grpc_service = Some(word(value, 200, "-_./")?.to_string()),
            "grpc_use_tls" => self.grpc_use_tls = Some(boolean(value)?),
            _ => return Err(format!("unknown check tag '{PREFIX}{key}'")),
        }
        Ok(())
    }

    /// Applies the tags to the check a plugin will see; `None` stays `None`
    /// unless `haproxy.check.type` declares a check.
    pub fn apply_to_input(&self, check: Option<NomadCheck>) -> Option<NomadCheck> {
        let mut check = match (check, &self.check_type) {
            (Some(mut c), Some(kind)) => {
                c.check_type.clone_from(kind);
                c
            }
            (Some(c), None) => c,
            (None, Some(kind)) => NomadCheck {
                name: format!("{PREFIX}type={kind}"),
                check_type: kind.clone(),
                path: "/".into(),
                interval_ms: 10_000,
                timeout_ms: 2_000,
                ..NomadCheck::default()
            },
            (None, None) => return None,
        };
        if let Some(path) = &self.path {
            check.path.clone_from(path);
        }
        if let Some(method) = &self.method {
            check.method.clone_from(method);
        }
        if let Some(host) = &self.host {
            check
                .headers
                .retain(|h| !h.name.eq_ignore_ascii_case("host"));
            check.headers.push(Header {
                name: "Host".into(),
                values: vec![host.clone()],
            });
        }
        if let Some(ms) = self.interval_ms {
            check.interval_ms = ms;
        }
        if let Some(ms) = self.timeout_ms {
            check.timeout_ms = ms;
        }
        if let Some(port) = self.port {
            check.check_port = Some(port);
        }
        if let Some(service) = &self.grpc_service {
            check.grpc_service.clone_from(service);
        }
        if let Some(tls) = self.grpc_use_tls {
            check.grpc_use_tls = tls;
        }
        Some(check)
    }

    /// Applies the tags to a plugin's answer, so that they win whatever the
    /// plugin did. Returns notes on tags that do not fit the answer.
    pub fn apply_to_output(&self, plan: &mut CheckPlan) -> Vec<String> {
        let mut notes = Vec::new();
        match &mut plan.backend {
            BackendCheck::Http(http) => {
                if let Some(path) = &self.path {
                    http.uri.clone_from(path);
                }
                if let Some(method) = &self.method {
                    http.method.clone_from(method);
                }
                if let Some(host) = &self.host {
                    http.headers
                        .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
                    http.headers.push(("Host".into(), host.clone()));
                    http.default_host = false;
                }
            }
            _ => {
                for (tag, set) in [
                    ("path", self.path.is_some()),
                    ("method", self.method.is_some()),
                    ("host", self.host.is_some()),
                ] {
                    if set {
                        notes.push(format!(
                            "{PREFIX}{tag} ignored: the check is not an HTTP check"
                        ));
                    }
                }
            }
        }
        if let Some(ms) = self.interval_ms {
            plan.server.inter_ms = Some(millis(ms));
        }
        if let Some(ms) = self.timeout_ms {
            plan.timeout_check_ms = Some(millis(ms));
        }
        if let Some(n) = self.rise {
            plan.server.rise = Some(n);
        }
        if let Some(n) = self.fall {
            plan.server.fall = Some(n);
        }
        if let Some(port) = self.port {
            plan.server.port = Some(port);
        }
        if self.disabled {
            plan.server.enabled = false;
        }
        notes
    }
}

fn word<'a>(value: &'a str, max: usize, extra: &str) -> Result<&'a str, String> {
    if value.is_empty() || value.len() > max {
        return Err(format!("the value must be 1 to {max} characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    {
        return Err("the value holds characters outside its grammar".into());
    }
    Ok(value)
}

fn count(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| "a count must be 1 to 1000".into())
}

fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "true" | "" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// A Go-style duration with a unit (`500ms`, `10s`, `1m`, `1h`), at least 1 ms.
fn duration_ms(value: &str) -> Result<u64, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("a duration needs a unit: ms, s, m or h")?;
    let (number, unit) = value.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "a duration starts with a number")?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err("a duration's unit is ms, s, m or h".into()),
    };
    match n.checked_mul(factor) {
        Some(ms) if (1..=86_400_000).contains(&ms) => Ok(ms),
        _ => Err("a duration must be from 1ms to 24h".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hnc_core::model::HttpCheck;

    fn tags(list: &[&str]) -> CheckTags {
        CheckTags::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_every_documented_tag() {
        let t = tags(&[
            "haproxy.check.type=http",
            "haproxy.check.path=/ready?x=1",
            "haproxy.check.method=head",
            "haproxy.check.host=api.example.com",
            "haproxy.check.interval=5s",
            "haproxy.check.timeout=500ms",
            "haproxy.check.rise=2",
            "haproxy.check.fall=3",
            "haproxy.check.port=9000",
            "haproxy.check.disabled=false",
            "unrelated",
        ]);
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.check_type.as_deref(), Some("http"));
        assert_eq!(t.method.as_deref(), Some("HEAD"));
        assert_eq!((t.interval_ms, t.timeout_ms), (Some(5_000), Some(500)));
        assert_eq!((t.rise, t.fall, t.port), (Some(2), Some(3), Some(9000)));
        assert!(!t.disabled);
        assert_eq!(t.applied.len(), 10);
    }

    #[test]
    fn bad_tags_are_refused_with_a_reason() {
        let t = tags(&[
            "haproxy.check.interval=10",
            "haproxy.check.path=health",
            "haproxy.check.port=0",
            "haproxy.check.host=a;b",
            "haproxy.check.bogus=1",
        ]);
        assert_eq!(t.problems.len(), 5, "{:?}", t.problems);
        assert!(t.problems[0].contains("needs a unit"));
        assert!(t.problems[4].contains("unknown check tag 'haproxy.check.bogus'"));
        assert_eq!(
            t,
            CheckTags {
                problems: t.problems.clone(),
                ..CheckTags::default()
            }
        );
    }

    #[test]
    fn type_tag_declares_a_check_when_the_job_has_none() {
        let t = tags(&[
            "haproxy.check.type=grpc",
            "haproxy.check.grpc_service=shop.Cart",
        ]);
        let check = t.apply_to_input(None).unwrap();
        assert_eq!(check.check_type, "grpc");
        assert_eq!(check.grpc_service, "shop.Cart");
        assert!(tags(&[]).apply_to_input(None).is_none());
    }

    #[test]
    fn type_tag_keeps_the_job_timing() {
        let job = NomadCheck {
            check_type: "tcp".into(),
            interval_ms: 3_000,
            ..NomadCheck::default()
        };
        let check = tags(&["haproxy.check.type=grpc"])
            .apply_to_input(Some(job))
            .unwrap();
        assert_eq!(
            (check.check_type.as_str(), check.interval_ms),
            ("grpc", 3_000)
        );
    }

    #[test]
    fn output_overrides_win_and_misfits_are_noted() {
        let t = tags(&[
            "haproxy.check.path=/x",
            "haproxy.check.host=h",
            "haproxy.check.disabled=true",
        ]);
        let mut plan = CheckPlan {
            backend: BackendCheck::Http(HttpCheck {
                uri: "/y".into(),
                default_host: true,
                ..HttpCheck::default()
            }),
            ..CheckPlan::tcp_fallback()
        };
        assert!(t.apply_to_output(&mut plan).is_empty());
        let BackendCheck::Http(http) = &plan.backend else {
            panic!()
        };
        assert_eq!(http.uri, "/x");
        assert_eq!(http.headers, vec![("Host".to_string(), "h".to_string())]);
        assert!(!http.default_host);
        assert!(!plan.server.enabled);

        let mut tcp = CheckPlan::tcp_fallback();
        let notes = tags(&["haproxy.check.path=/x"]).apply_to_output(&mut tcp);
        assert_eq!(
            notes,
            vec!["haproxy.check.path ignored: the check is not an HTTP check"]
        );
    }
}
