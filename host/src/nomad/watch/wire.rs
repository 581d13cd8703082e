//! Nomad's JSON as it arrives: tolerant serde types (every field optional,
//! `null` as empty, unknown fields ignored) for registrations, list stubs,
//! allocations and event frames.

use serde::{Deserialize, Deserializer};

/// `null` or missing → `T::default()`.
pub(crate) fn nd<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A `ServiceRegistration` (`GET /v1/service/:name`, `Service` events).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Registration {
    /// Registration ID.
    #[serde(rename = "ID", deserialize_with = "nd")]
    pub id: String,
    /// Service name (interpolated).
    #[serde(deserialize_with = "nd")]
    pub service_name: String,
    /// Namespace.
    #[serde(deserialize_with = "nd")]
    pub namespace: String,
    /// Node ID.
    #[serde(rename = "NodeID", deserialize_with = "nd")]
    pub node_id: String,
    /// Datacenter.
    #[serde(deserialize_with = "nd")]
    pub datacenter: String,
    /// Job ID.
    #[serde(rename = "JobID", deserialize_with = "nd")]
    pub job_id: String,
    /// Allocation ID.
    #[serde(rename = "AllocID", deserialize_with = "nd")]
    pub alloc_id: String,
    /// Tags (`null` = none).
    #[serde(deserialize_with = "nd")]
    pub tags: Vec<String>,
    /// IP address.
    #[serde(deserialize_with = "nd")]
    pub address: String,
    /// Port (an int on the wire; checked when converted).
    #[serde(deserialize_with = "nd")]
    pub port: i64,
    /// Create index.
    #[serde(deserialize_with = "nd")]
    pub create_index: u64,
    /// Modify index.
    #[serde(deserialize_with = "nd")]
    pub modify_index: u64,
}

/// One namespace's entry of `GET /v1/services`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct NamespaceServices {
    /// Namespace.
    #[serde(deserialize_with = "nd")]
    pub namespace: String,
    /// Its services (names; tags ignored).
    #[serde(deserialize_with = "nd")]
    pub services: Vec<ServiceStub>,
}

/// A service name in `GET /v1/services`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceStub {
    /// Service name.
    #[serde(deserialize_with = "nd")]
    pub service_name: String,
}

/// What the check look-up needs of an allocation: from the stubs of
/// `GET /v1/job/:id/allocations` or from `GET /v1/allocation/:id`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocStub {
    /// Allocation ID.
    #[serde(rename = "ID", deserialize_with = "nd")]
    pub id: String,
    /// The job version it runs (stubs only; the full allocation embeds `Job`).
    #[serde(deserialize_with = "nd")]
    pub job_version: u64,
    /// Its task group.
    #[serde(deserialize_with = "nd")]
    pub task_group: String,
    /// Allocated resources (may be absent from stubs).
    #[serde(deserialize_with = "nd")]
    pub allocated_resources: Option<AllocatedResources>,
    /// The embedded job of a full allocation (absent from stubs), reduced
    /// to its version: the version this allocation runs.
    #[serde(deserialize_with = "nd")]
    pub job: Option<JobVersion>,
}

/// An embedded `Job`, reduced to its `Version`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobVersion {
    /// `Version`.
    #[serde(deserialize_with = "nd")]
    pub version: u64,
}

/// `AllocatedResources`, reduced to the shared ports.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedResources {
    /// `Shared`.
    #[serde(deserialize_with = "nd")]
    pub shared: SharedResources,
}

/// `AllocatedResources.Shared`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct SharedResources {
    /// `Ports`: label → host port.
    #[serde(deserialize_with = "nd")]
    pub ports: Vec<PortMapping>,
}

/// One allocated port.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortMapping {
    /// Port label.
    #[serde(deserialize_with = "nd")]
    pub label: String,
    /// Host port.
    #[serde(deserialize_with = "nd")]
    pub value: i64,
}

impl AllocStub {
    /// The host port of `label`, if the allocation lists it.
    pub fn port(&self, label: &str) -> Option<u16> {
        let res = self.allocated_resources.as_ref()?;
        res.shared
            .ports
            .iter()
            .find(|p| p.label == label)
            .and_then(|p| u16::try_from(p.value).ok())
    }
}

/// One line of the event stream with events (not a heartbeat).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Frame {
    #[serde(deserialize_with = "nd")]
    pub index: u64,
    #[serde(deserialize_with = "nd")]
    pub events: Vec<RawEvent>,
}

/// One event; `Type` is the Raft message type, not the kind of change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct RawEvent {
    #[serde(deserialize_with = "nd")]
    pub topic: String,
    #[serde(rename = "Type", deserialize_with = "nd")]
    pub kind: String,
    #[serde(deserialize_with = "nd")]
    pub key: String,
    #[serde(deserialize_with = "nd")]
    pub namespace: String,
    #[serde(deserialize_with = "nd")]
    pub index: u64,
    #[serde(deserialize_with = "nd")]
    pub payload: Payload,
}

/// The payload keys this client reads (`Job` and `Allocation` reduced).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Payload {
    #[serde(deserialize_with = "nd")]
    pub service: Option<Registration>,
    #[serde(deserialize_with = "nd")]
    pub job: Option<JobHead>,
    #[serde(deserialize_with = "nd")]
    pub allocation: Option<AllocHead>,
    #[serde(deserialize_with = "nd")]
    pub deployment: Option<super::deployments::DeploymentHead>,
    #[serde(deserialize_with = "nd")]
    pub deleted: bool,
}

/// A job event's job, reduced to its identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct JobHead {
    #[serde(rename = "ID", deserialize_with = "nd")]
    pub id: String,
    #[serde(deserialize_with = "nd")]
    pub namespace: String,
    #[serde(deserialize_with = "nd")]
    pub version: u64,
    #[serde(deserialize_with = "nd")]
    pub create_index: u64,
}

/// An allocation event's allocation, reduced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct AllocHead {
    #[serde(rename = "ID", deserialize_with = "nd")]
    pub id: String,
    #[serde(deserialize_with = "nd")]
    pub namespace: String,
    #[serde(rename = "JobID", deserialize_with = "nd")]
    pub job_id: String,
    /// `DeploymentStatus` (`Canary`), absent outside deployments.
    #[serde(deserialize_with = "nd")]
    pub deployment_status: Option<super::deployments::AllocDeploymentStatus>,
    #[serde(deserialize_with = "nd")]
    pub client_status: String,
    #[serde(deserialize_with = "nd")]
    pub desired_status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_docs_samples() {
        let regs: Vec<Registration> =
            serde_json::from_str(include_str!("../testdata/read-service.json")).unwrap();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0].port, 29702);
        assert_eq!(regs[0].tags, ["db", "cache"]);
        let stubs: Vec<AllocStub> =
            serde_json::from_str(include_str!("../testdata/list-job-allocations.json")).unwrap();
        assert_eq!(stubs[0].task_group, "cache");
        assert_eq!(stubs[0].port("db"), None);
    }

    #[test]
    fn nulls_are_empty_and_wrong_types_are_errors() {
        let r: Registration =
            serde_json::from_str(r#"{"ID":"x","Tags":null,"Address":null,"Extra":1}"#).unwrap();
        assert!(r.tags.is_empty() && r.address.is_empty());
        assert!(serde_json::from_str::<Registration>(r#"{"Port":"80"}"#).is_err());
    }
}
