//! `diff(desired, actual)`: the changes that make HAProxy run the desired state.
//!
//! Pure and level-triggered: the same function serves start-up, every event
//! and every resync, so a server an operator deleted, an HAProxy restart that
//! lost runtime state or a missed event all heal on the next pass.
//!
//! Decisions:
//! - A server's static arguments (check, `maxconn`, `backup`) cannot change
//!   at runtime on 2.6 (only `check-port`/`check-addr` can, which covers too
//!   little). In a connector-owned backend the change becomes a reload: the
//!   server keeps its state (the state file restores it), keeps serving and
//!   keeps its sessions. Re-adding it instead would drop its sessions and
//!   keep it out of rotation until its first passing check, and a job update
//!   changes the check of every instance at once, so the whole backend would
//!   go dark. In an operator's backend no reload can write the server, so it
//!   is replaced (deleted and added again).
//! - A server in maintenance that should serve is enabled the safe way (no
//!   traffic before a passing check), even when an operator set it.
//! - A server nobody wants drains for the grace period, then is removed; a
//!   server already in maintenance is removed at once.
//! - Domain map entries are diffed against what HAProxy's maps hold
//!   ([`domains`]); an entry never routes to a backend refused here.

use super::change::{BackendChange, ChangeSet, Refusal, ServerAction, ServerChange};
use super::model::{
    Actual, ActualBackend, ActualServer, BackendClass, BackendSpec, Desired, owns_server,
};
use crate::vocab::names;
use std::collections::BTreeSet;
use std::time::Duration;

mod domains;

/// HAProxy's largest weight.
const MAX_WEIGHT: u16 = 256;

/// The changes that turn `actual` into `desired`.
pub fn diff(desired: &Desired, actual: &Actual) -> ChangeSet {
    diff_within(desired, actual, None)
}

/// The changes that turn `actual` into `desired` in the backends of
/// `scope` (every backend with `None`), whose servers `actual` holds; the
/// other backends are only checked for a refusal, and every domain entry
/// is diffed. A pass after an event compares the backends it touched, not
/// the whole of HAProxy.
pub fn diff_within(
    desired: &Desired,
    actual: &Actual,
    scope: Option<&BTreeSet<String>>,
) -> ChangeSet {
    let within = |name: &String| scope.is_none_or(|s| s.contains(name));
    let mut out = ChangeSet {
        scope: scope.cloned(),
        ..ChangeSet::default()
    };
    for spec in desired.backends.values() {
        let current = actual.backends.get(&spec.name);
        if let Some(refusal) = refuse_backend(spec, current) {
            out.refusals.push(refusal);
            continue;
        }
        if !within(&spec.name) {
            continue;
        }
        match spec.class {
            BackendClass::Dynamic => dynamic_backend(spec, current, actual.drain_grace, &mut out),
            BackendClass::Custom => {
                if let Some(current) = current {
                    servers(spec, current, actual.drain_grace, false, &mut out);
                }
            }
        }
    }
    for backend in actual.backends.values() {
        if desired.backends.contains_key(&backend.name) || !within(&backend.name) {
            continue;
        }
        let mut left = 0;
        for server in backend.servers.values() {
            if owns_server(backend, &server.name) {
                retire(backend, server, actual.drain_grace, &mut out);
                left += 1;
            }
        }
        if backend.managed.is_some() && left == 0 {
            out.backends
                .push(BackendChange::Delete(backend.name.clone()));
        }
    }
    let refused: BTreeSet<String> = out
        .refusals
        .iter()
        .filter(|r| r.refuses_backend())
        .map(|r| r.backend().to_string())
        .collect();
    domains::domains(desired, actual, &refused, &mut out);
    out
}

fn refuse_backend(spec: &BackendSpec, current: Option<&ActualBackend>) -> Option<Refusal> {
    let backend = spec.name.clone();
    if !names::is_valid(&spec.name) {
        return Some(Refusal::InvalidName {
            name: backend.clone(),
            backend,
        });
    }
    match (spec.class, current) {
        (BackendClass::Dynamic, Some(b)) if b.managed.is_none() => {
            Some(Refusal::NameCollision { backend })
        }
        (BackendClass::Custom, Some(b)) if b.managed.is_some() => {
            Some(Refusal::ClassConflict { backend })
        }
        (BackendClass::Custom, None) => Some(Refusal::NoSuchBackend { backend }),
        (BackendClass::Custom, Some(b)) if !b.running => Some(Refusal::NoSuchBackend { backend }),
        _ => None,
    }
}

