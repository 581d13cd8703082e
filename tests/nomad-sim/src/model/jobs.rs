//! Jobs as `structs.Job`: server-side canonicalisation at registration, the
//! spec-change test that decides whether a new version is made, and group lookup.

use serde_json::{Map, Value, json};

use super::{array_field, default_field, default_present, str_field};
use crate::interpolate::canonical_service_name;

/// How many versions Nomad keeps per job (`JobTrackedVersions`).
pub(crate) const TRACKED_VERSIONS: usize = 6;

/// A job and its tracked versions.
#[derive(Debug, Clone)]
pub(crate) struct JobRecord {
    /// The `jobs` table row: the latest version, with live status updates.
    pub current: Value,
    /// The `job_version` table: snapshots taken at each upsert, oldest first.
    pub versions: Vec<Value>,
}

impl JobRecord {
    /// The snapshot of version `v`, if still tracked.
    pub(crate) fn version(&self, v: u64) -> Option<&Value> {
        self.versions.iter().find(|j| version_of(j) == v)
    }
}

/// `Version` of a job object.
pub(crate) fn version_of(job: &Value) -> u64 {
    job.get("Version").and_then(Value::as_u64).unwrap_or(0)
}

/// The task group named `name`.
pub(crate) fn group<'a>(job: &'a Value, name: &str) -> Option<&'a Value> {
    array_field(job, "TaskGroups")
        .iter()
        .find(|g| str_field(g, "Name") == name)
}

/// Fields the server owns; ignored when deciding whether the spec changed.
const SERVER_FIELDS: [&str; 9] = [
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "VersionTag",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
];

/// `Job.SpecChanged`: whether the submitted job differs from the stored one.
pub(crate) fn spec_changed(stored: &Value, submitted: &Value) -> bool {
    let strip = |j: &Value| {
        let mut j = j.clone();
        if let Some(m) = j.as_object_mut() {
            for f in SERVER_FIELDS {
                m.remove(f);
            }
        }
        j
    };
    strip(stored) != strip(submitted)
}

/// Validates a submitted job and fills what the server (and the API client's
/// `Canonicalize`) would: names, defaults, service namespaces and providers,
/// `${JOB}`-style names, empty tag lists as null. `${NOMAD_*}` stay literal.
pub(crate) fn canonicalize(job: &mut Value, region: &str) -> Result<(), String> {
    let Some(map) = job.as_object_mut() else {
        return Err("job must be a JSON object".into());
    };
    let id = match map.get("ID").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => return Err("Missing job ID".into()),
    };
    default_field(map, "Name", Value::String(id.clone()));
    default_field(map, "Namespace", json!("default"));
    default_field(map, "Region", json!(region));
    default_field(map, "Type", json!("service"));
    default_field(map, "Priority", json!(50));
    default_field(map, "Datacenters", json!(["*"]));
    default_field(map, "NodePool", json!("default"));
    default_field(map, "ParentID", json!(""));
    default_field(map, "AllAtOnce", json!(false));
    default_field(map, "Stop", json!(false));
    default_field(map, "Dispatched", json!(false));
    default_field(map, "StatusDescription", json!(""));
    for key in [
        "Constraints",
        "Affinities",
        "Spreads",
        "Multiregion",
        "Periodic",
        "ParameterizedJob",
        "Payload",
        "Meta",
        "VersionTag",
        "UI",
    ] {
        default_present(map, key, Value::Null);
    }
    default_present(
        map,
        "Update",
        json!({"Stagger": 30_000_000_000_i64, "MaxParallel": 1}),
    );
    let job_name = map
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or(&id)
        .to_string();
    let namespace = map
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let groups = map
        .entry("TaskGroups")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(groups) = groups.as_array_mut() else {
        return Err("TaskGroups must be an array".into());
    };
    for g in groups.iter_mut() {
        let Some(gm) = g.as_object_mut() else {
            return Err("task group must be an object".into());
        };
        let group_name = match gm.get("Name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return Err("Missing task group name".into()),
        };
        default_field(gm, "Count", json!(1));
        for key in ["Meta", "Networks", "Services", "Constraints", "Update"] {
            default_present(gm, key, Value::Null);
        }
        canonicalize_services(gm, &job_name, &group_name, None, &namespace)?;
        let tasks = gm
            .entry("Tasks")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(tasks) = tasks.as_array_mut() else {
            return Err("Tasks must be an array".into());
        };
        for t in tasks.iter_mut() {
            let Some(tm) = t.as_object_mut() else {
                return Err("task must be an object".into());
            };
            let task_name = match tm.get("Name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => return Err("Missing task name".into()),
            };
            for key in ["Meta", "Env", "Services"] {
                default_present(tm, key, Value::Null);
            }
            default_field(tm, "Driver", json!("docker"));
            canonicalize_services(tm, &job_name, &group_name, Some(&task_name), &namespace)?;
        }
    }
    Ok(())
}

