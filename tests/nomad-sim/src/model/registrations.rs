//! Service registrations (`structs.ServiceRegistration`) and how a client derives
//! them from an allocation's job version: provider `nomad` only, interpolated
//! names/tags/ports, canary tags, Nomad's ID scheme.

use serde::Serialize;
use serde_json::Value;

use super::allocs::AllocRecord;
use super::jobs::group;
use super::{array_field, str_field};
use crate::interpolate::{EnvInputs, client_env, replace_env};

/// One registration, serialised exactly as Nomad does (field order included).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Registration {
    #[serde(rename = "ID")]
    pub id: String,
    pub service_name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub datacenter: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "AllocID")]
    pub alloc_id: String,
    pub tags: Option<Vec<String>>,
    pub address: String,
    pub port: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Registration {
    /// `ServiceRegistration.Equal`: everything but the indexes.
    pub(crate) fn same_content(&self, other: &Registration) -> bool {
        self.id == other.id
            && self.service_name == other.service_name
            && self.namespace == other.namespace
            && self.node_id == other.node_id
            && self.datacenter == other.datacenter
            && self.job_id == other.job_id
            && self.alloc_id == other.alloc_id
            && self.tags == other.tags
            && self.address == other.address
            && self.port == other.port
    }

    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The registrations the client upserts for `alloc` (indexes left at 0).
pub(crate) fn for_alloc(alloc: &AllocRecord, region: &str, datacenter: &str) -> Vec<Registration> {
    with_specs(alloc, region, datacenter)
        .into_iter()
        .map(|(r, _, _)| r)
        .collect()
}

/// Each registration of `alloc` with its service block and its task (empty
/// for a group service).
pub(crate) fn with_specs(
    alloc: &AllocRecord,
    region: &str,
    datacenter: &str,
) -> Vec<(Registration, Value, String)> {
    let Some(tg) = group(&alloc.job, &alloc.group) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let base = Base {
        alloc,
        region,
        datacenter,
        tg,
    };
    for svc in array_field(tg, "Services") {
        if let Some(r) = base.registration(svc, None) {
            out.push((r, svc.clone(), String::new()));
        }
    }
    for task in array_field(tg, "Tasks") {
        for svc in array_field(task, "Services") {
            if let Some(r) = base.registration(svc, Some(task)) {
                out.push((r, svc.clone(), str_field(task, "Name").to_string()));
            }
        }
    }
    out
}

struct Base<'a> {
    alloc: &'a AllocRecord,
    region: &'a str,
    datacenter: &'a str,
    tg: &'a Value,
}

impl Base<'_> {
    fn registration(&self, svc: &Value, task: Option<&Value>) -> Option<Registration> {
        if str_field(svc, "Provider") != "nomad" {
            return None;
        }
        let a = self.alloc;
        let job = &a.job;
        let task_name = task.map(|t| str_field(t, "Name"));
        let null = Value::Null;
        let mut metas = vec![
            job.get("Meta").unwrap_or(&null),
            self.tg.get("Meta").unwrap_or(&null),
        ];
        if let Some(t) = task {
            metas.push(t.get("Meta").unwrap_or(&null));
        }
        let env = client_env(&EnvInputs {
            job_id: &a.job_id,
            job_name: str_field(job, "Name"),
            parent_id: str_field(job, "ParentID"),
            group: &a.group,
            task: task_name,
            alloc_id: &a.id,
            alloc_name: &a.name,
            alloc_index: a.index_in_group,
            namespace: &a.namespace,
            region: self.region,
            datacenter: self.datacenter,
            node_id: &a.node_id,
            node_name: &a.node_name,
            metas,
            task_env: task.and_then(|t| t.get("Env")),
            ports: a
                .ports
                .iter()
                .map(|p| (p.label.as_str(), p.value, p.to, a.address.as_str()))
                .collect(),
        });
        let name = replace_env(str_field(svc, "Name"), &env);
        let port_label = replace_env(str_field(svc, "PortLabel"), &env);
        let port = if port_label.is_empty() {
            0
        } else if let Some(p) = a.ports.iter().find(|p| p.label == port_label) {
            p.value
        } else if let Ok(n) = port_label.parse::<i64>() {
            n
        } else {
            tracing::warn!(alloc = %a.id, service = %name, label = %port_label, "port label not allocated; service not registered");
            return None;
        };
        let address = match replace_env(str_field(svc, "Address"), &env) {
            addr if addr.is_empty() => a.address.clone(),
            addr => addr,
        };
        let canary_tags = tags(svc, "CanaryTags", &env);
        let tags = match canary_tags {
            Some(ct) if a.canary && !ct.is_empty() => Some(ct),
            _ => tags(svc, "Tags", &env),
        };
        let workload = match task_name {
            Some(t) => t.to_string(),
            None => format!("group-{}", a.group),
        };
        Some(Registration {
            id: format!("_nomad-task-{}-{workload}-{name}-{port_label}", a.id),
            service_name: name,
            namespace: a.namespace.clone(),
            node_id: a.node_id.clone(),
            datacenter: self.datacenter.to_string(),
            job_id: a.job_id.clone(),
            alloc_id: a.id.clone(),
            tags,
            address,
            port,
            create_index: 0,
            modify_index: 0,
        })
    }
}

fn tags(
    svc: &Value,
    key: &str,
    env: &std::collections::HashMap<String, String>,
) -> Option<Vec<String>> {
    let list = svc.get(key)?.as_array()?;
    if list.is_empty() {
        return None;
    }
    Some(
        list.iter()
            .filter_map(Value::as_str)
            .map(|t| replace_env(t, env))
            .collect(),
    )
}
