//! Parses what HAProxy runs (`show backend`, `show servers state`) into [`Actual`].

use super::error::{Error, Result};
use super::ledger::Ledger;
use crate::plan::{Actual, ActualBackend, ActualServer, AdminState, OpState};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// When each draining server was first seen draining, by (backend, server).
pub type Drains = BTreeMap<(String, String), Instant>;

/// One line of `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    /// `be_name`.
    pub backend: String,
    /// `srv_name`.
    pub server: String,
    /// `srv_addr`, when it is an IP address.
    pub addr: Option<IpAddr>,
    /// `srv_port`.
    pub port: u16,
    /// `srv_op_state`.
    pub op: OpState,
    /// `srv_admin_state`.
    pub admin: AdminState,
    /// `srv_uweight`.
    pub weight: u16,
    /// `srv_check_status`, by HAProxy's name.
    pub check_status: &'static str,
    /// `srv_check_state` has CHK_ST_CONFIGURED (0x02).
    pub check_configured: bool,
    /// `srv_check_state` has CHK_ST_ENABLED (0x04).
    pub check_enabled: bool,
}

/// The backend names of `show backend`.
pub fn parse_backends(reply: &str) -> Vec<String> {
    reply
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// The rows of `show servers state` (format version 1, as in 2.6 to 3.x).
///
/// # Errors
/// [`Error::BadReply`] on another format version or a short row.
pub fn parse_servers_state(reply: &str) -> Result<Vec<StateRow>> {
    let bad = || Error::BadReply {
        what: "show servers state",
        reply: reply.chars().take(200).collect(),
    };
    let mut lines = reply.lines().filter(|l| !l.trim().is_empty());
    if lines.next().map(str::trim) != Some("1") {
        return Err(bad());
    }
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 19 {
            return Err(bad());
        }
        let num = |i: usize| f[i].parse::<u32>().map_err(|_| bad());
        let admin = num(6)?;
        let check_state = num(13)?;
        rows.push(StateRow {
            backend: f[1].to_string(),
            server: f[3].to_string(),
            addr: f[4].parse().ok(),
            port: f[18].parse().map_err(|_| bad())?,
            op: match num(5)? {
                1 => OpState::Starting,
                2 => OpState::Up,
                3 => OpState::Stopping,
                _ => OpState::Down,
            },
            admin: AdminState {
                maint: admin & 0x23 != 0,
                drain: admin & 0x18 != 0,
            },
            weight: u16::try_from(num(7)?).map_err(|_| bad())?,
            check_status: check_status_name(num(10)?),
            check_configured: check_state & 0x02 != 0,
            check_enabled: check_state & 0x04 != 0,
        });
    }
    Ok(rows)
}

/// HAProxy's answer to `show map` of a file it has not loaded.
const UNKNOWN_MAP: &str = "Unknown map identifier";

/// The entries of `show map <file>` as `(key, value)` in HAProxy's order;
/// `None` when HAProxy has not loaded the file.
///
/// Verified on 2.6: one `0x<address> <key> <value>` line per entry (keys
/// as stored: a regex shows single backslashes), then an empty line.
///
/// # Errors
/// [`Error::BadReply`] on a line of another shape.
pub fn parse_show_map(reply: &str) -> Result<Option<Vec<(&str, &str)>>> {
    if reply.trim_start().starts_with(UNKNOWN_MAP) {
        return Ok(None);
    }
    let mut entries = Vec::new();
    for line in reply.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.splitn(3, ' ');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(id), Some(key), Some(value)) if id.starts_with("0x") && !key.is_empty() => {
                entries.push((key, value.trim_end()));
            }
            _ => {
                return Err(Error::BadReply {
                    what: "show map",
                    reply: line.chars().take(200).collect(),
                });
            }
        }
    }
    Ok(Some(entries))
}

/// A map file's text for `(key, value)` entries in HAProxy's order: what
/// HAProxy loads after a reload or restart. Keys are written as stored (a
/// map file does not unescape), so regex precedence survives too.
pub fn map_file(entries: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (key, value) in entries {
        text.push_str(key);
        text.push(' ');
        text.push_str(value);
        text.push('\n');
    }
    text
}

