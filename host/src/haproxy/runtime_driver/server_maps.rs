//! The Host and URI maps as HAProxy holds them, so that the next sync
//! repairs a key the operator edited by hand (changed, deleted, or added a
//! second time).

use crate::haproxy::actual::parse_show_map;
use crate::haproxy::commands::Held;
use crate::haproxy::error::Result;
use crate::plan::Actual;
use std::collections::BTreeMap;

/// One map as HAProxy holds it: key → every value, in HAProxy's order;
/// `None` when the map is not configured or HAProxy has not loaded it.
type Entries = Option<BTreeMap<String, Vec<String>>>;

/// The Host and URI maps at the last read.
#[derive(Debug, Default)]
pub(super) struct ServerMaps {
    host: Entries,
    uri: Entries,
}

fn entries(reply: Option<&str>) -> Result<Entries> {
    let Some(reply) = reply else {
        return Ok(None);
    };
    Ok(parse_show_map(reply)?.map(|pairs| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in pairs {
            map.entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
        map
    }))
}

/// What the server's key holds: none, its value, or every value
/// space-separated when held more than once (never a value the driver
/// writes, so that the server's entries differ from what it wants).
fn view(entries: &BTreeMap<String, Vec<String>>, server: &str) -> Option<String> {
    entries.get(server).map(|values| values.join(" "))
}

impl ServerMaps {
    /// From the replies to `show map` of the Host map and the URI map
    /// (`None` for one that is not configured).
    ///
    /// # Errors
    /// A reply that is not a map listing.
    pub(super) fn read(host: Option<&str>, uri: Option<&str>) -> Result<ServerMaps> {
        Ok(ServerMaps {
            host: entries(host)?,
            uri: entries(uri)?,
        })
    }

    /// How many entries of the server's key each map holds.
    pub(super) fn held(&self, server: &str) -> Held {
        let count = |map: &Entries| map.as_ref().and_then(|m| m.get(server)).map_or(0, Vec::len);
        Held {
            host: count(&self.host),
            uri: count(&self.uri),
        }
    }

    /// Puts HAProxy's view of each loaded map in every server's entries
    /// (which otherwise say what the driver last wrote).
    pub(super) fn apply(&self, actual: &mut Actual) {
        for server in actual
            .backends
            .values_mut()
            .flat_map(|b| b.servers.values_mut())
        {
            if let Some(host) = &self.host {
                server.maps.host = view(host, &server.name);
            }
            if let Some(uri) = &self.uri {
                server.maps.uri = view(uri, &server.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{ActualBackend, ActualServer, MapEntries};

    #[test]
    fn a_key_held_twice_differs_from_any_single_value() {
        // `show map` after an operator's `add map` of a key already held.
        let host =
            "0x1 _nomad-a 127.0.0.1:80\n0x2 _nomad-b 127.0.0.1:81\n0x3 _nomad-a 10.0.0.9:1\n";
        let maps = ServerMaps::read(Some(host), None).unwrap();
        assert_eq!(maps.held("_nomad-a"), Held { host: 2, uri: 0 });
        assert_eq!(maps.held("_nomad-c"), Held::default());
        let mut actual = Actual::default();
        let mut backend = ActualBackend::default();
        for (name, uri) in [("_nomad-a", "/a"), ("_nomad-b", "/b"), ("_nomad-c", "/c")] {
            let mut s = ActualServer::new(name, [127, 0, 0, 1].into(), 80);
            s.maps = MapEntries {
                host: Some("127.0.0.1:80".into()),
                uri: Some(uri.into()),
            };
            backend.servers.insert(name.into(), s);
        }
        actual.backends.insert("be".into(), backend);
        maps.apply(&mut actual);
        let got = |name: &str| actual.backends["be"].servers[name].maps.clone();
        assert_eq!(
            got("_nomad-a").host.as_deref(),
            Some("127.0.0.1:80 10.0.0.9:1")
        );
        assert_eq!(got("_nomad-b").host.as_deref(), Some("127.0.0.1:81"));
        assert_eq!(got("_nomad-c").host, None, "deleted by hand");
        // The URI map is not configured: what the driver wrote stands.
        assert_eq!(got("_nomad-c").uri.as_deref(), Some("/c"));
        let unloaded = ServerMaps::read(
            Some("Unknown map identifier. Please use #<id> or <file>.\n"),
            None,
        )
        .unwrap();
        assert_eq!(unloaded.held("_nomad-a"), Held::default());
    }
}
