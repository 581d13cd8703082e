//! The reconcile loop's side of the status page: after each pass it
//! publishes the plans' view, the last reloads and the listings seen.

use super::status::{FallbackView, InstanceView, ReloadView, ServiceView};
use crate::mapping::CheckOrigin;
use crate::metrics::ReloadReason;
use crate::nomad::Change;
use crate::plan::{ServiceKey, ServicePlan};
use hnc_core::model::NomadCheck;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Reloads the page keeps, newest first.
const RELOADS_KEPT: usize = 20;

/// What the loop publishes: the plans' view, the reloads and the listings.
#[derive(Debug, Default)]
pub struct Published {
    pub(super) services: Vec<Arc<ServiceView>>,
    pub(super) reloads: VecDeque<ReloadView>,
    pub(super) lists: BTreeMap<String, u64>,
}

/// The reconcile loop's side: records listings and reloads, and publishes
/// the plans after each pass.
#[derive(Debug)]
pub struct Publisher {
    tx: watch::Sender<Arc<Published>>,
    /// Each service's view, re-built only when the service is planned.
    views: BTreeMap<ServiceKey, Arc<ServiceView>>,
    reloads: VecDeque<ReloadView>,
    lists: BTreeMap<String, u64>,
}

impl Publisher {
    /// A publisher and the receiver [`StatusSource::new`] reads.
    pub fn new() -> (Publisher, watch::Receiver<Arc<Published>>) {
        let (tx, rx) = watch::channel(Arc::default());
        let publisher = Publisher {
            tx,
            views: BTreeMap::new(),
            reloads: VecDeque::new(),
            lists: BTreeMap::new(),
        };
        (publisher, rx)
    }

    /// Counts the full listings of each scope.
    pub fn observe(&mut self, change: &Change) {
        if let Change::Relisted { scope, .. } = change {
            *self.lists.entry(scope.to_string()).or_default() += 1;
        }
    }

    /// Publishes the views of the services `planned` this pass (the others
    /// keep theirs) and records a reload's reasons. The views are all the
    /// page needs of the plans' instance reports, so those are dropped.
    pub fn after_pass(
        &mut self,
        plans: &mut BTreeMap<ServiceKey, ServicePlan>,
        planned: &BTreeSet<ServiceKey>,
        reload_reasons: &[ReloadReason],
    ) {
        if !reload_reasons.is_empty() {
            self.reloads.push_front(ReloadView {
                at: unix_now(),
                reasons: reload_reasons.iter().map(|r| r.as_str()).collect(),
            });
            self.reloads.truncate(RELOADS_KEPT);
        }
        for key in planned {
            match plans.get_mut(key) {
                Some(plan) => {
                    self.views.insert(key.clone(), Arc::new(service_view(plan)));
                    plan.instances = Vec::new();
                }
                None => {
                    self.views.remove(key);
                }
            }
        }
        self.tx.send_replace(Arc::new(Published {
            services: self.views.values().cloned().collect(),
            reloads: self.reloads.clone(),
            lists: self.lists.clone(),
        }));
    }
}

fn service_view(plan: &ServicePlan) -> ServiceView {
    ServiceView {
        namespace: plan.key.namespace.clone(),
        name: plan.key.name.clone(),
        backend: plan.backend.as_ref().map(|b| b.name.clone()),
        problems: plan.problems.clone(),
        instances: plan
            .instances
            .iter()
            .map(|i| InstanceView {
                id: i.id.clone(),
                server: i.server.clone(),
                address: i.address.clone(),
                enabled: i.enabled,
                job_version: i.job_version,
                check: i.check.as_ref().map(check_text),
                other_checks: i.others.iter().map(check_text).collect(),
                origin: match i.origin {
                    CheckOrigin::JobSpec => "job spec",
                    CheckOrigin::Tags => "tags",
                    CheckOrigin::None => "none",
                },
                plugin: i.plugin.clone(),
                fallback: i.fallback.as_ref().map(|f| FallbackView {
                    cause: f.cause.to_string(),
                    reason: f.reason.clone(),
                }),
                check_tags: i.check_tags.clone(),
                server_args: i.server_args.clone(),
                haproxy: None,
            })
            .collect(),
    }
}

/// A check, summarised: `http GET /health every 10s`.
fn check_text(c: &NomadCheck) -> String {
    let what = match c.check_type.as_str() {
        "http" => {
            let method = if c.method.is_empty() {
                "GET"
            } else {
                &c.method
            };
            format!("http {method} {}", c.path)
        }
        other => other.to_string(),
    };
    format!("{what} every {}", ms_text(c.interval_ms))
}

fn ms_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Now, in Unix seconds.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, problem: &str) -> ServicePlan {
        ServicePlan {
            key: key(name),
            backend: None,
            domains: Vec::new(),
            instances: Vec::new(),
            problems: vec![problem.to_string()],
            retry_after: Default::default(),
        }
    }

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn published(rx: &watch::Receiver<Arc<Published>>) -> Vec<(String, String)> {
        rx.borrow()
            .services
            .iter()
            .map(|s| (s.name.clone(), s.problems.join(",")))
            .collect()
    }

    #[test]
    fn only_the_services_planned_get_a_new_view_and_removed_ones_go() {
        let (mut publisher, rx) = Publisher::new();
        let mut plans = BTreeMap::from([(key("a"), plan("a", "first"))]);
        publisher.after_pass(&mut plans, &BTreeSet::from([key("a")]), &[]);
        assert_eq!(published(&rx), [("a".into(), "first".into())]);

        // b is planned; a is not, and keeps the view it had even though its
        // plan changed meanwhile.
        plans.insert(key("a"), plan("a", "unpublished"));
        plans.insert(key("b"), plan("b", "second"));
        publisher.after_pass(&mut plans, &BTreeSet::from([key("b")]), &[]);
        assert_eq!(
            published(&rx),
            [("a".into(), "first".into()), ("b".into(), "second".into())]
        );

        // a is gone from the plans: planned, its view goes.
        plans.remove(&key("a"));
        publisher.after_pass(&mut plans, &BTreeSet::from([key("a")]), &[]);
        assert_eq!(published(&rx), [("b".into(), "second".into())]);
    }
}
