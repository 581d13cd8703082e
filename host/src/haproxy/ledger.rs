//! The ledger: what the driver has applied, i.e. the content of the managed files.
//!
//! The managed config file is rendered from it, the Host and URI maps too, and
//! `actual()` reads from it what HAProxy cannot report (a backend's check
//! lines, a server's check arguments). Its text comes only from joined
//! [`Token`](crate::vocab::syntax::Token)s or from the managed file the driver wrote.

use crate::plan::{
    BackendChange, ChangeSet, Desired, MapEntries, ServerAction, ServerChange, ServerSpec,
};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// The connector-owned backends by name, each shared with the writes of the
/// files in flight (a change copies only the backend it changes).
pub type OwnedBackends = BTreeMap<String, Arc<OwnedBackend>>;

/// What the driver has applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Connector-owned backends: the managed config file.
    pub dynamic: OwnedBackends,
    /// The connector's servers in operator backends (kept in memory only:
    /// no config file may hold them, see `docs/haproxy-driver.md`).
    pub custom: BTreeMap<String, BTreeMap<String, OwnedServer>>,
    /// Every server's entries in the Host and URI maps, by server name
    /// (server names are unique across backends): the map files.
    pub maps: BTreeMap<String, MapEntries>,
}

/// A connector-owned backend as written in the managed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedBackend {
    /// Its section lines (`BackendSpec::fingerprint`).
    pub lines: Vec<String>,
    /// Its servers.
    pub servers: BTreeMap<String, OwnedServer>,
}

/// A server as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedServer {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u16,
    /// Static arguments (`ServerSpec::fingerprint`).
    pub args: String,
}

#[cfg(test)]
impl OwnedBackend {
    /// A `default_web`-like backend for tests: its section lines, and the
    /// servers `_nomad-a` (10.0.0.1, checked every 500 ms) and `_nomad-b`
    /// (::1, with `b_args`), both on port 8080 with weight 10.
    pub(crate) fn test(lines: &[&str], b_args: &str) -> OwnedBackend {
        let server = |addr: &str, args: &str| OwnedServer {
            addr: addr.parse().expect("an IP address"),
            port: 8080,
            weight: 10,
            args: args.into(),
        };
        OwnedBackend {
            lines: lines.iter().map(|l| (*l).to_string()).collect(),
            servers: BTreeMap::from([
                ("_nomad-a".into(), server("10.0.0.1", "check inter 500ms")),
                ("_nomad-b".into(), server("::1", b_args)),
            ]),
        }
    }
}

impl OwnedServer {
    fn from_spec(spec: &ServerSpec) -> OwnedServer {
        OwnedServer {
            addr: spec.addr,
            port: spec.port,
            weight: spec.weight,
            args: spec.fingerprint(),
        }
    }
}

impl Ledger {
    /// The applied server, in whichever class of backend.
    pub fn server(&self, backend: &str, server: &str) -> Option<&OwnedServer> {
        match self.dynamic.get(backend) {
            Some(owned) => owned.servers.get(server),
            None => self.custom.get(backend)?.get(server),
        }
    }

    fn servers_mut(&mut self, backend: &str) -> &mut BTreeMap<String, OwnedServer> {
        match self.dynamic.get_mut(backend) {
            Some(owned) => &mut Arc::make_mut(owned).servers,
            None => self.custom.entry(backend.to_string()).or_default(),
        }
    }

    /// Records a change HAProxy applied.
    pub fn record(&mut self, change: &ServerChange) {
        let name = &change.server;
        match &change.action {
            ServerAction::Add(spec) | ServerAction::Replace(spec) | ServerAction::SetMaps(spec) => {
                self.set_maps(name, spec.map_entries());
            }
            ServerAction::Remove => {
                self.maps.remove(name);
            }
            _ => {}
        }
        let servers = self.servers_mut(&change.backend);
        match &change.action {
            ServerAction::Add(spec) | ServerAction::Replace(spec) => {
                servers.insert(name.clone(), OwnedServer::from_spec(spec));
            }
            ServerAction::Readdress(spec) => {
                if let Some(s) = servers.get_mut(name) {
                    s.addr = spec.addr;
                    s.port = spec.port;
                }
            }
            ServerAction::SetWeight(w) => {
                if let Some(s) = servers.get_mut(name) {
                    s.weight = *w;
                }
            }
            ServerAction::Enable(spec) => {
                if let Some(s) = servers.get_mut(name) {
                    s.weight = spec.weight;
                }
            }
            ServerAction::Remove => {
                servers.remove(name);
            }
            ServerAction::SetMaps(_) | ServerAction::Undrain | ServerAction::Drain => {}
        }
        if self
            .custom
            .get(&change.backend)
            .is_some_and(BTreeMap::is_empty)
        {
            self.custom.remove(&change.backend);
        }
    }