fn canonicalize_services(
    owner: &mut Map<String, Value>,
    job: &str,
    group: &str,
    task: Option<&str>,
    job_namespace: &str,
) -> Result<(), String> {
    let Some(services) = owner.get_mut("Services") else {
        return Ok(());
    };
    if services.as_array().is_some_and(Vec::is_empty) {
        *services = Value::Null;
    }
    let Some(list) = services.as_array_mut() else {
        return if services.is_null() {
            Ok(())
        } else {
            Err("Services must be an array".into())
        };
    };
    for s in list.iter_mut() {
        let Some(sm) = s.as_object_mut() else {
            return Err("service must be an object".into());
        };
        let name = sm.get("Name").and_then(Value::as_str).unwrap_or("");
        let name = if name.is_empty() {
            match task {
                Some(t) => format!("{job}-{group}-{t}"),
                None => format!("{job}-{group}"),
            }
        } else {
            name.to_string()
        };
        let name = canonical_service_name(&name, job, group, task.unwrap_or("group"));
        sm.insert("Name".into(), Value::String(name.clone()));
        for key in ["Tags", "CanaryTags", "Checks", "TaggedAddresses"] {
            let empty = sm.get(key).is_none_or(|v| {
                v.is_null()
                    || v.as_array().is_some_and(Vec::is_empty)
                    || v.as_object().is_some_and(Map::is_empty)
            });
            if empty {
                sm.insert(key.into(), Value::Null);
            }
        }
        default_field(sm, "Provider", json!("consul"));
        let provider = sm.get("Provider").and_then(Value::as_str).unwrap_or("");
        if provider == "nomad" {
            sm.insert("Namespace".into(), json!(job_namespace));
        } else {
            default_field(sm, "Namespace", json!("default"));
        }
        default_field(sm, "PortLabel", json!(""));
        default_field(sm, "AddressMode", json!("auto"));
        default_field(sm, "Address", json!(""));
        default_field(sm, "TaskName", json!(""));
        default_field(sm, "OnUpdate", json!("require_healthy"));
        default_field(sm, "EnableTagOverride", json!(false));
        for key in ["Meta", "CanaryMeta", "Connect", "Identity", "Weights"] {
            default_present(sm, key, Value::Null);
        }
        let on_update = sm
            .get("OnUpdate")
            .and_then(Value::as_str)
            .unwrap_or("require_healthy")
            .to_string();
        if let Some(Value::Array(checks)) = sm.get_mut("Checks") {
            for c in checks.iter_mut() {
                if let Some(cm) = c.as_object_mut() {
                    default_field(cm, "Name", json!(format!("service: {name:?} check")));
                    default_field(cm, "OnUpdate", json!(on_update));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_services_and_keeps_nomad_vars() {
        let mut job = json!({
            "ID": "web", "Namespace": "apps",
            "TaskGroups": [{"Name": "g", "Services": [
                {"Name": "${JOB}-${NOMAD_META_x}", "Provider": "nomad", "Tags": []},
                {"PortLabel": "http"}
            ], "Tasks": [{"Name": "t", "Services": [{"Provider": "nomad"}]}]}]
        });
        canonicalize(&mut job, "global").unwrap();
        let svcs = &job["TaskGroups"][0]["Services"];
        assert_eq!(svcs[0]["Name"], "web-${NOMAD_META_x}");
        assert_eq!(svcs[0]["Tags"], Value::Null);
        assert_eq!(svcs[0]["Namespace"], "apps");
        assert_eq!(svcs[1]["Name"], "web-g");
        assert_eq!(svcs[1]["Provider"], "consul");
        assert_eq!(svcs[1]["Namespace"], "default");
        assert_eq!(
            job["TaskGroups"][0]["Tasks"][0]["Services"][0]["Name"],
            "web-g-t"
        );
    }

    #[test]
    fn rejects_bad_jobs() {
        assert!(canonicalize(&mut json!({}), "global").is_err());
        assert!(canonicalize(&mut json!([]), "global").is_err());
        assert!(canonicalize(&mut json!({"ID": "x", "TaskGroups": [{}]}), "global").is_err());
    }

    #[test]
    fn spec_change_ignores_server_fields() {
        let a = json!({"ID": "x", "Version": 1, "Meta": {"a": "1"}});
        let b = json!({"ID": "x", "Version": 7, "ModifyIndex": 9, "Meta": {"a": "1"}});
        assert!(!spec_changed(&a, &b));
        assert!(spec_changed(&a, &json!({"ID": "x", "Meta": {"a": "2"}})));
    }
}
