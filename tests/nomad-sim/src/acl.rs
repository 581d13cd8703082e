//! ACL tokens and capability checks (`read-job` per namespace, `node:read`, management),
//! plus token extraction from `X-Nomad-Token` / `Authorization: Bearer`, and
//! the policies attached to workload identities.

use crate::identity::{Claims, Identities};

/// What a token (or the anonymous policy) may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// A management token: everything is allowed.
    pub management: bool,
    /// Namespace globs (`default`, `prod-*`, `*`) with `read-job` (and `list-jobs`).
    pub read_job: Vec<String>,
    /// Namespace globs with `submit-job` (needed by `DELETE /v1/service/...`).
    pub submit_job: Vec<String>,
    /// `node { policy = "read" }`, needed for the `Node` topic.
    pub node_read: bool,
}

impl Capabilities {
    /// A management policy.
    pub fn management() -> Self {
        Capabilities {
            management: true,
            ..Capabilities::default()
        }
    }

    /// `read-job` in the given namespace globs.
    pub fn read(namespaces: &[&str]) -> Self {
        Capabilities {
            read_job: namespaces.iter().map(|s| (*s).to_string()).collect(),
            ..Capabilities::default()
        }
    }

    /// Whether `read-job` is granted in namespace `ns`; for the literal `*` this
    /// means "in any namespace" (`AllowNsOp`'s wildcard rule).
    pub fn can_read(&self, ns: &str) -> bool {
        self.management || granted(&self.read_job, ns)
    }

    /// Whether `submit-job` is granted in namespace `ns`.
    pub fn can_submit(&self, ns: &str) -> bool {
        self.management || granted(&self.submit_job, ns)
    }
}

fn granted(globs: &[String], ns: &str) -> bool {
    if ns == "*" {
        return !globs.is_empty();
    }
    globs.iter().any(|g| glob_match(g, ns))
}

/// One ACL token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclToken {
    /// The secret sent by clients.
    pub secret: String,
    /// Its policy.
    pub caps: Capabilities,
}

impl AclToken {
    /// A management token with this secret.
    pub fn management(secret: &str) -> Self {
        AclToken {
            secret: secret.to_string(),
            caps: Capabilities::management(),
        }
    }

    /// A token with `read-job` in the given namespace globs.
    pub fn read(secret: &str, namespaces: &[&str]) -> Self {
        AclToken {
            secret: secret.to_string(),
            caps: Capabilities::read(namespaces),
        }
    }
}

/// A policy attached to a job's workload identity, as
/// `nomad acl policy apply -namespace NS -job JOB [-group G [-task T]] NAME FILE`
/// does: every task of the job (or of the group, or that task) gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPolicy {
    /// The job's namespace.
    pub namespace: String,
    /// The job ID.
    pub job_id: String,
    /// Only this task group, if set.
    pub group: Option<String>,
    /// Only this task (of `group`), if set.
    pub task: Option<String>,
    /// The policy.
    pub caps: Capabilities,
}

impl JobPolicy {
    /// A policy for every task of `job_id` in `namespace`.
    pub fn for_job(namespace: &str, job_id: &str, caps: Capabilities) -> Self {
        JobPolicy {
            namespace: namespace.to_string(),
            job_id: job_id.to_string(),
            group: None,
            task: None,
            caps,
        }
    }

    fn applies_to(&self, c: &Claims) -> bool {
        self.namespace == c.namespace
            && self.job_id == c.job_id
            && self.group.as_ref().is_none_or(|g| *g == c.group)
            && self.task.as_ref().is_none_or(|t| *t == c.task)
    }
}

/// ACL configuration: when present, ACLs are enabled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    /// Known tokens.
    pub tokens: Vec<AclToken>,
    /// The anonymous policy, used when no token is sent (empty by default).
    pub anonymous: Capabilities,
    /// Policies attached to workload identities. A workload identity gets
    /// the union of those that match its claims. (Nomad's implicit policy
    /// also lets it read service registrations and its own variables; the
    /// simulator leaves that out: it grants nothing the connector can use
    /// alone, since job specs and the event stream need `read-job`.)
    pub job_policies: Vec<JobPolicy>,
}

impl Acl {
    /// ACLs with these tokens and an empty anonymous policy.
    pub fn with_tokens(tokens: Vec<AclToken>) -> Self {
        Acl {
            tokens,
            ..Acl::default()
        }
    }
}

/// The result of resolving a request's token.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// ACLs are disabled: everything is allowed.
    Open,
    /// ACLs are enabled; these are the caller's capabilities.
    Caps(Capabilities),
}