    fn set_maps(&mut self, server: &str, entries: MapEntries) {
        if entries.is_empty() {
            self.maps.remove(server);
        } else {
            self.maps.insert(server.to_string(), entries);
        }
    }

    /// Learns what a fresh ledger cannot know from the managed file: the
    /// connector's servers in operator backends that already run (after a
    /// connector restart), with the arguments they are wanted with.
    pub fn adopt(&mut self, desired: &Desired, changes: &ChangeSet) {
        // Sets, not scans: a cold start has 10,000 pending adds.
        let pending: HashSet<(&str, &str)> = changes
            .servers
            .iter()
            .map(|c| (c.backend.as_str(), c.server.as_str()))
            .collect();
        let refused: HashSet<&str> = changes
            .refusals
            .iter()
            .filter(|r| !r.is_domain())
            .map(|r| r.backend())
            .collect();
        // Outside the compared backends, nothing is known to run.
        let within = |name: &String| changes.scope.as_ref().is_none_or(|s| s.contains(name));
        for spec in desired.backends.values() {
            if refused.contains(spec.name.as_str())
                || self.dynamic.contains_key(&spec.name)
                || !within(&spec.name)
            {
                continue;
            }
            for want in spec.servers.values() {
                if self.server(&spec.name, &want.name).is_none()
                    && !pending.contains(&(spec.name.as_str(), want.name.as_str()))
                {
                    self.servers_mut(&spec.name)
                        .insert(want.name.clone(), OwnedServer::from_spec(want));
                }
            }
        }
    }

    /// The ledger a reload writes: the changed backends take their desired
    /// lines, and their servers their desired static arguments; addresses
    /// and weights stay as HAProxy runs them (the runtime phase changes
    /// those), so the state file dumped before the reload still matches.
    ///
    /// The servers of a changed backend take their desired Host and URI map
    /// entries. A created backend comes with the servers `adds` adds to it
    /// (and their map entries): one reload instead of a runtime `add server` per
    /// server afterwards. The state file starts the checked ones DOWN.
    pub fn for_reload(
        &self,
        desired: &Desired,
        changes: &[BackendChange],
        adds: &[ServerChange],
    ) -> Ledger {
        let mut next = self.clone();
        let mut adds_of: BTreeMap<&str, Vec<&ServerChange>> = BTreeMap::new();
        for add in adds {
            adds_of.entry(add.backend.as_str()).or_default().push(add);
        }
        for change in changes {
            let name = change.backend();
            if let BackendChange::Delete(_) = change {
                next.dynamic.remove(name);
                continue;
            }
            let Some(spec) = desired.backends.get(name) else {
                continue;
            };
            if let BackendChange::Create(_) = change {
                for add in adds_of.get(name).into_iter().flatten() {
                    if let ServerAction::Add(want) = &add.action {
                        next.set_maps(&add.server, want.map_entries());
                        Arc::make_mut(next.dynamic.entry(name.to_string()).or_default())
                            .servers
                            .insert(add.server.clone(), OwnedServer::from_spec(want));
                    }
                }
            }
            let owned = Arc::make_mut(next.dynamic.entry(name.to_string()).or_default());
            owned.lines = spec.fingerprint();
            let mut entries = Vec::new();
            for (server, have) in &mut owned.servers {
                if let Some(want) = spec.servers.get(server) {
                    have.args = want.fingerprint();
                    entries.push((server.clone(), want.map_entries()));
                }
            }
            // The new worker checks these servers by the new lines from its
            // first probe on: their Host and URI entries must already be in
            // the files it loads (a check switching from TCP back to HTTP has
            // none, and would probe the map's default, `/`).
            for (server, want) in entries {
                next.set_maps(&server, want);
            }
        }
        next
    }

    /// The Host map file: `server-name address:port` per line.
    pub fn host_map(&self) -> String {
        self.map_text(|e| e.host.as_deref())
    }

