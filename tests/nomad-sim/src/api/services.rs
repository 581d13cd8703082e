//! `/v1/services` (per-namespace stubs, tags de-duplicated, Go map order) and
//! `/v1/service/:name` (registrations, `[]` when none, pagination), plus
//! `DELETE /v1/service/:name/:id`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::blocking::Answer;
use super::query::{self, with_meta};
use super::{blocking, invalid_method, permission_denied};
use crate::acl::{self, Identity};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::ids::shuffle;
use crate::sim::Shared;
use crate::state::{State, tables};

/// `GET /v1/services`.
pub(super) async fn list(shared: &Arc<Shared>, req: &Request) -> Response {
    if req.method != "GET" {
        return invalid_method();
    }
    let opts = match query::parse(shared, req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ns = opts.namespace.clone();
    if ns != "*" && !opts.identity.can_read(&ns) {
        return permission_denied();
    }
    let ident = opts.identity.clone();
    let (index, value) = blocking::run(shared, &opts, |st| {
        let watch = st
            .services
            .values()
            .filter(|r| ns == "*" || r.namespace == ns)
            .map(|r| r.to_json())
            .collect();
        Answer {
            index: st.table_index(tables::SERVICES).max(1),
            body: list_value(st, &ns, &ident),
            watch: Value::Array(watch),
        }
    })
    .await;
    with_meta(Response::json(&go_map_order(value), opts.pretty), index)
}

/// The canonical (sorted) list result.
fn list_value(st: &State, ns: &str, ident: &Identity) -> Value {
    let mut by_ns: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for r in st.services.values() {
        let visible = if ns == "*" {
            ident.can_read(&r.namespace)
        } else {
            r.namespace == ns
        };
        if !visible {
            continue;
        }
        let tags = by_ns
            .entry(&r.namespace)
            .or_default()
            .entry(&r.service_name)
            .or_default();
        for t in r.tags.iter().flatten() {
            tags.insert(t);
        }
    }
    Value::Array(
        by_ns
            .into_iter()
            .map(|(ns, services)| {
                let services: Vec<Value> = services
                    .into_iter()
                    .map(|(name, tags)| json!({"ServiceName": name, "Tags": tags}))
                    .collect();
                json!({"Namespace": ns, "Services": services})
            })
            .collect(),
    )
}

/// Nomad builds these lists from Go maps: namespaces, services and tags come
/// out in random order.
fn go_map_order(mut value: Value) -> Value {
    if let Some(list) = value.as_array_mut() {
        shuffle(list);
        for stub in list.iter_mut() {
            if let Some(services) = stub.get_mut("Services").and_then(Value::as_array_mut) {
                shuffle(services);
                for s in services.iter_mut() {
                    if let Some(tags) = s.get_mut("Tags").and_then(Value::as_array_mut) {
                        shuffle(tags);
                    }
                }
            }
        }
    }
    value
}

/// `/v1/service/...`: `:name` (GET) or `:name/:id` (DELETE).
pub(super) async fn by_name(shared: &Arc<Shared>, req: &Request, rest: &str) -> Response {
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [name] => {
            if req.method != "GET" {
                return invalid_method();
            }
            if name.is_empty() {
                return Response::text(400, "missing service name");
            }
            get(shared, req, name).await
        }
        [_, id] => {
            if req.method != "DELETE" {
                return invalid_method();
            }
            if id.is_empty() {
                return Response::text(400, "missing service id");
            }
            delete(shared, req, id)
        }
        _ => Response::text(400, "invalid URI"),
    }
}

async fn get(shared: &Arc<Shared>, req: &Request, name: &str) -> Response {
    let opts = match query::parse(shared, req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if !opts.identity.can_read(&opts.namespace) {
        return permission_denied();
    }
    let ns = opts.namespace.clone();
    let (index, value) = blocking::run(shared, &opts, |st| {
        let regs: Vec<Value> = st
            .registrations_named(&ns, name)
            .into_iter()
            .map(|r| r.to_json())
            .collect();
        Answer::of(st.table_index(tables::SERVICES).max(1), Value::Array(regs))
    })
    .await;
    let mut regs = match value {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    // Paginator over the (namespace, ID) index.
    let token = |r: &Value| {
        format!(
            "{}.{}",
            r.get("Namespace").and_then(Value::as_str).unwrap_or(""),
            r.get("ID").and_then(Value::as_str).unwrap_or("")
        )
    };
    let reverse = req.query("reverse") == Some("true");
    if reverse {
        regs.reverse();
    }
    if let Some(next) = req.query_nonempty("next_token") {
        regs.retain(|r| {
            let t = token(r);
            if reverse {
                t.as_str() <= next
            } else {
                t.as_str() >= next
            }
        });
    }
    let per_page = req
        .query_nonempty("per_page")
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or(0);
    let mut next_token = None;
    if let Ok(per_page) = usize::try_from(per_page)
        && per_page > 0
        && regs.len() > per_page
    {
        next_token = Some(token(&regs[per_page]));
        regs.truncate(per_page);
    }
    let mut resp = with_meta(Response::json(&Value::Array(regs), opts.pretty), index);
    if let Some(t) = next_token {
        resp = resp.header("X-Nomad-Nexttoken", &t);
    }
    resp
}

fn delete(shared: &Arc<Shared>, req: &Request, id: &str) -> Response {
    let ns = req
        .query_nonempty("namespace")
        .unwrap_or("default")
        .to_string();
    let token = acl::token_from_headers(req.header("X-Nomad-Token"), req.header("Authorization"));
    match acl::resolve(shared.cfg.acl.as_ref(), &shared.identities, &token) {
        Ok(ident) if ident.can_submit(&ns) => {}
        _ => return permission_denied(),
    }
    match shared.mutate(|st| st.delete_registration(&ns, id)) {
        Ok(index) => Response::empty(200).header("X-Nomad-Index", &index.to_string()),
        Err(_) => Response::text(500, "service registration not found"),
    }
}
