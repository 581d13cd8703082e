//! What the verdict monitor compares: each managed server with a health
//! check whose instance's job spec declares Nomad checks, with its
//! allocation, service and the checks' interval + timeout.

use crate::nomad::{CheckLookup, Instance};
use crate::plan::{Assembled, ServiceKey};
use crate::vocab::names;
use std::time::Duration;

/// How long a disagreement must last when the job spec gives no timing.
const DEFAULT_SETTLE: Duration = Duration::from_secs(30);

/// One server to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The HAProxy backend.
    pub backend: String,
    /// The HAProxy server.
    pub server: String,
    /// The namespace.
    pub namespace: String,
    /// The Nomad service.
    pub service: String,
    /// The allocation whose checks Nomad reports.
    pub alloc: String,
    /// The check HAProxy's rules start with (the job spec's first).
    pub first_check: String,
    /// The longest interval + timeout of the service's checks: a
    /// disagreement must outlast it to be counted.
    pub settle: Duration,
}

/// The targets among `instances`, given each one's job-spec look-up and
/// the assembled desired state.
pub fn targets<'a>(
    instances: impl Iterator<Item = &'a Instance>,
    lookup: impl Fn(&str) -> Option<&'a CheckLookup>,
    assembled: &Assembled,
) -> Vec<Target> {
    let mut out = Vec::new();
    for i in instances {
        let Some(CheckLookup::Found(spec)) = lookup(&i.id) else {
            continue;
        };
        let Some(first) = &spec.check else {
            continue;
        };
        let key = ServiceKey {
            namespace: i.namespace.clone(),
            name: i.service.clone(),
        };
        let Some(backend) = assembled.backends.get(&key) else {
            continue;
        };
        let server = names::server_name(&i.id);
        let checked = assembled
            .desired
            .backends
            .get(backend)
            .and_then(|b| b.servers.get(&server))
            .is_some_and(|s| s.has_check());
        if !checked {
            continue;
        }
        let settle = std::iter::once(first)
            .chain(&spec.others)
            .map(|c| Duration::from_millis(c.interval_ms.saturating_add(c.timeout_ms)))
            .max()
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_SETTLE);
        out.push(Target {
            backend: backend.clone(),
            server,
            namespace: i.namespace.clone(),
            service: i.service.clone(),
            alloc: i.alloc.clone(),
            first_check: first.name.clone(),
            settle,
        });
    }
    out
}
