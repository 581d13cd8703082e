//! Workload identities: the JWT a task gets with `identity { env = true }`
//! (in `NOMAD_TOKEN`) or `file = true` (in `secrets/nomad_token`).
//!
//! Nomad signs them with the leader's keyring; the simulator issues them and
//! remembers what it issued, so an unknown or forged token is refused just
//! as an unverifiable signature would be. The claims are Nomad's:
//! `nomad_namespace`, `nomad_job_id`, `nomad_allocation_id`, `nomad_task`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;

/// The claims of a task's default workload identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub namespace: String,
    pub job_id: String,
    pub group: String,
    pub task: String,
}

/// The identities issued so far, by token.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    issued: Mutex<HashMap<String, Claims>>,
}

impl Identities {
    /// Issues a JWT-shaped token for `claims` of allocation `alloc_id`.
    pub(crate) fn issue(&self, alloc_id: &str, claims: Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"sim","typ":"JWT"}"#);
        let payload = json!({
            "nomad_namespace": claims.namespace,
            "nomad_job_id": claims.job_id,
            "nomad_allocation_id": alloc_id,
            "nomad_task": claims.task,
            "aud": ["nomad.io"],
            "sub": format!("global:{}:{}:{}:{}:default",
                claims.namespace, claims.job_id, claims.group, claims.task),
        });
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        let signature = URL_SAFE_NO_PAD.encode(format!(
            "{:016x}{:016x}",
            crate::ids::random_u64(),
            crate::ids::random_u64()
        ));
        let token = format!("{header}.{payload}.{signature}");
        self.issued.lock().insert(token.clone(), claims);
        token
    }

    /// The claims of a token this agent issued.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        self.issued.lock().get(token).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_carries_nomads_claims_and_only_it_verifies() {
        let ids = Identities::default();
        let claims = Claims {
            namespace: "default".into(),
            job_id: "connector".into(),
            group: "connector".into(),
            task: "connector".into(),
        };
        let token = ids.issue("a1", claims.clone());
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["nomad_job_id"], "connector");
        assert_eq!(payload["nomad_allocation_id"], "a1");
        assert_eq!(ids.verify(&token), Some(claims));
        let forged = format!("{}.{}.AAAA", parts[0], parts[1]);
        assert_eq!(ids.verify(&forged), None);
    }
}