fn dynamic_backend(
    spec: &BackendSpec,
    current: Option<&ActualBackend>,
    grace: Duration,
    out: &mut ChangeSet,
) {
    let Some(current) = current.filter(|b| b.running) else {
        // Created by the next reload, which brings its servers along
        // (started DOWN until their first passing check); a driver that
        // cannot do that adds them at runtime once the backend runs.
        out.backends.push(BackendChange::Create(spec.name.clone()));
        let empty = ActualBackend::default();
        servers(spec, &empty, grace, false, out);
        return;
    };
    let lines_changed = current.managed.as_ref() != Some(&spec.fingerprint());
    let servers_changed = servers(spec, current, grace, lines_changed, out);
    if lines_changed || !servers_changed.is_empty() {
        out.backends.push(BackendChange::Update {
            backend: spec.name.clone(),
            lines_changed,
            servers_changed,
        });
    }
}

/// Diffs the servers of one backend; returns the servers whose static
/// arguments changed in a connector-owned backend (they need a reload).
/// While the backend's check lines wait for a reload (`lines_pending`), a
/// server keeps the map entries the running check reads: an HTTP check
/// turning into a TCP one would otherwise probe the URI map's default,
/// `/`, until the reload. The reload writes the new entries.
fn servers(
    spec: &BackendSpec,
    current: &ActualBackend,
    grace: Duration,
    lines_pending: bool,
    out: &mut ChangeSet,
) -> Vec<String> {
    let mut refused = BTreeSet::new();
    let mut static_changed = Vec::new();
    for want in spec.servers.values() {
        if let Some(refusal) = refuse_server(spec, want) {
            refused.insert(want.name.clone());
            out.refusals.push(refusal);
            continue;
        }
        let change = |action| ServerChange {
            backend: spec.name.clone(),
            server: want.name.clone(),
            action,
        };
        let Some(have) = current.servers.get(&want.name) else {
            out.servers.push(change(ServerAction::Add(want.clone())));
            continue;
        };
        let args_changed = have
            .applied
            .as_ref()
            .is_some_and(|applied| *applied != want.fingerprint());
        if args_changed && spec.class == BackendClass::Custom {
            out.servers
                .push(change(ServerAction::Replace(want.clone())));
            continue;
        }
        if args_changed {
            static_changed.push(want.name.clone());
        }
        if have.addr != Some(want.addr) || have.port != want.port {
            out.servers
                .push(change(ServerAction::Readdress(want.clone())));
        }
        let entries = want.map_entries();
        let drops_entry = (have.maps.uri.is_some() && entries.uri.is_none())
            || (have.maps.host.is_some() && entries.host.is_none());
        if have.maps != entries && !(lines_pending && drops_entry) {
            out.servers
                .push(change(ServerAction::SetMaps(want.clone())));
        }
        if have.admin.maint {
            // Enabling sets the weight too.
            out.servers.push(change(ServerAction::Enable(want.clone())));
            continue;
        }
        if have.weight != want.weight {
            out.servers
                .push(change(ServerAction::SetWeight(want.weight)));
        }
        if have.admin.drain && !want.drain {
            out.servers.push(change(ServerAction::Undrain));
        } else if want.drain && !have.admin.drain {
            out.servers.push(change(ServerAction::Drain));
        }
    }
    for have in current.servers.values() {
        if !spec.servers.contains_key(&have.name)
            && !refused.contains(&have.name)
            && owns_server(current, &have.name)
        {
            retire(current, have, grace, out);
        }
    }
    static_changed
}

fn refuse_server(spec: &BackendSpec, want: &super::model::ServerSpec) -> Option<Refusal> {
    let backend = spec.name.clone();
    let server = want.name.clone();
    if !names::is_valid(&want.name) {
        return Some(Refusal::InvalidName {
            backend,
            name: server,
        });
    }
    if spec.class == BackendClass::Custom && !names::is_connector_server(&want.name) {
        return Some(Refusal::NotConnectorServer { backend, server });
    }
    if want.weight > MAX_WEIGHT {
        return Some(Refusal::WeightOutOfRange {
            backend,
            server,
            weight: want.weight,
        });
    }
    None
}

/// A server nobody wants: drain it, wait out the grace period, remove it.
fn retire(backend: &ActualBackend, have: &ActualServer, grace: Duration, out: &mut ChangeSet) {
    let change = |action| ServerChange {
        backend: backend.name.clone(),
        server: have.name.clone(),
        action,
    };
    if have.admin.maint || (grace.is_zero() && !have.admin.drain) {
        out.servers.push(change(ServerAction::Remove));
    } else if have.admin.drain {
        let drained = have.drained_for.unwrap_or_default();
        if drained >= grace {
            out.servers.push(change(ServerAction::Remove));
        } else {
            out.requeue(grace - drained);
        }
    } else {
        out.servers.push(change(ServerAction::Drain));
        out.requeue(grace);
    }
}

#[cfg(test)]
mod tests;