impl Identity {
    /// `read-job` in `ns`.
    pub(crate) fn can_read(&self, ns: &str) -> bool {
        match self {
            Identity::Open => true,
            Identity::Caps(c) => c.can_read(ns),
        }
    }

    /// `submit-job` in `ns`.
    pub(crate) fn can_submit(&self, ns: &str) -> bool {
        match self {
            Identity::Open => true,
            Identity::Caps(c) => c.can_submit(ns),
        }
    }

    /// A management token (or ACLs disabled).
    pub(crate) fn is_management(&self) -> bool {
        match self {
            Identity::Open => true,
            Identity::Caps(c) => c.management,
        }
    }

    /// `node:read`.
    pub(crate) fn can_read_nodes(&self) -> bool {
        match self {
            Identity::Open => true,
            Identity::Caps(c) => c.management || c.node_read,
        }
    }
}

/// Resolves a token (an ACL token's secret or a workload identity);
/// `Err(())` for a token ACLs do not know (403 `Permission denied`).
pub(crate) fn resolve(acl: Option<&Acl>, ids: &Identities, token: &str) -> Result<Identity, ()> {
    let Some(acl) = acl else {
        return Ok(Identity::Open);
    };
    if token.is_empty() {
        return Ok(Identity::Caps(acl.anonymous.clone()));
    }
    if let Some(t) = acl.tokens.iter().find(|t| t.secret == token) {
        return Ok(Identity::Caps(t.caps.clone()));
    }
    let claims = ids.verify(token).ok_or(())?;
    let mut caps = Capabilities::default();
    for policy in acl.job_policies.iter().filter(|p| p.applies_to(&claims)) {
        caps.management |= policy.caps.management;
        caps.node_read |= policy.caps.node_read;
        caps.read_job.extend(policy.caps.read_job.iter().cloned());
        caps.submit_job
            .extend(policy.caps.submit_job.iter().cloned());
    }
    Ok(Identity::Caps(caps))
}

/// The Task API's own check, before any endpoint's: it always wants a
/// credential, even with ACLs disabled, and the anonymous policy never
/// applies. `Err(401)` without a token, `Err(403)` for one the agent does not
/// know (as Nomad's `api-auth` end-to-end job expects).
pub(crate) fn authenticate_task_api(
    acl: Option<&Acl>,
    ids: &Identities,
    token: &str,
) -> Result<(), u16> {
    if token.is_empty() {
        return Err(401);
    }
    let known_acl_token = acl.is_some_and(|a| a.tokens.iter().any(|t| t.secret == token));
    if known_acl_token || ids.verify(token).is_some() {
        Ok(())
    } else {
        Err(403)
    }
}

/// Nomad's `parseToken`: `X-Nomad-Token` (trimmed) wins; otherwise the first word
/// after a case-insensitive `Bearer` scheme in `Authorization`.
pub(crate) fn token_from_headers(
    x_nomad_token: Option<&str>,
    authorization: Option<&str>,
) -> String {
    if let Some(t) = x_nomad_token.filter(|t| !t.is_empty()) {
        return t.trim().to_string();
    }
    if let Some(auth) = authorization.filter(|a| !a.is_empty()) {
        let parts: Vec<&str> = auth.split(' ').collect();
        if parts.len() > 1 && parts[0].eq_ignore_ascii_case("bearer") {
            let value = parts[1..].join(" ");
            return value
                .trim()
                .split(' ')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
        }
    }
    String::new()
}

/// `*`-glob match (any run of characters), as in Nomad namespace policies.
fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("prod-*", "prod-eu"));
        assert!(!glob_match("prod-*", "dev"));
        assert!(glob_match("default", "default"));
        assert!(!glob_match("default", "defaults"));
    }

    #[test]
    fn token_precedence() {
        assert_eq!(token_from_headers(Some(" a "), Some("Bearer b")), "a");
        assert_eq!(token_from_headers(None, Some("bEaReR b c")), "b");
        assert_eq!(token_from_headers(Some(""), Some("Bearer  b")), "b");
        assert_eq!(token_from_headers(None, Some("Basic b")), "");
        assert_eq!(token_from_headers(None, Some("Bearer")), "");
    }

    #[test]
    fn wildcard_namespace_means_any() {
        let c = Capabilities::read(&["default"]);
        assert!(c.can_read("*"));
        assert!(!Capabilities::default().can_read("*"));
    }
}
