//! What the watcher hands the planner: service instances and typed changes.

use super::wire::Registration;
use std::net::IpAddr;
use std::sync::Arc;

/// One service instance: a Nomad native service registration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance {
    /// Registration ID (`_nomad-task-<alloc>-<task or group-G>-<service>-<port label>`).
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Service name, as registered (interpolated).
    pub service: String,
    /// Job ID.
    pub job: String,
    /// Allocation ID.
    pub alloc: String,
    /// Node ID.
    pub node: String,
    /// Datacenter.
    pub datacenter: String,
    /// IP address.
    pub address: IpAddr,
    /// Port.
    pub port: u16,
    /// Tags (canary tags while the allocation is an unpromoted canary).
    pub tags: Vec<String>,
    /// Raft index of its creation.
    pub create_index: u64,
    /// Raft index of its last change.
    pub modify_index: u64,
}

impl TryFrom<Registration> for Instance {
    type Error = String;

    /// Checks what Nomad promises (an ID, an IP address, a port in range).
    fn try_from(r: Registration) -> Result<Instance, String> {
        if r.id.is_empty() || r.service_name.is_empty() {
            return Err(format!(
                "registration {:?} of service {:?}: no ID or name",
                r.id, r.service_name
            ));
        }
        let address: IpAddr = r.address.parse().map_err(|_| {
            format!(
                "registration {}: address {:?} is not an IP",
                r.id, r.address
            )
        })?;
        let port = u16::try_from(r.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("registration {}: port {} out of range", r.id, r.port))?;
        Ok(Instance {
            id: r.id,
            namespace: if r.namespace.is_empty() {
                "default".into()
            } else {
                r.namespace
            },
            service: r.service_name,
            job: r.job_id,
            alloc: r.alloc_id,
            node: r.node_id,
            datacenter: r.datacenter,
            address,
            port,
            tags: r.tags,
            create_index: r.create_index,
            modify_index: r.modify_index,
        })
    }
}

/// The namespaces one list-and-stream covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every namespace the token may read (`namespace=*`).
    All,
    /// One namespace.
    Namespace(String),
}

impl Scope {
    /// The `namespace` query value.
    pub fn param(&self) -> &str {
        match self {
            Scope::All => "*",
            Scope::Namespace(ns) => ns,
        }
    }

    /// Whether an instance in `namespace` belongs to this scope.
    pub fn covers(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespace(ns) => ns == namespace,
        }
    }

    /// The scopes for a configured namespace list (`["*"]` → `All`).
    pub fn from_list(namespaces: &[String]) -> Vec<Scope> {
        if namespaces.iter().any(|n| n == "*") {
            return vec![Scope::All];
        }
        namespaces.iter().cloned().map(Scope::Namespace).collect()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.param())
    }
}

/// A change of Nomad's service catalog, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An instance appeared or changed (tags, address, port).
    Upserted(Arc<Instance>),
    /// An instance is gone; its last known state.
    Removed(Arc<Instance>),
    /// The complete truth for `scope` after a (re)list: replace every
    /// instance of that scope by these. Sent at start-up and after every
    /// reconnect, server restart or index reset.
    Relisted {
        /// The namespaces this list covers.
        scope: Scope,
        /// Every instance in them.
        instances: Vec<Arc<Instance>>,
    },
    /// A job with instances changed (new version, in-place update, stop,
    /// purge): the checks of its instances may differ, ask
    /// [`crate::nomad::Checks::check_for`] again.
    JobChanged {
        /// Namespace.
        namespace: String,
        /// Job ID.
        job: String,
    },
    /// `Deployment` and `Allocation` events told allocations' canary status
    /// (placed as canaries, promoted, deployment failed, stopped).
    Canaries(Vec<super::deployments::CanaryUpdate>),
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    impl Instance {
        /// An instance of `service` (job `job`, alloc `alloc`) on 127.0.0.1:`port`.
        pub(crate) fn test(id: &str, service: &str, port: u16) -> Instance {
            Instance {
                id: id.into(),
                namespace: "default".into(),
                service: service.into(),
                job: "job".into(),
                alloc: "alloc".into(),
                node: "node".into(),
                datacenter: "dc1".into(),
                address: IpAddr::from([127, 0, 0, 1]),
                port,
                tags: Vec::new(),
                create_index: 1,
                modify_index: 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_registrations_are_refused_with_a_reason() {
        let ok = Registration {
            id: "i".into(),
            service_name: "s".into(),
            address: "10.0.0.1".into(),
            port: 80,
            ..Registration::default()
        };
        assert_eq!(Instance::try_from(ok.clone()).unwrap().namespace, "default");
        for bad in [
            Registration {
                port: 70000,
                ..ok.clone()
            },
            Registration {
                address: "host".into(),
                ..ok.clone()
            },
            Registration {
                id: String::new(),
                ..ok.clone()
            },
        ] {
            assert!(Instance::try_from(bad).is_err());
        }
    }

    #[test]
    fn scopes_of_a_namespace_list() {
        assert_eq!(Scope::from_list(&["*".into()]), [Scope::All]);
        assert_eq!(
            Scope::from_list(&["a".into(), "b".into()]),
            [Scope::Namespace("a".into()), Scope::Namespace("b".into())]
        );
        assert!(Scope::All.covers("x") && !Scope::Namespace("a".into()).covers("b"));
    }
}
