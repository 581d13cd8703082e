//! The server-state files of the managed backends, in shards.
//!
//! `load-server-state-from-file local` makes every backend read its whole
//! file. With one file, 2,000 backends of 5 servers made `haproxy -c` (and
//! each reload) parse 20 million lines: 7.9 s. Each backend names one of
//! [`SHARDS`] files instead, picked by a stable hash of its name; the same
//! world then takes 0.4 s, and only the shards whose states changed are
//! rewritten.

use super::ledger::OwnedBackends;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

mod dumped;

pub use dumped::Dumped;

/// How many files the states are spread over: `<state_file>.00` to `.63`.
pub const SHARDS: usize = 64;

/// The shard of a backend: FNV-1a of its name, stable across versions (the
/// managed file a restarted connector reads back names the same shards).
pub fn shard(backend: &str) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in backend.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash as usize % SHARDS
}

/// The file of shard `n` for the configured `state_file`.
pub fn path(state_file: &Path, n: usize) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(format!(".{n:02}"));
    PathBuf::from(name)
}

/// The shards a reload loads: the managed backends' lines of `dump` (as
/// [`Dumped`] keeps them), with each backend's ID as the
/// next worker will number it (`ids`, see [`super::proxy_ids`]; HAProxy
/// warns about every line whose ID differs), plus a DOWN line for each
/// checked server the dump does not know: a server of a backend this reload
/// creates. A config server otherwise starts UP, before its first check
/// (`reference/haproxy.md` §4); with this line it waits for `rise` passing
/// checks, as a runtime `add server` does.
pub fn for_reload(
    dump: &str,
    backends: &OwnedBackends,
    ids: &BTreeMap<String, u32>,
) -> Vec<String> {
    let (mut shards, known) = lines(dump, backends, ids);
    for (name, backend) in backends {
        let be_id = ids.get(name).copied().unwrap_or(0);
        let text = &mut shards[shard(name)];
        for (position, (server, s)) in backend.servers.iter().enumerate() {
            let checked = s.args.split(' ').any(|w| w == "check");
            if !checked || known.contains(&(name.as_str(), server.as_str())) {
                continue;
            }
            // be_id be_name srv_id srv_name srv_addr, then STOPPED, no admin
            // flag, weights, no time, status INI, result unknown, health 0,
            // check and agent state left as configured, no forced IDs, no
            // FQDN, the port, no SRV record, no TLS, no check address.
            text.push_str(&format!(
                "{be_id} {name} {} {server} {} 0 0 {w} {w} 0 1 0 0 0 0 0 0 - {} - 0 0 - - 0\n",
                position + 1,
                s.addr,
                s.port,
                w = s.weight,
            ));
        }
    }
    shards
}

/// The managed backends' lines of a dump, by shard, with their IDs from
/// `ids` where known; and which (backend, server) they were.
fn lines<'a>(
    dump: &'a str,
    backends: &OwnedBackends,
    ids: &BTreeMap<String, u32>,
) -> (Vec<String>, HashSet<(&'a str, &'a str)>) {
    let mut known = HashSet::new();
    let (header, rows) = rows(dump, backends, ids);
    let mut shards = vec![String::new(); SHARDS];
    for row in rows {
        known.insert((row.backend, row.server));
        let text = &mut shards[shard(row.backend)];
        text.push_str(&row.line);
        text.push('\n');
    }
    let shards = shards.into_iter().map(|r| format!("{header}{r}")).collect();
    (shards, known)
}

/// One managed server's line of a dump, as a state file holds it.
struct Row<'a> {
    backend: &'a str,
    server: &'a str,
    line: String,
}

/// The header of a dump (its format line and column names) and the lines
/// of its managed backends, with their configured weight and their IDs
/// from `ids` where known.
///
/// Each server's `srv_iweight` is set to the weight the managed file gives
/// it: HAProxy 2.6 restores a server's weight only when that column equals
/// the configured weight, and drops a forced drain when it is 0 and the
/// configured weight is not. A server added at runtime has the initial
/// weight of its `add server` (0 in the safe sequence), so without this its
/// drain and weight would be lost on the next reload or restart.
fn rows<'a>(
    dump: &'a str,
    backends: &OwnedBackends,
    ids: &BTreeMap<String, u32>,
) -> (String, Vec<Row<'a>>) {
    let mut header = String::new();
    let mut rows = Vec::new();
    for line in dump.lines() {
        if line.starts_with('#') || line.trim() == "1" {
            header.push_str(line);
            header.push('\n');
            continue;
        }
        let mut fields: Vec<&str> = line.split(' ').collect();
        let Some(backend) = fields.get(1).and_then(|b| backends.get(*b)) else {
            continue;
        };
        let weight = fields
            .get(3)
            .and_then(|s| backend.servers.get(*s))
            .map(|s| s.weight.to_string());
        if let (Some(weight), Some(iweight)) = (&weight, fields.get_mut(8)) {
            *iweight = weight;
        }
        let name = fields[1];
        let id = ids.get(name).map(u32::to_string);
        if let Some(id) = &id {
            fields[0] = id;
        }
        let mut names = line.split(' ').skip(1).step_by(2);
        if let (Some(backend), Some(server)) = (names.next(), names.next()) {
            rows.push(Row {
                backend,
                server,
                line: fields.join(" "),
            });
        }
    }
    (header, rows)
}

