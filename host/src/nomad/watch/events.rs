//! Events → typed deltas, deciding delete or upsert by topic (the `Type` is
//! the Raft message type of the whole apply, not the kind of change).

use super::wire::RawEvent;
use super::wire::Registration;

/// The topics subscribed to: `Service` for instances, `Job` for check-cache
/// invalidation, `Allocation` for in-place updates of a running allocation
/// (and canary status), `Deployment` for canaries, promotion and failure.
pub(crate) const TOPICS: [&str; 4] = ["Service", "Job", "Allocation", "Deployment"];

/// What one event means for the connector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delta {
    /// A registration was created or changed.
    ServiceUpserted(Registration),
    /// A registration was deleted; its ID (the event key).
    ServiceDeleted {
        /// Registration ID.
        id: String,
    },
    /// A job changed (new version, status, stop, purge).
    Job {
        namespace: String,
        job: String,
        version: u64,
        create_index: u64,
        deleted: bool,
    },
    /// A server-side allocation update (`PlanResult`: placement, in-place
    /// update, stop); client status updates are ignored.
    AllocationPlanned {
        namespace: String,
        job: String,
        alloc: String,
    },
    /// Nothing for the connector.
    Ignored,
}

/// The Raft type of the only apply that upserts registrations
/// (`ServiceRegistrationUpsertRequestType`). Every other type on the
/// `Service` topic deletes: `ServiceDeregistration`, `AllocationUpdated`,
/// `PlanResult`, `NodeStreamEvent` (`nomad-api.md` §1).
const SERVICE_UPSERT: &str = "ServiceRegistration";

/// Interprets one event.
pub(crate) fn delta(event: RawEvent) -> Delta {
    match event.topic.as_str() {
        "Service" => {
            if event.kind == SERVICE_UPSERT {
                match event.payload.service {
                    Some(reg) if !reg.id.is_empty() => Delta::ServiceUpserted(reg),
                    _ => Delta::Ignored,
                }
            } else {
                let id = match event.payload.service {
                    Some(reg) if !reg.id.is_empty() => reg.id,
                    _ => event.key,
                };
                if id.is_empty() {
                    Delta::Ignored
                } else {
                    Delta::ServiceDeleted { id }
                }
            }
        }
        "Job" => match event.payload.job {
            Some(job) => Delta::Job {
                namespace: or(job.namespace, event.namespace),
                job: or(job.id, event.key),
                version: job.version,
                create_index: job.create_index,
                deleted: event.payload.deleted,
            },
            None => Delta::Ignored,
        },
        "Allocation" if event.kind == "PlanResult" => match event.payload.allocation {
            Some(a) => Delta::AllocationPlanned {
                namespace: or(a.namespace, event.namespace),
                job: a.job_id,
                alloc: or(a.id, event.key),
            },
            None => Delta::Ignored,
        },
        _ => Delta::Ignored,
    }
}

/// The canary status an event tells (`Deployment` and `Allocation` topics).
pub(crate) fn canaries(event: &RawEvent) -> Vec<super::deployments::CanaryUpdate> {
    use super::deployments::{from_allocation, from_deployment, stopped};
    match event.topic.as_str() {
        "Deployment" => event
            .payload
            .deployment
            .as_ref()
            .map(|d| from_deployment(d, &event.namespace))
            .unwrap_or_default(),
        "Allocation" => match &event.payload.allocation {
            Some(a) if !a.id.is_empty() || !event.key.is_empty() => from_allocation(
                if a.id.is_empty() { &event.key } else { &a.id },
                if a.namespace.is_empty() {
                    &event.namespace
                } else {
                    &a.namespace
                },
                &a.job_id,
                a.deployment_status.as_ref(),
                stopped(&a.client_status, &a.desired_status),
            )
            .into_iter()
            .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn or(a: String, b: String) -> String {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nomad::watch::wire::Frame;

    fn event(topic: &str, kind: &str, payload: &str) -> RawEvent {
        let line = format!(
            r#"{{"Index":9,"Events":[{{"Topic":"{topic}","Type":"{kind}","Key":"key","Namespace":"default","Index":9,"Payload":{payload}}}]}}"#
        );
        let mut frame: Frame = serde_json::from_str(&line).unwrap();
        frame.events.remove(0)
    }

    const SVC: &str =
        r#"{"Service":{"ID":"_nomad-task-a-web-web-http","ServiceName":"web","Port":80}}"#;

    #[test]
    fn every_deletion_type_of_the_service_topic_is_a_deletion() {
        for kind in [
            "ServiceDeregistration",
            "AllocationUpdated",
            "PlanResult",
            "NodeStreamEvent",
            "SomeFutureType",
        ] {
            assert_eq!(
                delta(event("Service", kind, SVC)),
                Delta::ServiceDeleted {
                    id: "_nomad-task-a-web-web-http".into()
                },
                "{kind}"
            );
        }
        assert!(matches!(
            delta(event("Service", "ServiceRegistration", SVC)),
            Delta::ServiceUpserted(r) if r.port == 80
        ));
        assert_eq!(
            delta(event("Service", "PlanResult", "{}")),
            Delta::ServiceDeleted { id: "key".into() }
        );
    }

    #[test]
    fn jobs_and_planned_allocations_are_typed() {
        let job = delta(event(
            "Job",
            "JobDeregistered",
            r#"{"Job":{"ID":"web","Namespace":"apps","Version":3,"CreateIndex":7},"Deleted":true}"#,
        ));
        assert_eq!(
            job,
            Delta::Job {
                namespace: "apps".into(),
                job: "web".into(),
                version: 3,
                create_index: 7,
                deleted: true
            }
        );
        let alloc = r#"{"Allocation":{"ID":"a1","JobID":"web","Namespace":"default"}}"#;
        assert!(matches!(
            delta(event("Allocation", "PlanResult", alloc)),
            Delta::AllocationPlanned { .. }
        ));
        assert_eq!(
            delta(event("Allocation", "AllocationUpdated", alloc)),
            Delta::Ignored
        );
        assert_eq!(
            delta(event("Node", "NodeStreamEvent", "{}")),
            Delta::Ignored
        );
    }
}
