//! Nomad's own check results of one allocation: `GET
//! /v1/client/allocation/:alloc_id/checks` (Nomad 1.4+, ACL `read-job`,
//! forwarded by the servers to the allocation's client; `nomad-api.md` §4).
//!
//! The body is an object keyed by check ID (a sha256 over the allocation,
//! group and check fields), each a `structs.CheckQueryResult`. Only checks
//! of `provider = "nomad"` services have results: Nomad runs those itself.

use crate::nomad::watch::wire::nd;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The most of a checks body the connector reads: an allocation has a few
/// checks, and Nomad keeps a bounded output of each, so more means
/// something else answered.
pub const MAX_CHECKS_BODY: usize = 1 << 20;

/// One check's latest result, as Nomad's client ran it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct CheckResult {
    /// The check ID.
    #[serde(rename = "ID", deserialize_with = "nd")]
    pub id: String,
    /// `healthiness`, or `readiness` (`on_update = "ignore"`).
    #[serde(deserialize_with = "nd")]
    pub mode: String,
    /// `success`, `failure` or `pending`.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// The HTTP status of an HTTP check (absent for TCP).
    #[serde(deserialize_with = "nd")]
    pub status_code: u16,
    /// `nomad: http ok`, `nomad: tcp ok`, an HTTP body, or an error.
    #[serde(deserialize_with = "nd")]
    pub output: String,
    /// When it ran, in Unix seconds.
    #[serde(deserialize_with = "nd")]
    pub timestamp: i64,
    /// The allocation's name (`job.group[0]`), not the group's.
    #[serde(deserialize_with = "nd")]
    pub group: String,
    /// The task, for a task-level service.
    #[serde(deserialize_with = "nd")]
    pub task: String,
    /// The service name (interpolated).
    #[serde(deserialize_with = "nd")]
    pub service: String,
    /// The check name.
    #[serde(deserialize_with = "nd")]
    pub check: String,
}

/// What one result says of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// `success`.
    Passing,
    /// `failure`.
    Failing,
    /// `pending` (not run yet), or a status this version does not know.
    Unknown,
}

impl CheckResult {
    /// The result's status.
    pub fn verdict(&self) -> CheckStatus {
        match self.status.as_str() {
            "success" => CheckStatus::Passing,
            "failure" => CheckStatus::Failing,
            _ => CheckStatus::Unknown,
        }
    }
}

/// The results of a checks body, ordered by service and check name.
///
/// # Errors
/// The body is not an object of check results.
pub fn parse(body: &[u8]) -> Result<Vec<CheckResult>, serde_json::Error> {
    let by_id: Option<BTreeMap<String, CheckResult>> = serde_json::from_slice(body)?;
    let mut results: Vec<CheckResult> = by_id.unwrap_or_default().into_values().collect();
    results.sort_by(|a, b| (&a.service, &a.check, &a.id).cmp(&(&b.service, &b.check, &b.id)));
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_shape_parses() {
        let body =
            br#"{"a1ed":{"ID":"a1ed","Mode":"healthiness","Status":"success","StatusCode":200,
            "Output":"nomad: http ok","Timestamp":1690442203,"Group":"example.cache[0]",
            "Task":"redis","Service":"redis","Check":"redis_probe"},
            "0b2c":{"ID":"0b2c","Mode":"readiness","Status":"pending",
            "Output":"nomad: waiting to run","Timestamp":1690442200,"Group":"example.cache[0]",
            "Service":"redis","Check":"alive"}}"#;
        let results = parse(body).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].check, "alive");
        assert_eq!(
            (results[0].verdict(), results[0].status_code),
            (CheckStatus::Unknown, 0)
        );
        assert_eq!(results[1].verdict(), CheckStatus::Passing);
        assert_eq!(results[1].output, "nomad: http ok");
        assert_eq!(results[1].task, "redis");
    }

    #[test]
    fn empty_null_and_wrong_bodies() {
        assert!(parse(b"{}").unwrap().is_empty());
        assert!(parse(b"null").unwrap().is_empty());
        assert!(parse(b"[1]").is_err());
        assert!(parse(br#"{"x":{"Status":3}}"#).is_err());
        let odd = parse(br#"{"x":{"Status":"warning","Output":null}}"#).unwrap();
        assert_eq!(odd[0].verdict(), CheckStatus::Unknown);
    }
}
