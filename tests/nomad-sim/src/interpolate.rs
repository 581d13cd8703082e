//! `${VAR}` interpolation as Nomad does it: the server's `${JOB}`-style service-name
//! canonicalisation, and the client's task environment (`${NOMAD_*}`, `${node.*}`).

use std::collections::HashMap;

/// Replaces every `${name}` whose name is in `env` (Go's `args.ReplaceEnv`);
/// names are `[A-Za-z0-9_.-]+`, unknown ones are left as they are.
pub(crate) fn replace_env(input: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            let name = &after[..name_len];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                }
            }
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The server-side replacements in `Service.Name` at job registration
/// (`Service.Canonicalize`): `${JOB}`, `${TASKGROUP}`, `${TASK}`, `${BASE}`.
pub(crate) fn canonical_service_name(name: &str, job: &str, group: &str, task: &str) -> String {
    let env: HashMap<String, String> = [
        ("JOB", job.to_string()),
        ("TASKGROUP", group.to_string()),
        ("TASK", task.to_string()),
        ("BASE", format!("{job}-{group}-{task}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    replace_env(name, &env)
}

/// What the client knows when it builds a task or group environment.
pub(crate) struct EnvInputs<'a> {
    pub job_id: &'a str,
    pub job_name: &'a str,
    pub parent_id: &'a str,
    pub group: &'a str,
    pub task: Option<&'a str>,
    pub alloc_id: &'a str,
    pub alloc_name: &'a str,
    pub alloc_index: u64,
    pub namespace: &'a str,
    pub region: &'a str,
    pub datacenter: &'a str,
    pub node_id: &'a str,
    pub node_name: &'a str,
    /// Job, then group, then task meta: later ones win.
    pub metas: Vec<&'a serde_json::Value>,
    /// The task's `Env` block, if any.
    pub task_env: Option<&'a serde_json::Value>,
    /// (label, host value, `To` mapping, host IP)
    pub ports: Vec<(&'a str, i64, i64, &'a str)>,
}

/// Builds the environment the client interpolates service fields against
/// (`client/taskenv`): `NOMAD_*` variables, node attributes and task env.
pub(crate) fn client_env(i: &EnvInputs<'_>) -> HashMap<String, String> {
    let mut env = HashMap::new();
    let mut set = |k: String, v: String| {
        env.insert(k, v);
    };
    if let Some(serde_json::Value::Object(task_env)) = i.task_env {
        for (k, v) in task_env {
            if let Some(v) = v.as_str() {
                set(k.clone(), v.to_string());
            }
        }
    }
    set("NOMAD_JOB_ID".into(), i.job_id.into());
    set("NOMAD_JOB_NAME".into(), i.job_name.into());
    set("NOMAD_JOB_PARENT_ID".into(), i.parent_id.into());
    set("NOMAD_GROUP_NAME".into(), i.group.into());
    if let Some(task) = i.task {
        set("NOMAD_TASK_NAME".into(), task.into());
    }
    set("NOMAD_ALLOC_ID".into(), i.alloc_id.into());
    set(
        "NOMAD_SHORT_ALLOC_ID".into(),
        i.alloc_id.chars().take(8).collect(),
    );
    set("NOMAD_ALLOC_NAME".into(), i.alloc_name.into());
    set("NOMAD_ALLOC_INDEX".into(), i.alloc_index.to_string());
    set("NOMAD_NAMESPACE".into(), i.namespace.into());
    set("NOMAD_REGION".into(), i.region.into());
    set("NOMAD_DC".into(), i.datacenter.into());
    for meta in &i.metas {
        if let serde_json::Value::Object(map) = meta {
            for (k, v) in map {
                if let Some(v) = v.as_str() {
                    set(format!("NOMAD_META_{k}"), v.to_string());
                    set(format!("NOMAD_META_{}", k.to_uppercase()), v.to_string());
                }
            }
        }
    }
    for (label, value, to, ip) in &i.ports {
        let inside = if *to > 0 { *to } else { *value };
        set(format!("NOMAD_PORT_{label}"), inside.to_string());
        set(format!("NOMAD_HOST_PORT_{label}"), value.to_string());
        set(format!("NOMAD_ALLOC_PORT_{label}"), inside.to_string());
        set(format!("NOMAD_IP_{label}"), (*ip).to_string());
        set(format!("NOMAD_HOST_IP_{label}"), (*ip).to_string());
        set(format!("NOMAD_ADDR_{label}"), format!("{ip}:{value}"));
        set(format!("NOMAD_HOST_ADDR_{label}"), format!("{ip}:{value}"));
    }
    set("node.unique.id".into(), i.node_id.into());
    set("node.unique.name".into(), i.node_name.into());
    set("node.datacenter".into(), i.datacenter.into());
    set("node.region".into(), i.region.into());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_known_and_keeps_unknown() {
        let env: HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
        assert_eq!(replace_env("${A}-${B}-$A-${", &env), "x-${B}-$A-${");
        assert_eq!(replace_env("${A}${A}", &env), "xx");
        assert_eq!(replace_env("${ A}", &env), "${ A}");
        assert_eq!(replace_env("€${A}€", &env), "€x€");
    }

    #[test]
    fn server_canonicalisation() {
        assert_eq!(
            canonical_service_name("${BASE}-${NOMAD_JOB_NAME}", "j", "g", "t"),
            "j-g-t-${NOMAD_JOB_NAME}"
        );
    }
}