    /// The URI map file: `server-name check-uri` per line.
    pub fn uri_map(&self) -> String {
        self.map_text(|e| e.uri.as_deref())
    }

    fn map_text(&self, value: impl Fn(&MapEntries) -> Option<&str>) -> String {
        let mut text = String::new();
        for (name, entries) in &self.maps {
            if let Some(v) = value(entries) {
                text.push_str(name);
                text.push(' ');
                text.push_str(v);
                text.push('\n');
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::BackendSpec;

    fn spec(name: &str) -> ServerSpec {
        let mut s = ServerSpec::new(name, "10.0.0.1".parse().unwrap(), 80);
        s.host_entry = true;
        s
    }

    fn change(backend: &str, server: &str, action: ServerAction) -> ServerChange {
        ServerChange {
            backend: backend.into(),
            server: server.into(),
            action,
        }
    }

    #[test]
    fn records_changes_per_class() {
        let mut ledger = Ledger::default();
        ledger
            .dynamic
            .insert("own".into(), OwnedBackend::default().into());
        ledger.record(&change(
            "own",
            "_nomad-a",
            ServerAction::Add(spec("_nomad-a")),
        ));
        ledger.record(&change(
            "op",
            "_nomad-b",
            ServerAction::Add(spec("_nomad-b")),
        ));
        ledger.record(&change("own", "_nomad-a", ServerAction::SetWeight(7)));
        assert_eq!(ledger.server("own", "_nomad-a").unwrap().weight, 7);
        assert!(ledger.server("op", "_nomad-b").is_some());
        assert_eq!(
            ledger.host_map(),
            "_nomad-a 10.0.0.1:80\n_nomad-b 10.0.0.1:80\n"
        );
        assert_eq!(ledger.uri_map(), "");
        ledger.record(&change("op", "_nomad-b", ServerAction::Remove));
        assert!(ledger.custom.is_empty());
        assert_eq!(ledger.host_map(), "_nomad-a 10.0.0.1:80\n");
    }

    #[test]
    fn reload_ledger_takes_desired_lines_and_args_but_keeps_runtime_values() {
        let mut ledger = Ledger::default();
        ledger
            .dynamic
            .insert("own".into(), OwnedBackend::default().into());
        ledger.record(&change(
            "own",
            "_nomad-a",
            ServerAction::Add(spec("_nomad-a")),
        ));
        let mut want = BackendSpec::dynamic("own");
        let mut a = spec("_nomad-a");
        a.weight = 50;
        a.backup = true;
        want.insert(a);
        let mut desired = Desired::default();
        desired.insert(want.clone());
        let update = BackendChange::Update {
            backend: "own".into(),
            lines_changed: true,
            servers_changed: vec!["_nomad-a".into()],
        };
        let next = ledger.for_reload(&desired, &[update], &[]);
        let owned = &next.dynamic["own"];
        assert_eq!(owned.lines, want.fingerprint());
        assert_eq!(owned.servers["_nomad-a"].args, "backup");
        assert_eq!(
            owned.servers["_nomad-a"].weight, 1,
            "weight changes at runtime"
        );
        let gone = next.for_reload(&desired, &[BackendChange::Delete("own".into())], &[]);
        assert!(gone.dynamic.is_empty());
    }

    #[test]
    fn reload_ledger_writes_the_uri_entries_of_a_backend_whose_check_became_http() {
        // A TCP-checked server (no URI entry) whose backend turns to an
        // HTTP check: the maps the new worker loads hold its check URI.
        let mut ledger = Ledger::default();
        ledger
            .dynamic
            .insert("own".into(), OwnedBackend::default().into());
        ledger.record(&change(
            "own",
            "_nomad-a",
            ServerAction::Add(spec("_nomad-a")),
        ));
        assert_eq!(ledger.uri_map(), "");
        let mut a = spec("_nomad-a");
        a.uri_entry = Some(crate::vocab::syntax::Token::word("uri", "/health", 64).unwrap());
        let mut want = BackendSpec::dynamic("own");
        want.insert(a);
        let mut desired = Desired::default();
        desired.insert(want);
        let update = BackendChange::Update {
            backend: "own".into(),
            lines_changed: true,
            servers_changed: vec![],
        };
        let next = ledger.for_reload(&desired, &[update], &[]);
        assert_eq!(next.uri_map(), "_nomad-a /health\n");
    }
}
