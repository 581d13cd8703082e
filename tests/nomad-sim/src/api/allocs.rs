//! `/v1/allocation/:id` (full allocation with the job version it runs),
//! `/v1/allocation/:id/services`, and the client's
//! `/v1/client/allocation/:id/checks` (aliased as `/v1/allocation/:id/checks`).

use std::sync::Arc;

use serde_json::Value;

use super::blocking::Answer;
use super::query::{self, with_meta};
use super::{blocking, invalid_method, permission_denied};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::sim::Shared;
use crate::state::tables;

/// Dispatches like `allocSpecificRequest`.
pub(super) async fn handle(shared: &Arc<Shared>, req: &Request, rest: &str) -> Response {
    let tokens: Vec<&str> = rest.split('/').collect();
    match tokens.as_slice() {
        [id] => get(shared, req, id).await,
        [id, "services"] => services(shared, req, id).await,
        [id, "checks"] => checks(shared, req, id),
        _ => Response::text(404, "resource not found"),
    }
}

/// `/v1/client/allocation/...`: of the client endpoints, only `checks`.
pub(super) fn client(shared: &Arc<Shared>, req: &Request, rest: &str) -> Response {
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [id, "checks"] => checks(shared, req, id),
        _ => Response::empty(404),
    }
}

/// The check results of an allocation (Nomad 1.4+): not blocking, ACL
/// `read-job` in the allocation's namespace, 404 for an unknown allocation.
fn checks(shared: &Arc<Shared>, req: &Request, id: &str) -> Response {
    if req.method != "GET" {
        return invalid_method();
    }
    let opts = match query::parse(shared, req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = {
        let st = shared.lock();
        let Some(alloc) = st.allocs.get(id) else {
            return Response::text(404, "alloc not found");
        };
        if !opts.identity.can_read(&alloc.namespace) {
            return permission_denied();
        }
        let store = shared.checks.lock();
        let started = alloc.started_at.unwrap_or(alloc.create_time) / 1_000_000_000;
        crate::model::checks::results(
            alloc,
            &st.settings.region,
            &st.settings.datacenter,
            &store,
            started,
        )
    };
    Response::json(&body, opts.pretty)
}

async fn get(shared: &Arc<Shared>, req: &Request, id: &str) -> Response {
    if req.method != "GET" {
        return invalid_method();
    }
    let opts = match query::parse(shared, req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (index, value) = blocking::run(shared, &opts, |st| match st.allocs.get(id) {
        Some(a) => Answer::of(a.modify_index, a.to_json(true)),
        None => Answer::of(st.table_index(tables::ALLOCS).max(1), Value::Null),
    })
    .await;
    if value.is_null() {
        return with_meta(Response::text(404, "alloc not found"), index);
    }
    let ns = value
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if !opts.identity.can_read(ns) {
        return Response::text(500, &format!("Unknown allocation {id:?}"));
    }
    with_meta(Response::json(&value, opts.pretty), index)
}

async fn services(shared: &Arc<Shared>, req: &Request, id: &str) -> Response {
    if req.method != "GET" {
        return invalid_method();
    }
    let opts = match query::parse(shared, req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let alloc_ns = shared.lock().allocs.get(id).map(|a| a.namespace.clone());
    let Some(ns) = alloc_ns else {
        return Response::text(404, "allocation not found");
    };
    if !opts.identity.can_read(&ns) {
        return permission_denied();
    }
    let (index, value) = blocking::run(shared, &opts, |st| {
        let regs = st
            .services
            .values()
            .filter(|r| r.alloc_id == id)
            .map(|r| r.to_json())
            .collect();
        Answer::of(st.table_index(tables::SERVICES).max(1), Value::Array(regs))
    })
    .await;
    with_meta(Response::json(&value, opts.pretty), index)
}
