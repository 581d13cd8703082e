//! Nomad job JSON (`GET /v1/job/:id`, an allocation's embedded `Job`) → services and their checks.
//!
//! Tolerant as the API demands (`reference/nomad-api.md` §3): every field is
//! optional, unknown fields are ignored, `null` means empty, durations are
//! int64 nanoseconds. Names and fields may still hold `${...}` placeholders
//! that only the Nomad client interpolates.

use hnc_core::model::{Header, NomadCheck};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A job version, reduced to what the connector needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSpec {
    /// Job ID.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Version.
    pub version: u64,
    /// Task groups with their services.
    pub groups: Vec<GroupSpec>,
}

/// A task group's services (group-level and task-level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSpec {
    /// Group name.
    pub name: String,
    /// Its services, group-level first.
    pub services: Vec<ServiceSpec>,
}

/// One `service` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The name as written (may hold `${...}`).
    pub name: String,
    /// The task, empty for a group-level service.
    pub task: String,
    /// The service's port label.
    pub port_label: String,
    /// `nomad` or `consul`.
    pub provider: String,
    /// Tags as written.
    pub tags: Vec<String>,
    /// Its checks, converted.
    pub checks: Vec<NomadCheck>,
}

/// The job JSON could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("job JSON: {0}")]
pub struct ParseError(#[from] serde_json::Error);

impl JobSpec {
    /// Parses a job as Nomad serves it.
    ///
    /// # Errors
    /// The text is not JSON, or a field has the wrong JSON type.
    pub fn from_json(text: &str) -> Result<JobSpec, ParseError> {
        let raw: RawJob = serde_json::from_str(text)?;
        Ok(raw.into())
    }

    /// Parses an already-decoded job value.
    ///
    /// # Errors
    /// A field has the wrong JSON type.
    pub fn from_value(value: serde_json::Value) -> Result<JobSpec, ParseError> {
        let raw: RawJob = serde_json::from_value(value)?;
        Ok(raw.into())
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupSpec> {
        self.groups.iter().find(|g| g.name == name)
    }
}

impl ServiceSpec {
    /// The check HAProxy should run, when the service declares several:
    /// HAProxy runs one check per server, so take the most specific
    /// healthiness check (http, grpc, tcp, then anything else), the first
    /// of a kind winning. Readiness-only checks (`on_update = "ignore"`) come
    /// last. Returns the index into `checks`.
    pub fn primary_check(&self) -> Option<usize> {
        let rank = |c: &NomadCheck| {
            let kind = match c.check_type.to_ascii_lowercase().as_str() {
                "http" => 0,
                "grpc" => 1,
                "tcp" => 2,
                _ => 3,
            };
            let readiness = usize::from(c.on_update == "ignore");
            readiness * 10 + kind
        };
        (0..self.checks.len()).min_by_key(|&i| (rank(&self.checks[i]), i))
    }

    /// Every check, as HAProxy runs them: the [`primary_check`] first
    /// (the one `haproxy.check.*` tags apply to), then the others in the
    /// order the job writes them. Nomad requires every one to pass.
    ///
    /// [`primary_check`]: ServiceSpec::primary_check
    pub fn ordered_checks(&self) -> Vec<&NomadCheck> {
        let Some(primary) = self.primary_check() else {
            return Vec::new();
        };
        std::iter::once(&self.checks[primary])
            .chain(
                self.checks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != primary)
                    .map(|(_, c)| c),
            )
            .collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawJob {
    #[serde(rename = "ID")]
    id: Option<String>,
    namespace: Option<String>,
    version: Option<u64>,
    task_groups: Option<Vec<RawGroup>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawGroup {
    name: Option<String>,
    services: Option<Vec<RawService>>,
    tasks: Option<Vec<RawTask>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawTask {
    name: Option<String>,
    services: Option<Vec<RawService>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawService {
    name: Option<String>,
    port_label: Option<String>,
    provider: Option<String>,
    tags: Option<Vec<String>>,
    checks: Option<Vec<RawCheck>>,
    on_update: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawCheck {
    name: Option<String>,
    #[serde(rename = "Type")]
    check_type: Option<String>,
    command: Option<String>,
    args: Option<Vec<String>>,
    path: Option<String>,
    protocol: Option<String>,
    port_label: Option<String>,
    interval: Option<i64>,
    timeout: Option<i64>,
    method: Option<String>,
    header: Option<BTreeMap<String, Option<Vec<String>>>>,
    body: Option<String>,
    #[serde(rename = "TLSSkipVerify")]
    tls_skip_verify: Option<bool>,
    #[serde(rename = "TLSServerName")]
    tls_server_name: Option<String>,
    #[serde(rename = "GRPCService")]
    grpc_service: Option<String>,
    #[serde(rename = "GRPCUseTLS")]
    grpc_use_tls: Option<bool>,
    success_before_passing: Option<u32>,
    failures_before_critical: Option<u32>,
    failures_before_warning: Option<u32>,
    on_update: Option<String>,
}

impl From<RawJob> for JobSpec {
    fn from(raw: RawJob) -> JobSpec {
        let groups = raw
            .task_groups
            .unwrap_or_default()
            .into_iter()
            .map(|g| {
                let mut services: Vec<ServiceSpec> = g
                    .services
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| service(s, ""))
                    .collect();
                for task in g.tasks.unwrap_or_default() {
                    let task_name = task.name.unwrap_or_default();
                    services.extend(
                        task.services
                            .unwrap_or_default()
                            .into_iter()
                            .map(|s| service(s, &task_name)),
                    );
                }
                GroupSpec {
                    name: g.name.unwrap_or_default(),
                    services,
                }
            })
            .collect();
        JobSpec {
            id: raw.id.unwrap_or_default(),
            namespace: raw
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into()),
            version: raw.version.unwrap_or_default(),
            groups,
        }
    }
}

fn service(raw: RawService, task: &str) -> ServiceSpec {
    let on_update = raw.on_update.unwrap_or_default();
    ServiceSpec {
        name: raw.name.unwrap_or_default(),
        task: task.to_string(),
        port_label: raw.port_label.unwrap_or_default(),
        provider: raw
            .provider
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "consul".into()),
        tags: raw.tags.unwrap_or_default(),
        checks: raw
            .checks
            .unwrap_or_default()
            .into_iter()
            .map(|c| check(c, &on_update))
            .collect(),
    }
}

/// Nanoseconds (Nomad's `time.Duration`) to milliseconds; negative is 0.
fn ns_to_ms(ns: Option<i64>) -> u64 {
    u64::try_from(ns.unwrap_or_default()).unwrap_or_default() / 1_000_000
}

fn check(raw: RawCheck, service_on_update: &str) -> NomadCheck {
    let headers = raw
        .header
        .unwrap_or_default()
        .into_iter()
        .map(|(name, values)| Header {
            name,
            values: values.unwrap_or_default(),
        })
        .collect();
    NomadCheck {
        name: raw.name.unwrap_or_default(),
        check_type: raw.check_type.unwrap_or_default().to_ascii_lowercase(),
        path: raw.path.unwrap_or_default(),
        method: raw.method.unwrap_or_default(),
        protocol: raw.protocol.unwrap_or_default(),
        headers,
        body: raw.body.unwrap_or_default(),
        port_label: raw.port_label.unwrap_or_default(),
        check_port: None,
        interval_ms: ns_to_ms(raw.interval),
        timeout_ms: ns_to_ms(raw.timeout),
        tls_skip_verify: raw.tls_skip_verify.unwrap_or_default(),
        tls_server_name: raw.tls_server_name.unwrap_or_default(),
        grpc_service: raw.grpc_service.unwrap_or_default(),
        grpc_use_tls: raw.grpc_use_tls.unwrap_or_default(),
        command: raw.command.unwrap_or_default(),
        args: raw.args.unwrap_or_default(),
        success_before_passing: raw.success_before_passing.unwrap_or_default(),
        failures_before_critical: raw.failures_before_critical.unwrap_or_default(),
        failures_before_warning: raw.failures_before_warning.unwrap_or_default(),
        on_update: raw
            .on_update
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| service_on_update.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../../examples/jobs/nomad-docs-read-job.json");

    #[test]
    fn reads_the_nomad_docs_sample() {
        let job = JobSpec::from_json(SAMPLE).unwrap();
        assert_eq!(
            (job.id.as_str(), job.namespace.as_str()),
            ("example", "apps")
        );
        let cache = job.group("cache").unwrap();
        let redis = cache
            .services
            .iter()
            .find(|s| s.name == "cache-redis")
            .unwrap();
        assert_eq!(
            (redis.task.as_str(), redis.port_label.as_str()),
            ("redis", "db")
        );
        let check = &redis.checks[0];
        assert_eq!(
            (
                check.check_type.as_str(),
                check.interval_ms,
                check.timeout_ms
            ),
            ("tcp", 10_000, 2_000)
        );
    }

    #[test]
    fn nulls_and_missing_fields_are_empty() {
        let job = JobSpec::from_json(
            r#"{"ID":"j","TaskGroups":[{"Name":"g","Services":[{"Name":"s","Tags":null,
            "Checks":[{"Type":"HTTP","Header":{"Host":["a"],"X":null},"Interval":-5}]}],"Tasks":null}]}"#,
        )
        .unwrap();
        let s = &job.groups[0].services[0];
        assert_eq!(job.namespace, "default");
        assert_eq!(s.provider, "consul");
        assert!(s.tags.is_empty());
        assert_eq!(s.checks[0].check_type, "http");
        assert_eq!(s.checks[0].interval_ms, 0);
        assert_eq!(s.checks[0].header("host"), Some(&["a".to_string()][..]));
    }

    #[test]
    fn wrong_json_types_are_an_error_not_a_panic() {
        assert!(JobSpec::from_json(r#"{"TaskGroups":"nope"}"#).is_err());
        assert!(JobSpec::from_json("Permission denied").is_err());
    }

    #[test]
    fn primary_check_prefers_specific_healthiness_checks() {
        let c = |t: &str, on_update: &str| NomadCheck {
            check_type: t.into(),
            on_update: on_update.into(),
            ..NomadCheck::default()
        };
        let s = ServiceSpec {
            checks: vec![
                c("tcp", ""),
                c("http", "ignore"),
                c("script", ""),
                c("http", ""),
            ],
            ..ServiceSpec::default()
        };
        assert_eq!(s.primary_check(), Some(3));
        assert_eq!(ServiceSpec::default().primary_check(), None);
        let order: Vec<(&str, &str)> = s
            .ordered_checks()
            .iter()
            .map(|c| (c.check_type.as_str(), c.on_update.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("http", ""),
                ("tcp", ""),
                ("http", "ignore"),
                ("script", "")
            ]
        );
    }
}
