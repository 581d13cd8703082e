//! The states last dumped, per managed backend: a write after a few changes
//! dumps only the backends they touched and rebuilds the shards from these.

use super::{SHARDS, rows, shard};
use crate::haproxy::ledger::OwnedBackends;
use std::collections::{BTreeMap, BTreeSet};

/// The lines of `show servers state` of each managed backend, as a state
/// file holds them (with their configured weight, see [`super::rows`]).
#[derive(Debug, Default)]
pub struct Dumped {
    header: String,
    lines: BTreeMap<String, String>,
    /// A dump of every backend has been taken.
    complete: bool,
}

impl Dumped {
    /// Whether a dump of every backend has been taken: until then, only one
    /// of every backend gives the shards.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Takes the lines of `dump` for the managed backends in `backends`: of
    /// every backend with `dumped` `None`, else of the backends it names
    /// (one that has no line left loses its lines). Backends no longer
    /// managed lose theirs.
    pub fn update(
        &mut self,
        dump: &str,
        backends: &OwnedBackends,
        dumped: Option<&BTreeSet<String>>,
    ) {
        let (header, rows) = rows(dump, backends, &BTreeMap::new());
        let mut fresh: BTreeMap<String, String> = BTreeMap::new();
        for row in rows {
            let text = fresh.entry(row.backend.to_string()).or_default();
            text.push_str(&row.line);
            text.push('\n');
        }
        match dumped {
            None => {
                self.lines = fresh.into_iter().map(|(b, t)| (b, shrunk(t))).collect();
                self.complete = true;
            }
            Some(dumped) => {
                for backend in dumped {
                    match fresh.remove(backend).map(shrunk) {
                        Some(text) => self.lines.insert(backend.clone(), text),
                        None => self.lines.remove(backend),
                    };
                }
            }
        }
        if !header.is_empty() {
            self.header = header;
        }
        self.lines
            .retain(|backend, _| backends.contains_key(backend));
    }

    /// The contents of every shard: the header, then the lines of its
    /// backends.
    pub fn shards(&self) -> Vec<String> {
        let mut shards = vec![self.header.clone(); SHARDS];
        for (backend, text) in &self.lines {
            shards[shard(backend)].push_str(text);
        }
        shards
    }
}

/// Kept until the next dump: without its spare capacity.
fn shrunk(mut text: String) -> String {
    text.shrink_to_fit();
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::ledger::OwnedBackend;

    const HEADER: &str = "1\n# be_id be_name srv_id srv_name\n";

    /// The shards a dump of every backend gives, from nothing kept.
    fn contents(dump: &str, backends: &OwnedBackends) -> Vec<String> {
        let mut dumped = Dumped::default();
        dumped.update(dump, backends, None);
        dumped.shards()
    }

    fn owned(names: &[&str]) -> OwnedBackends {
        names
            .iter()
            .map(|n| (n.to_string(), OwnedBackend::test(&["mode http"], "").into()))
            .collect()
    }

    #[test]
    fn a_partial_dump_replaces_only_the_backends_it_names() {
        let backends = owned(&["default_web", "default_api"]);
        let full = format!(
            "{HEADER}3 ops 1 s1 127.0.0.1 2 0 1 1\n\
4 default_web 1 _nomad-a 10.0.0.1 2 8 10 0\n\
5 default_api 1 _nomad-b 10.0.0.2 2 0 3 3\n"
        );
        let mut dumped = Dumped::default();
        assert!(!dumped.is_complete());
        dumped.update(&full, &backends, None);
        assert!(dumped.is_complete());

        // The web server went DOWN; the API's line stays as dumped last.
        let web = format!("{HEADER}4 default_web 1 _nomad-a 10.0.0.1 0 8 10 0\n");
        let only_web = BTreeSet::from(["default_web".to_string()]);
        dumped.update(&web, &backends, Some(&only_web));
        let now = full.replace("10.0.0.1 2 8", "10.0.0.1 0 8");
        assert_eq!(dumped.shards(), contents(&now, &backends));

        // Its last server removed, and the API no longer managed.
        dumped.update(HEADER, &owned(&["default_web"]), Some(&only_web));
        assert!(dumped.shards().iter().all(|s| s == HEADER));
    }
}