/// HAProxy's name for a `srv_check_status` code (`enum healthcheck_status`,
/// verified against 2.6: 8 is L4CON, 17 is L7STS).
pub fn check_status_name(code: u32) -> &'static str {
    const NAMES: [&str; 21] = [
        "UNK", "INI", "START", "CHECKED", "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK",
        "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L57DATA", "L7OK", "L7OKC", "L7STS", "PROCERR",
        "PROCTOUT", "PROCOK",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNK")
}

/// Joins HAProxy's view with the ledger, and updates the drain clocks;
/// `rows` are the servers of the backends in `scope` (of all with `None`),
/// and the drain clocks of the other backends are kept.
pub fn assemble(
    backends: &[String],
    rows: Vec<StateRow>,
    scope: Option<&BTreeSet<String>>,
    ledger: &Ledger,
    drains: &mut Drains,
    now: Instant,
    drain_grace: Duration,
) -> Actual {
    let mut actual = Actual {
        backends: BTreeMap::new(),
        drain_grace,
        domain_maps: BTreeMap::new(),
    };
    for name in backends {
        actual.backends.insert(
            name.clone(),
            ActualBackend {
                name: name.clone(),
                running: true,
                managed: ledger.dynamic.get(name).map(|b| b.lines.clone()),
                servers: BTreeMap::new(),
            },
        );
    }
    for (name, owned) in &ledger.dynamic {
        actual
            .backends
            .entry(name.clone())
            .or_insert_with(|| ActualBackend {
                name: name.clone(),
                running: false,
                managed: Some(owned.lines.clone()),
                servers: BTreeMap::new(),
            });
    }
    let mut seen: Drains = match scope {
        None => Drains::new(),
        Some(scope) => drains
            .iter()
            .filter(|((backend, _), _)| !scope.contains(backend))
            .map(|(key, since)| (key.clone(), *since))
            .collect(),
    };
    for row in rows {
        let Some(backend) = actual.backends.get_mut(&row.backend) else {
            continue;
        };
        let key = (row.backend.clone(), row.server.clone());
        let drained_for = row.admin.drain.then(|| {
            let since = drains.get(&key).copied().unwrap_or(now);
            seen.insert(key.clone(), since);
            now.saturating_duration_since(since)
        });
        let applied = ledger
            .server(&row.backend, &row.server)
            .map(|s| s.args.clone());
        let maps = ledger.maps.get(&row.server).cloned().unwrap_or_default();
        backend.servers.insert(
            row.server.clone(),
            ActualServer {
                name: row.server,
                addr: row.addr,
                port: row.port,
                op: row.op,
                admin: row.admin,
                weight: row.weight,
                check_status: row.check_status.to_string(),
                check_configured: row.check_configured,
                check_enabled: row.check_enabled,
                drained_for,
                applied,
                maps,
            },
        );
    }
    *drains = seen;
    actual
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::ledger::OwnedBackend;

    // Captured from HAProxy 2.6.12: an UP config server with a 404 check,
    // a draining server at weight 7, a new dynamic server in MAINT.
    const DUMP: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be 1 s1 127.0.0.1 0 0 1 1 1 17 2 0 6 0 0 0 - 28081 - 0 0 - - 0
4 be2 1 a 127.0.0.1 2 8 7 1 0 15 3 2 6 0 0 0 - 28082 - 0 0 - - 0
5 be3 1 z ::1 0 1 1 1 148 1 0 0 2 0 0 0 - 28082 - 0 0 - - 0
";

    #[test]
    fn servers_state_rows_are_read() {
        let rows = parse_servers_state(DUMP).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].check_status, "L7STS");
        assert_eq!(rows[0].op, OpState::Down);
        assert!(rows[0].check_enabled);
        assert_eq!(rows[1].op, OpState::Up);
        assert_eq!(
            rows[1].admin,
            AdminState {
                maint: false,
                drain: true
            }
        );
        assert_eq!((rows[1].weight, rows[1].check_status), (7, "L7OK"));
        assert_eq!(rows[2].addr, Some("::1".parse().unwrap()));
        assert!(rows[2].admin.maint && rows[2].check_configured && !rows[2].check_enabled);
        assert!(parse_servers_state("2\n").is_err());
        assert!(parse_servers_state("1\n3 be 1\n").is_err());
    }

    #[test]
    fn assemble_marks_ownership_and_times_drains() {
        let mut ledger = Ledger::default();
        ledger.dynamic.insert(
            "be2".into(),
            OwnedBackend {
                lines: vec!["mode http".into()],
                ..OwnedBackend::default()
            }
            .into(),
        );
        ledger
            .dynamic
            .insert("gone".into(), OwnedBackend::default().into());
        let backends = parse_backends("# name\nbe\nbe2\nbe3\n");
        let rows = parse_servers_state(DUMP).unwrap();
        let mut drains = Drains::new();
        let t0 = Instant::now();
        let grace = Duration::from_secs(9);
        let a = assemble(
            &backends,
            rows.clone(),
            None,
            &ledger,
            &mut drains,
            t0,
            grace,
        );
        assert_eq!(a.drain_grace, grace);
        assert_eq!(a.backends["be"].managed, None);
        assert_eq!(a.backends["be2"].managed, Some(vec!["mode http".into()]));
        assert!(!a.backends["gone"].running);
        assert_eq!(
            a.backends["be2"].servers["a"].drained_for,
            Some(Duration::ZERO)
        );
        let later = t0 + Duration::from_secs(4);
        let a = assemble(&backends, rows, None, &ledger, &mut drains, later, grace);
        assert_eq!(
            a.backends["be2"].servers["a"].drained_for,
            Some(Duration::from_secs(4))
        );
        assert_eq!(drains.len(), 1);
    }

    #[test]
    fn a_read_of_other_backends_keeps_the_drain_clocks_it_did_not_see() {
        let ledger = Ledger::default();
        let backends = parse_backends("be\nbe2\nbe3\n");
        let rows = parse_servers_state(DUMP).unwrap();
        let mut drains = Drains::new();
        let t0 = Instant::now();
        let grace = Duration::from_secs(9);
        assemble(
            &backends,
            rows.clone(),
            None,
            &ledger,
            &mut drains,
            t0,
            grace,
        );
        // A read of `be` alone: be2's draining server was not in it.
        let only_be: BTreeSet<String> = ["be".to_string()].into();
        let be_rows: Vec<StateRow> = rows.into_iter().filter(|r| r.backend == "be").collect();
        let later = t0 + Duration::from_secs(4);
        let a = assemble(
            &backends,
            be_rows,
            Some(&only_be),
            &ledger,
            &mut drains,
            later,
            grace,
        );
        assert!(a.backends["be2"].servers.is_empty());
        assert_eq!(drains.get(&("be2".into(), "a".into())), Some(&t0));
        // A full read after it still counts be2's drain from t0.
        let rows = parse_servers_state(DUMP).unwrap();
        let a = assemble(&backends, rows, None, &ledger, &mut drains, later, grace);
        assert_eq!(
            a.backends["be2"].servers["a"].drained_for,
            Some(Duration::from_secs(4))
        );
    }

    #[test]
    fn show_map_entries_are_read_in_order() {
        // Captured from HAProxy 2.6.12 (a regex map after runtime adds).
        let reply = "0x555f3b5171f0 ^api[0-9]+\\.example\\.com$ be_a\n0x7f6da404ad80 api.example.com be_b\n0x555f3b7017d0 api.example.com be_a\n\n";
        let entries = parse_show_map(reply).unwrap().unwrap();
        assert_eq!(
            entries,
            [
                (r"^api[0-9]+\.example\.com$", "be_a"),
                ("api.example.com", "be_b"),
                ("api.example.com", "be_a")
            ]
        );
        assert_eq!(
            map_file(&entries),
            "^api[0-9]+\\.example\\.com$ be_a\napi.example.com be_b\napi.example.com be_a\n"
        );
        assert_eq!(parse_show_map("\n").unwrap(), Some(vec![]));
        let unknown = "Unknown map identifier. Please use #<id> or <file>.\n";
        assert_eq!(parse_show_map(unknown).unwrap(), None);
        assert!(parse_show_map("Permission denied\n").is_err());
    }
}
