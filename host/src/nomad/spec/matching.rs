//! Which `service` block of a task group a registration came from.
//!
//! A registration ID is `_nomad-task-<alloc>-<task or "group-"+group>-<service>-<port label>`.
//! For each service block of the allocation's group, the expected prefix
//! (alloc and workload) and the registered service name leave the port
//! label; the block matches when its name and port label, with `${...}`
//! (left uninterpolated in the spec) as wildcards, match the registered ones.

use super::job::{GroupSpec, ServiceSpec};

/// The service block a registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Matched<'a> {
    /// The block.
    pub service: &'a ServiceSpec,
    /// The registration's (interpolated) port label, from its ID.
    pub port_label: &'a str,
}

/// Finds the block of `group` that registered `reg_id` (of `service_name`,
/// allocation `alloc`). Exact names beat wildcards, Nomad-provider blocks
/// beat others; among equals the first in the spec wins.
pub(crate) fn find<'a>(
    group: &'a GroupSpec,
    reg_id: &'a str,
    alloc: &str,
    service_name: &str,
) -> Option<Matched<'a>> {
    let mut best: Option<(u8, Matched<'a>)> = None;
    for service in &group.services {
        let workload = if service.task.is_empty() {
            format!("group-{}", group.name)
        } else {
            service.task.clone()
        };
        let prefix = format!("_nomad-task-{alloc}-{workload}-{service_name}-");
        let Some(port_label) = reg_id.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if !wildcard_match(&service.name, service_name)
            || !wildcard_match(&service.port_label, port_label)
        {
            continue;
        }
        let rank =
            u8::from(service.name.contains("${")) * 2 + u8::from(service.provider != "nomad");
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((
                rank,
                Matched {
                    service,
                    port_label,
                },
            ));
        }
    }
    best.map(|(_, m)| m)
}

/// Whether `value` matches `pattern`, where each `${...}` in the pattern
/// stands for any text (including none).
pub(crate) fn wildcard_match(pattern: &str, value: &str) -> bool {
    let literals = split_placeholders(pattern);
    if literals.len() == 1 {
        return pattern == value;
    }
    let (first, rest) = literals.split_first().unwrap_or((&"", &[]));
    let (last, middle) = rest.split_last().unwrap_or((&"", &[]));
    if value.len() < first.len() + last.len() || !value.starts_with(first) || !value.ends_with(last)
    {
        return false;
    }
    let mut hay = &value[first.len()..value.len() - last.len()];
    for lit in middle {
        match hay.find(lit) {
            Some(at) => hay = &hay[at + lit.len()..],
            None => return false,
        }
    }
    true
}

/// The literal parts around `${...}` placeholders (n placeholders → n+1 parts).
fn split_placeholders(pattern: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        parts.push(&rest[..start]);
        rest = &rest[start + len + 1..];
    }
    parts.push(rest);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, task: &str, port: &str, provider: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            task: task.into(),
            port_label: port.into(),
            provider: provider.into(),
            ..ServiceSpec::default()
        }
    }

    #[test]
    fn placeholders_are_wildcards() {
        assert!(wildcard_match("web", "web"));
        assert!(!wildcard_match("web", "web2"));
        assert!(wildcard_match("${NOMAD_JOB_NAME}-web", "shop-web"));
        assert!(wildcard_match("${A}-${B}", "x-y-z"));
        assert!(wildcard_match("${A}", ""));
        assert!(!wildcard_match("a-${X}-b", "a-b"));
        assert!(wildcard_match("a-${X}-b", "a--b"));
        assert!(wildcard_match("broken-${x", "broken-${x"));
    }

    #[test]
    fn group_and_task_services_are_told_apart_by_the_id() {
        let group = GroupSpec {
            name: "g".into(),
            services: vec![
                svc("web", "", "http", "nomad"),
                svc("web", "server", "http", "nomad"),
            ],
        };
        let m = find(&group, "_nomad-task-A-server-web-http", "A", "web").unwrap();
        assert_eq!((m.service.task.as_str(), m.port_label), ("server", "http"));
        let m = find(&group, "_nomad-task-A-group-g-web-http", "A", "web").unwrap();
        assert_eq!(m.service.task, "");
        assert!(find(&group, "_nomad-task-B-server-web-http", "A", "web").is_none());
    }

    #[test]
    fn names_with_dashes_and_placeholders_match_the_right_block() {
        let group = GroupSpec {
            name: "g".into(),
            services: vec![
                svc("${NOMAD_META_app}-api", "t", "http", "nomad"),
                svc("${NOMAD_META_app}-api", "t", "admin", "nomad"),
                svc("shop-api", "t", "admin", "consul"),
                svc("shop-api", "t", "admin", "nomad"),
            ],
        };
        let m = find(&group, "_nomad-task-A-t-shop-api-http", "A", "shop-api").unwrap();
        assert_eq!(m.service.port_label, "http");
        let m = find(&group, "_nomad-task-A-t-shop-api-admin", "A", "shop-api").unwrap();
        assert_eq!(
            (m.service.name.as_str(), m.service.provider.as_str()),
            ("shop-api", "nomad")
        );
    }

    #[test]
    fn interpolated_port_labels_match() {
        let group = GroupSpec {
            name: "g".into(),
            services: vec![svc("db", "t", "${NOMAD_META_port}", "nomad")],
        };
        let m = find(&group, "_nomad-task-A-t-db-pg", "A", "db").unwrap();
        assert_eq!(m.port_label, "pg");
    }
}
