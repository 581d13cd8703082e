//! The client's check store: the latest result of each Nomad-native check of
//! an allocation, as `GET /v1/client/allocation/:id/checks` serves it
//! (`structs.CheckQueryResult`, keyed by check ID). Nomad runs the checks;
//! here the tests set their results ([`CheckOutcome`]), and a check with no
//! result yet is `pending`, as Nomad's are before their first run.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::allocs::AllocRecord;
use super::registrations::with_specs;
use super::{array_field, str_field};

/// A check's result as a test sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// `success`, `failure` or `pending`.
    pub status: String,
    /// What Nomad's checker wrote (`nomad: http ok`, a response body, an error).
    pub output: String,
    /// The HTTP status of an HTTP check; `None` for TCP (omitted).
    pub status_code: Option<u16>,
}

impl CheckOutcome {
    /// An HTTP check that got a 200: `nomad: http ok`.
    pub fn http_ok() -> CheckOutcome {
        CheckOutcome {
            status: "success".into(),
            output: "nomad: http ok".into(),
            status_code: Some(200),
        }
    }

    /// An HTTP check that got `code` (≥ 400) with `body` (Nomad's output is the body).
    pub fn http_failed(code: u16, body: &str) -> CheckOutcome {
        CheckOutcome {
            status: "failure".into(),
            output: body.into(),
            status_code: Some(code),
        }
    }
}

/// Results set by tests: (alloc ID, service name, check name) → (result, Unix seconds).
pub(crate) type CheckStore = BTreeMap<(String, String, String), (CheckOutcome, i64)>;

/// `structs.NomadCheckID`'s shape: sha256 hex over the allocation, group and
/// the check's fields.
fn check_id(alloc: &AllocRecord, task: &str, check: &Value) -> String {
    let mut h = Sha256::new();
    for part in [
        alloc.id.as_str(),
        alloc.group.as_str(),
        task,
        str_field(check, "Name"),
        str_field(check, "Type"),
        str_field(check, "PortLabel"),
        str_field(check, "Path"),
        str_field(check, "Method"),
    ] {
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The checks body of `alloc`: every check of its Nomad-provider services.
/// A client-terminal allocation has none (its checks stopped with it).
pub(crate) fn results(
    alloc: &AllocRecord,
    region: &str,
    datacenter: &str,
    store: &CheckStore,
    started: i64,
) -> Value {
    let mut out = Map::new();
    if alloc.client_terminal() {
        return Value::Object(out);
    }
    for (reg, svc, task) in with_specs(alloc, region, datacenter) {
        for check in array_field(&svc, "Checks") {
            let name = match str_field(check, "Name") {
                "" => format!("service: {:?} check", reg.service_name),
                n => n.to_string(),
            };
            let on_update = match str_field(check, "OnUpdate") {
                "" => str_field(&svc, "OnUpdate"),
                u => u,
            };
            let mode = if on_update == "ignore" {
                "readiness"
            } else {
                "healthiness"
            };
            let key = (alloc.id.clone(), reg.service_name.clone(), name.clone());
            let (outcome, at) = store.get(&key).cloned().unwrap_or_else(|| {
                let pending = CheckOutcome {
                    status: "pending".into(),
                    output: "nomad: waiting to run".into(),
                    status_code: None,
                };
                (pending, started)
            });
            let id = check_id(alloc, &task, check);
            let mut result = json!({
                "ID": id, "Mode": mode, "Status": outcome.status,
            });
            let m = result.as_object_mut().expect("an object");
            if let Some(code) = outcome.status_code {
                m.insert("StatusCode".into(), json!(code));
            }
            m.insert("Output".into(), json!(outcome.output));
            m.insert("Timestamp".into(), json!(at));
            m.insert("Group".into(), json!(alloc.name));
            if !task.is_empty() {
                m.insert("Task".into(), json!(task));
            }
            m.insert("Service".into(), json!(reg.service_name));
            m.insert("Check".into(), json!(name));
            out.insert(id, result);
        }
    }
    Value::Object(out)
}
