//! HAProxy names derived from Nomad's: stable across restarts and always valid.
//!
//! Backends are named after namespace and service, servers after the Nomad
//! instance (the service registration ID, which already holds the allocation
//! ID, the task or group, the service and the port label). Every name is a
//! pure function of its inputs, so a restarted connector finds its servers
//! again, and is bounded in length: HAProxy reads its server-state file with
//! a 512-byte line buffer, so names stay well under it.

use sha2::{Digest, Sha256};

/// The prefix of every server the connector creates.
///
/// In an operator's (`custom`) backend it tells the connector's servers from
/// the operator's: only servers with this prefix are ever changed there.
/// Nomad's own registration IDs start with it (`_nomad-task-…`), and
/// operators rarely start a server name with `_`.
pub const SERVER_PREFIX: &str = "_nomad-";

/// The longest name this module produces.
pub const MAX_NAME: usize = 100;

/// Characters HAProxy accepts in proxy and server names.
fn valid(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

fn clean(part: &str) -> String {
    part.chars()
        .map(|c| if valid(c) { c } else { '_' })
        .collect()
}

/// Shortens a name over [`MAX_NAME`] to a prefix plus a hash of the whole,
/// and marks a name that cleaning changed with a hash of the original, so two
/// inputs that differ only in replaced characters still get distinct names.
fn bounded(cleaned: String, original: &str) -> String {
    let changed = cleaned.len() != original.len() || cleaned != original;
    if cleaned.len() <= MAX_NAME && !changed {
        return cleaned;
    }
    let digest = Sha256::digest(original.as_bytes());
    let tag = hex::encode(&digest[..6]);
    let keep = cleaned.len().min(MAX_NAME - tag.len() - 1);
    format!("{}-{tag}", &cleaned[..keep])
}

/// The backend of a service: `<namespace>_<service>`. Nomad names hold no
/// `_`, so the separator is unambiguous; anything else HAProxy would refuse
/// becomes `_`.
pub fn backend_name(namespace: &str, service: &str) -> String {
    let cleaned = format!("{}_{}", clean(namespace), clean(service));
    if cleaned.len() <= MAX_NAME {
        return cleaned;
    }
    bounded(cleaned, &format!("{namespace}_{service}"))
}

/// The server of one Nomad instance: its registration ID, with
/// [`SERVER_PREFIX`] in front unless it is already there.
///
/// Namespace and service are not needed: the backend carries them, and the
/// registration ID holds the allocation ID, unique across the cluster, so two
/// services sharing an operator's backend never collide.
pub fn server_name(instance_id: &str) -> String {
    let body = instance_id
        .strip_prefix(SERVER_PREFIX)
        .unwrap_or(instance_id);
    let cleaned = format!("{SERVER_PREFIX}{}", clean(body));
    bounded(cleaned, &format!("{SERVER_PREFIX}{body}"))
}

/// Whether a server in an operator's backend is one of the connector's.
pub fn is_connector_server(name: &str) -> bool {
    name.starts_with(SERVER_PREFIX)
}

/// Whether HAProxy accepts `name` as a proxy or server name and it fits
/// this module's bound.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.chars().all(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_are_valid_and_unambiguous() {
        assert_eq!(backend_name("default", "web"), "default_web");
        assert_eq!(backend_name("a-b", "c"), "a-b_c");
        assert_eq!(backend_name("a", "b-c"), "a_b-c");
        assert_eq!(
            backend_name("default", "${NOMAD_JOB_NAME}-web"),
            "default___NOMAD_JOB_NAME_-web"
        );
    }

    #[test]
    fn long_backend_names_are_bounded_and_distinct() {
        let a = backend_name("default", &"x".repeat(200));
        let b = backend_name("default", &format!("{}y", "x".repeat(199)));
        assert!(is_valid(&a) && is_valid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, backend_name("default", &"x".repeat(200)));
    }

    #[test]
    fn server_names_keep_nomad_ids_and_mark_ownership() {
        let id = "_nomad-task-5c1f0e2a-1b2c-3d4e-5f60-718293a4b5c6-web-web-http";
        assert_eq!(server_name(id), id);
        assert_eq!(server_name("abc"), "_nomad-abc");
        assert!(is_connector_server(&server_name("abc")));
        assert!(!is_connector_server("web1"));
    }

    #[test]
    fn server_names_are_valid_bounded_and_injective_on_cleaning() {
        let a = server_name("a b");
        let b = server_name("a/b");
        assert!(is_valid(&a) && is_valid(&b));
        assert_ne!(a, b, "cleaning must not merge distinct IDs");
        let long = server_name(&"z".repeat(300));
        assert!(long.len() <= MAX_NAME && is_valid(&long), "{long}");
        for hostile in ["x;shutdown sessions", "x\nadd server", "x/y", "[::1]"] {
            let name = server_name(hostile);
            assert!(is_valid(&name), "{name}");
        }
    }
}
