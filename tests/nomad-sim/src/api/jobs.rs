//! `/v1/job/:id`, `/v1/job/:id/versions`, `/v1/job/:id/allocations`,
//! `/v1/job/:id/services` (reads only).

use std::sync::Arc;

use serde_json::{Value, json};

use super::blocking::Answer;
use super::query::{self, QueryOptions, with_meta};
use super::{blocking, invalid_method, permission_denied};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::sim::Shared;
use crate::state::tables;

/// Dispatches on the path suffix, as `jobSpecificRequest` does.
pub(super) async fn handle(shared: &Arc<Shared>, req: &Request, rest: &str) -> Response {
    if req.method != "GET" {
        return invalid_method();
    }
    let opts = match query::parse(shared, req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if !opts.identity.can_read(&opts.namespace) {
        return permission_denied();
    }
    if let Some(id) = rest.strip_suffix("/allocations") {
        allocations(shared, req, &opts, id).await
    } else if let Some(id) = rest.strip_suffix("/versions") {
        versions(shared, &opts, id).await
    } else if let Some(id) = rest.strip_suffix("/services") {
        services(shared, &opts, id).await
    } else {
        job(shared, &opts, rest).await
    }
}

fn key(opts: &QueryOptions, id: &str) -> (String, String) {
    (opts.namespace.clone(), id.to_string())
}

/// `GET /v1/job/:id`: the latest version; `X-Nomad-Index` = its ModifyIndex.
async fn job(shared: &Arc<Shared>, opts: &QueryOptions, id: &str) -> Response {
    let key = key(opts, id);
    let (index, value) = blocking::run(shared, opts, |st| match st.jobs.get(&key) {
        Some(rec) => Answer::of(
            rec.current
                .get("ModifyIndex")
                .and_then(Value::as_u64)
                .unwrap_or(1),
            rec.current.clone(),
        ),
        None => Answer::of(st.table_index(tables::JOBS).max(1), Value::Null),
    })
    .await;
    if value.is_null() {
        return with_meta(Response::text(404, "job not found"), index);
    }
    with_meta(Response::json(&value, opts.pretty), index)
}

/// `GET /v1/job/:id/versions`: newest first, `Diffs` null.
async fn versions(shared: &Arc<Shared>, opts: &QueryOptions, id: &str) -> Response {
    let key = key(opts, id);
    let (index, value) = blocking::run(shared, opts, |st| {
        let index = st.table_index(tables::JOB_VERSION).max(1);
        match st.jobs.get(&key) {
            Some(rec) => Answer::of(
                index,
                Value::Array(rec.versions.iter().rev().cloned().collect()),
            ),
            None => Answer::of(index, Value::Null),
        }
    })
    .await;
    if value.is_null() {
        return with_meta(Response::text(404, "job versions not found"), index);
    }
    let body = json!({
        "Diffs": null,
        "Index": index,
        "KnownLeader": true,
        "LastContact": 0,
        "NextToken": "",
        "Versions": value,
    });
    with_meta(Response::json(&body, opts.pretty), index)
}

/// `GET /v1/job/:id/allocations`: stubs of the current job instance's allocs
/// (`all=true` includes those of a purged earlier job with the same ID).
async fn allocations(
    shared: &Arc<Shared>,
    req: &Request,
    opts: &QueryOptions,
    id: &str,
) -> Response {
    let all = req.query("all") == Some("true");
    let key = key(opts, id);
    let (index, value) = blocking::run(shared, opts, |st| {
        let create_index = st
            .jobs
            .get(&key)
            .and_then(|rec| rec.current.get("CreateIndex").and_then(Value::as_u64));
        let stubs = st
            .allocs_of(&key.0, &key.1)
            .filter(|a| all || create_index.is_none_or(|ci| a.job_create_index == ci))
            .map(|a| a.stub_json())
            .collect();
        Answer::of(st.table_index(tables::ALLOCS).max(1), Value::Array(stubs))
    })
    .await;
    with_meta(Response::json(&value, opts.pretty), index)
}

/// `GET /v1/job/:id/services`.
async fn services(shared: &Arc<Shared>, opts: &QueryOptions, id: &str) -> Response {
    let key = key(opts, id);
    let (index, value) = blocking::run(shared, opts, |st| {
        let index = st.table_index(tables::SERVICES).max(1);
        if !st.jobs.contains_key(&key) {
            return Answer::of(index, Value::Null);
        }
        let regs = st
            .services
            .values()
            .filter(|r| r.namespace == key.0 && r.job_id == key.1)
            .map(|r| r.to_json())
            .collect();
        Answer::of(index, Value::Array(regs))
    })
    .await;
    if value.is_null() {
        return with_meta(Response::text(404, "job not found"), index);
    }
    with_meta(Response::json(&value, opts.pretty), index)
}