/// A hash of a state file without its `srv_time_since_last_change` column
/// (which moves every second): equal when HAProxy would restore the same
/// states from it.
pub fn signature(states: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for line in states.lines() {
        for (i, field) in line.split(' ').enumerate() {
            if i != 9 || line.starts_with('#') {
                std::hash::Hash::hash(field, &mut hasher);
            }
        }
        std::hash::Hash::hash(&'\n', &mut hasher);
    }
    std::hash::Hasher::finish(&hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "1\n# be_id be_name srv_id srv_name\n";

    fn owned(check: &str) -> OwnedBackends {
        let backend = crate::haproxy::ledger::OwnedBackend::test(&["mode http"], check);
        BTreeMap::from([("default_web".into(), backend.into())])
    }

    /// The shards written after a dump of every backend.
    fn contents(dump: &str, backends: &OwnedBackends) -> Vec<String> {
        let mut dumped = Dumped::default();
        dumped.update(dump, backends, None);
        dumped.shards()
    }

    fn web(shards: &[String]) -> &str {
        &shards[shard("default_web")]
    }

    #[test]
    fn shards_keep_only_managed_backends_with_their_configured_weight() {
        let dump = format!(
            "{HEADER}3 ops 1 s1 127.0.0.1 2 0 1 1\n\
4 default_web 1 _nomad-a 10.0.0.1 2 8 10 0\n\
4 default_web 2 _nomad-x 10.0.0.9 2 0 3 3\n"
        );
        let shards = contents(&dump, &owned(""));
        assert_eq!(shards.len(), SHARDS);
        assert_eq!(
            web(&shards),
            format!(
                "{HEADER}4 default_web 1 _nomad-a 10.0.0.1 2 8 10 10\n\
4 default_web 2 _nomad-x 10.0.0.9 2 0 3 3\n"
            )
        );
        let empty = (0..SHARDS).filter(|n| *n != shard("default_web"));
        assert!(empty.into_iter().all(|n| shards[n] == HEADER));
    }

    #[test]
    fn reload_renumbers_backends_and_starts_new_checked_servers_down() {
        let dump = format!(
            "{HEADER}4 default_web 1 _nomad-a 10.0.0.1 2 0 10 10 3 15 3 3 6 0 0 0 - 8080 - 0 0 - - 0\n"
        );
        let ids = BTreeMap::from([("default_web".to_string(), 7)]);
        let kept = format!(
            "{HEADER}7 default_web 1 _nomad-a 10.0.0.1 2 0 10 10 3 15 3 3 6 0 0 0 - 8080 - 0 0 - - 0\n"
        );
        let shards = for_reload(&dump, &owned(""), &ids);
        assert_eq!(web(&shards), kept, "_nomad-b has no check: it may start UP");
        let shards = for_reload(&dump, &owned("check inter 1s"), &ids);
        assert_eq!(
            web(&shards),
            format!(
                "{kept}7 default_web 2 _nomad-b ::1 0 0 10 10 0 1 0 0 0 0 0 0 - 8080 - 0 0 - - 0\n"
            )
        );
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard("default_web"), shard("default_web"));
        let used: HashSet<usize> = (0..2000).map(|i| shard(&format!("ns_svc{i}"))).collect();
        assert_eq!(used.len(), SHARDS);
        assert_eq!(
            path(Path::new("/var/lib/h.state"), 7),
            PathBuf::from("/var/lib/h.state.07")
        );
    }

    #[test]
    fn signature_ignores_only_the_time_since_the_last_change() {
        let up =
            "1\n4 default_web 1 _nomad-a 10.0.0.1 2 0 1 1 35 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0\n";
        let later = up.replace(" 35 ", " 95 ");
        let down = up.replace(" 2 0 1 1 35", " 0 0 1 1 35");
        assert_eq!(signature(up), signature(&later));
        assert_ne!(signature(up), signature(&down));
    }
}
