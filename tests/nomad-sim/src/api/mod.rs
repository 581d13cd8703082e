//! Routing of `/v1/...` (after counting, delays and injected failures) and of
//! the `/sim/...` control endpoints.

mod allocs;
mod blocking;
mod jobs;
mod query;
mod services;

use std::sync::Arc;

use serde_json::json;

use crate::http::request::Request;
use crate::http::response::Response;
use crate::sim::Shared;
use crate::stream::{self, StreamRequest};

/// What to do with a request.
pub(crate) enum Routed {
    /// A complete response.
    Response(Response),
    /// Hand the connection to the event stream.
    Stream(StreamRequest),
}

/// `405 Invalid method`.
pub(crate) fn invalid_method() -> Response {
    Response::text(405, "Invalid method")
}

/// `403 Permission denied`.
pub(crate) fn permission_denied() -> Response {
    Response::text(403, "Permission denied")
}

/// Counts, delays and fails the request as configured, then routes it.
pub(crate) async fn dispatch(shared: &Arc<Shared>, req: &Request) -> Routed {
    if req.path == "/sim" || req.path.starts_with("/sim/") {
        return Routed::Response(crate::control::handle(shared, req).await);
    }
    let (delay, failure) = {
        let mut faults = shared.faults();
        faults.count(&req.path);
        (faults.delay_for(&req.path), faults.take_failure(&req.path))
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some((status, body)) = failure {
        return Routed::Response(Response::text(status, &body));
    }
    let path = req.path.as_str();
    let resp = if path == "/v1/event/stream" {
        return match stream::prepare(req) {
            Ok(s) => Routed::Stream(s),
            Err(resp) => Routed::Response(resp),
        };
    } else if path == "/v1/services" {
        services::list(shared, req).await
    } else if let Some(rest) = path.strip_prefix("/v1/service/") {
        services::by_name(shared, req, rest).await
    } else if let Some(rest) = path.strip_prefix("/v1/job/") {
        jobs::handle(shared, req, rest).await
    } else if let Some(rest) = path.strip_prefix("/v1/allocation/") {
        allocs::handle(shared, req, rest).await
    } else if let Some(rest) = path.strip_prefix("/v1/client/allocation/") {
        allocs::client(shared, req, rest)
    } else if path == "/v1/status/leader" {
        Response::json(&json!("127.0.0.1:4647"), false)
    } else if path == "/v1/status/peers" {
        Response::json(&json!(["127.0.0.1:4647"]), false)
    } else {
        // Nomad's root fall-through: a bare 404 with no body.
        Response::empty(404)
    };
    Routed::Response(resp)
}
