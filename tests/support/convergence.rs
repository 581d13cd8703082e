//! Convergence: HAProxy's own view (`show servers state`, `show backend`)
//! compared with Nomad's truth (the simulator's registrations).
//!
//! The oracle reads both sides itself: the registrations straight from the
//! simulator's store, the servers from HAProxy's runtime API. It shares only
//! the naming rule with the connector (`vocab::names`, documented in
//! `docs/haproxy-driver.md`): backend `<namespace>_<service>` (or the
//! `haproxy.backend.name` tag), server = the registration ID.
//!
//! "Converged" means, for every instance tagged `haproxy.enable=true`: its
//! server is in its backend at its address and port, with its weight
//! (`haproxy.weight`, default 1), and serving (operational state running,
//! no admin flag: not in maintenance, not draining); no other connector
//! server (`_nomad-…`) exists; and no backend of the managed file that
//! HAProxy runs is left without an instance in Nomad.

use crate::haproxy::{Haproxy, send};
use haproxy_nomad_connector::vocab::names;
use nomad_sim::Sim;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ENABLE: &str = "haproxy.enable=true";

/// A server as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `address:port`.
    pub addr: String,
    /// The weight.
    pub weight: u32,
    /// Serving: running, no maintenance, no drain (always true for Nomad's side).
    pub serving: bool,
    /// HAProxy's `srv_op_state` and `srv_admin_state` (empty for Nomad's side).
    pub states: String,
}

/// backend → server → server.
pub type View = BTreeMap<String, BTreeMap<String, Server>>;

/// What Nomad says HAProxy should run: every enabled registration.
pub fn nomad_truth(registrations: &[Value]) -> View {
    let mut view = View::new();
    for r in registrations {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let tags: Vec<&str> = r
            .get("Tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !tags.contains(&ENABLE) {
            continue;
        }
        let tag = |key: &str| {
            tags.iter()
                .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
        };
        let backend = tag("haproxy.backend.name")
            .map(String::from)
            .unwrap_or_else(|| names::backend_name(field("Namespace"), field("ServiceName")));
        let port = r.get("Port").and_then(Value::as_i64).unwrap_or_default();
        view.entry(backend).or_default().insert(
            names::server_name(field("ID")),
            Server {
                addr: format!("{}:{port}", field("Address")),
                weight: tag("haproxy.weight")
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(1),
                serving: true,
                states: String::new(),
            },
        );
    }
    view
}

/// The connector's servers (`_nomad-…`) as HAProxy reports them, with the
/// backends HAProxy runs (`show backend`).
pub async fn haproxy_view(haproxy: &Haproxy) -> Result<(View, BTreeSet<String>), String> {
    let socket = &haproxy.stats_socket;
    let state = send(socket, "show servers state")
        .await
        .map_err(|e| format!("show servers state: {e}"))?;
    let backends = send(socket, "show backend")
        .await
        .map_err(|e| format!("show backend: {e}"))?;
    let mut lines = state.lines().skip(1);
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(' ')
        .collect();
    let mut view = View::new();
    for line in lines.filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let row: BTreeMap<&str, &str> = header.iter().copied().zip(line.split(' ')).collect();
        let col = |k: &str| row.get(k).copied().unwrap_or_default();
        if !names::is_connector_server(col("srv_name")) {
            continue;
        }
        let (op, admin) = (col("srv_op_state"), col("srv_admin_state"));
        view.entry(col("be_name").to_string()).or_default().insert(
            col("srv_name").to_string(),
            Server {
                addr: format!("{}:{}", col("srv_addr"), col("srv_port")),
                weight: col("srv_uweight").parse().unwrap_or_default(),
                serving: op == "2" && admin == "0",
                states: format!("op_state {op} admin_state {admin}"),
            },
        );
    }
    let running = backends
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    Ok((view, running))
}

/// The backends declared in the connector's managed file.
pub fn managed_backends(managed_cfg: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(managed_cfg)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("backend "))
        .map(|b| b.trim().to_string())
        .collect()
}

/// Server-level differences, one line each (`+` only in Nomad, `-` only
/// in HAProxy, `~` different, `!` not serving); empty when they agree.
pub fn server_diff(truth: &View, actual: &View) -> Vec<String> {
    let mut out = Vec::new();
    let empty = BTreeMap::new();
    let backends: BTreeSet<&String> = truth.keys().chain(actual.keys()).collect();
    for backend in backends {
        let want = truth.get(backend).unwrap_or(&empty);
        let have = actual.get(backend).unwrap_or(&empty);
        for (name, w) in want {
            match have.get(name) {
                None => out.push(format!(
                    "+ {backend}/{name} {} weight {}: in Nomad, not in HAProxy",
                    w.addr, w.weight
                )),
                Some(h) if h.addr != w.addr || h.weight != w.weight => out.push(format!(
                    "~ {backend}/{name}: Nomad {} weight {}, HAProxy {} weight {}",
                    w.addr, w.weight, h.addr, h.weight
                )),
                Some(h) if !h.serving => out.push(format!(
                    "! {backend}/{name} {}: not serving in HAProxy ({})",
                    h.addr, h.states
                )),
                Some(_) => {}
            }
        }
        for (name, h) in have {
            if !want.contains_key(name) {
                out.push(format!(
                    "- {backend}/{name} {} ({}): in HAProxy, not in Nomad",
                    h.addr, h.states
                ));
            }
        }
    }
    out
}

/// Backend-level differences: managed backends HAProxy runs without any
/// instance in Nomad.
pub fn backend_diff(
    truth: &View,
    running: &BTreeSet<String>,
    managed: &BTreeSet<String>,
) -> Vec<String> {
    managed
        .iter()
        .filter(|b| running.contains(*b) && !truth.contains_key(*b))
        .map(|b| format!("- backend {b}: HAProxy runs it, Nomad has no instance"))
        .collect()
}

/// Every difference between HAProxy and Nomad's truth; empty when converged.
pub async fn diff(sim: &Sim, haproxy: &Haproxy) -> Vec<String> {
    let (actual, running) = match haproxy_view(haproxy).await {
        Ok(v) => v,
        Err(e) => return vec![format!("HAProxy unreadable: {e}")],
    };
    let truth = nomad_truth(&sim.services_snapshot());
    let mut out = server_diff(&truth, &actual);
    out.extend(backend_diff(
        &truth,
        &running,
        &managed_backends(&haproxy.managed_cfg),
    ));
    out
}

/// Only the server-level differences (see [`server_diff`]).
pub async fn servers_diff(sim: &Sim, haproxy: &Haproxy) -> Vec<String> {
    match haproxy_view(haproxy).await {
        Ok((actual, _)) => server_diff(&nomad_truth(&sim.services_snapshot()), &actual),
        Err(e) => vec![format!("HAProxy unreadable: {e}")],
    }
}
