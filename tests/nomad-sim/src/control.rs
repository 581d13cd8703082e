//! The `/sim/...` HTTP control API (used by the binary and demos); it mirrors
//! the `Sim` methods and is never counted, delayed or failed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::goduration::parse_positive_duration;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::lifecycle::{PlaceAlloc, StopKind};
use crate::sim::{RestartKind, Shared};

#[derive(Deserialize)]
struct FailureSpec {
    path_prefix: String,
    status: u16,
    #[serde(default)]
    body: String,
    #[serde(default)]
    count: Option<usize>,
}

#[derive(Deserialize)]
struct DelaySpec {
    path_prefix: String,
    /// A Go duration (`2s`, `150ms`).
    delay: String,
}

fn bad(msg: &str) -> Response {
    Response::text(400, msg)
}

fn ok(v: &Value) -> Response {
    Response::json(v, true)
}

fn body_json<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Response> {
    serde_json::from_slice(&req.body).map_err(|e| bad(&format!("invalid JSON body: {e}")))
}

/// Handles `/sim/...`.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Request) -> Response {
    match route(shared, req) {
        Ok(r) | Err(r) => r,
    }
}

fn route(shared: &Arc<Shared>, req: &Request) -> Result<Response, Response> {
    let path = req.path.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').skip(2).collect();
    let ns = req.query_nonempty("namespace").unwrap_or("default");
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["jobs"]) => {
            let job: Value = body_json(req)?;
            let out = shared
                .mutate(|st| st.register_job(job))
                .map_err(|e| bad(&e.to_string()))?;
            Ok(ok(&json!(out)))
        }
        ("POST", ["jobs", id, "deregister"]) => {
            let purge = req.query("purge") == Some("true");
            let done = shared.mutate(|st| st.deregister_job(ns, id, purge));
            Ok(ok(&json!({"deregistered": done})))
        }
        ("GET", ["jobs", id, "allocs"]) => {
            let st = shared.lock();
            let mut allocs: Vec<(u64, String)> = st
                .allocs_of(ns, id)
                .map(|a| (a.create_index, a.id.clone()))
                .collect();
            allocs.sort();
            let ids: Vec<String> = allocs.into_iter().map(|(_, id)| id).collect();
            Ok(ok(&json!(ids)))
        }
        ("POST", ["allocs"]) => {
            let place: PlaceAlloc = body_json(req)?;
            let id = shared
                .mutate(|st| st.place_alloc(place))
                .map_err(|e| bad(&e.to_string()))?;
            Ok(ok(&json!({"id": id})))
        }
        ("POST", ["allocs", id, "stop"]) => {
            let how: StopKind = req
                .query("how")
                .unwrap_or("client_terminal")
                .parse()
                .map_err(|e: String| bad(&e))?;
            let done = shared.mutate(|st| st.stop_alloc(id, how));
            Ok(ok(&json!({"stopped": done})))
        }
        ("POST", ["allocs", id, "promote"]) => {
            let done = shared.mutate(|st| st.promote(id));
            Ok(ok(&json!({"promoted": done})))
        }
        ("POST", ["restart"]) => {
            let kind: RestartKind = req
                .query("kind")
                .unwrap_or("keep_state")
                .parse()
                .map_err(|e: String| bad(&e))?;
            shared.restart(kind);
            Ok(ok(
                &json!({"restarted": true, "index": shared.lock().index}),
            ))
        }
        ("POST", ["cut-streams"]) => {
            shared.cut_epoch.fetch_add(1, Ordering::SeqCst);
            Ok(ok(&json!({"cut": true})))
        }
        ("POST", ["faults"]) => {
            let f: FailureSpec = body_json(req)?;
            shared
                .faults()
                .add_failure(&f.path_prefix, f.status, &f.body, f.count);
            Ok(ok(&json!({"ok": true})))
        }
        ("DELETE", ["faults"]) => {
            shared.faults().clear();
            Ok(ok(&json!({"ok": true})))
        }
        ("POST", ["delays"]) => {
            let d: DelaySpec = body_json(req)?;
            let delay: Duration = parse_positive_duration(&d.delay).map_err(|e| bad(&e))?;
            shared.faults().set_delay(&d.path_prefix, delay);
            Ok(ok(&json!({"ok": true})))
        }
        ("GET", ["counts"]) => Ok(ok(&json!(shared.faults().counts()))),
        ("GET", ["services"]) => {
            let regs: Vec<Value> = shared
                .lock()
                .services
                .values()
                .map(|r| r.to_json())
                .collect();
            Ok(ok(&Value::Array(regs)))
        }
        ("GET", ["index"]) => Ok(ok(&json!({"index": shared.lock().index}))),
        _ => Err(Response::text(
            404,
            "unknown control endpoint (see tests/nomad-sim/README.md)",
        )),
    }
}
