//! What a runtime API reply means, on every supported HAProxy version.
//!
//! HAProxy's replies are English sentences that change between releases
//! (3.4 reworded the refusal of a static balance algorithm, 3.0 answers a
//! no-op `set server … addr` with `nothing changed`). Each meaning here is
//! recognised by every wording the supported versions use, each recorded
//! from the real binaries in `testdata/replies-<version>.txt`, and a reply
//! is only read for the meanings its command can have (see `judge`).

/// What HAProxy meant by a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// `add server` succeeded.
    Added,
    /// `del server` succeeded.
    Deleted,
    /// The server named does not exist.
    NoSuchServer,
    /// The backend named does not exist.
    NoSuchBackend,
    /// A server of that name already exists in the backend.
    NameTaken,
    /// `add server` refused: the backend's balance algorithm is static.
    StaticBalance,
    /// `del server` refused: sessions or connections still hold the server.
    StillAttached,
    /// `del server` refused: the server is not in maintenance.
    NotInMaintenance,
    /// `set server … addr` applied the address, or found it already set.
    AddrSet,
    /// `del map` found no entry of the key.
    KeyNotFound,
    /// `wait … srv-removable` saw the server become removable.
    Removable,
    /// `wait … srv-removable` gave up (time limit, or no such server).
    NotRemovable,
}

/// Every wording of the meanings that have one fixed sentence.
const EXACT: &[(&str, Meaning)] = &[
    ("New server registered.", Meaning::Added),
    ("Server deleted.", Meaning::Deleted),
    ("No such server.", Meaning::NoSuchServer),
    ("No such backend.", Meaning::NoSuchBackend),
    (
        "Already exists a server with the same name in backend.",
        Meaning::NameTaken,
    ),
    // 2.6 to 3.2.
    (
        "Backend must use a dynamic load balancing to support dynamic servers.",
        Meaning::StaticBalance,
    ),
    (
        "Server still has connections attached to it, cannot remove it.",
        Meaning::StillAttached,
    ),
    (
        "Only servers in maintenance mode can be deleted.",
        Meaning::NotInMaintenance,
    ),
    // 3.0 and later, for an address and port already set.
    ("nothing changed", Meaning::AddrSet),
    ("Key not found.", Meaning::KeyNotFound),
    ("Done.", Meaning::Removable),
    // 3.0 to 3.2 (time limit or no such server).
    ("Failed.", Meaning::NotRemovable),
    // 3.4.
    ("Failed. No such server.", Meaning::NotRemovable),
];

/// What `reply` (trimmed) means, if it is one of the replies the driver
/// knows; `None` for an empty reply or any other text.
pub fn classify(reply: &str) -> Option<Meaning> {
    let reply = reply.trim();
    if let Some((_, meaning)) = EXACT.iter().find(|(text, _)| *text == reply) {
        return Some(*meaning);
    }
    if static_balance_3_4(reply) {
        return Some(Meaning::StaticBalance);
    }
    if addr_set(reply) {
        return Some(Meaning::AddrSet);
    }
    None
}

/// 3.4: `Backend does not support dynamic servers : backend '<name>' uses a
/// non dynamic load balancing method.`
fn static_balance_3_4(reply: &str) -> bool {
    reply
        .strip_prefix("Backend does not support dynamic servers : backend '")
        .and_then(|rest| rest.strip_suffix("' uses a non dynamic load balancing method."))
        .is_some_and(|name| !name.contains('\''))
}

/// `set server … addr`: each of address and port either `… changed from
/// '<old>' to '<new>'` or `no need to change the …`, then `by '<source>'`
/// (2.6 to 3.4 for a change; 2.6 also for a no-op).
fn addr_set(reply: &str) -> bool {
    let Some((parts, _source)) = reply.rsplit_once(" by '") else {
        return false;
    };
    !parts.is_empty()
        && parts.split(", ").all(|part| {
            part.starts_with("no need to change the ")
                || (part.contains(" changed from '") && part.contains("' to '"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The recorded replies of one version: command → reply.
    fn recorded(text: &str) -> BTreeMap<String, Vec<String>> {
        let mut replies: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<(String, Vec<&str>)> = None;
        let mut flush = |c: Option<(String, Vec<&str>)>| {
            if let Some((command, lines)) = c {
                replies.entry(command).or_default().push(lines.join("\n"));
            }
        };
        for line in text.lines().filter(|l| !l.starts_with("# Replies")) {
            if let Some(command) = line.strip_prefix("=== ") {
                flush(current.take());
                current = Some((command.to_string(), Vec::new()));
            } else if let Some((_, lines)) = current.as_mut() {
                lines.push(line);
            }
        }
        flush(current);
        replies
    }

    const VERSIONS: [(&str, &str); 4] = [
        ("2.6", include_str!("../testdata/replies-2.6.txt")),
        ("3.0", include_str!("../testdata/replies-3.0.txt")),
        ("3.2", include_str!("../testdata/replies-3.2.txt")),
        ("3.4", include_str!("../testdata/replies-3.4.txt")),
    ];

    fn first(replies: &BTreeMap<String, Vec<String>>, command: &str) -> Option<Meaning> {
        let reply = replies.get(command).unwrap_or_else(|| panic!("{command}"));
        classify(&reply[0])
    }

    #[test]
    fn every_version_s_wording_has_one_meaning() {
        use Meaning::*;
        for (version, text) in VERSIONS {
            let r = recorded(text);
            let cases = [
                ("add server be_static/x 127.0.0.1:1", Some(StaticBalance)),
                ("add server be_src/x 127.0.0.1:1", Some(StaticBalance)),
                ("add server be_rr/s1 127.0.0.1:1", Some(NameTaken)),
                ("add server nobe/x 127.0.0.1:1", Some(NoSuchBackend)),
                ("add server be_rr/a 127.0.0.1:1 weight 0 check", Some(Added)),
                ("add server be_rr/b 127.0.0.1:1 check unknown-kw", None),
                ("set server be_rr/a addr 127.0.0.1 port 1", Some(AddrSet)),
                ("set server be_rr/a addr 127.0.0.2 port 2", Some(AddrSet)),
                ("set server be_rr/a state ready", None),
                ("set server be_rr/nope state maint", Some(NoSuchServer)),
                ("shutdown sessions server be_rr/nope", Some(NoSuchServer)),
                ("del server be_rr/nope", Some(NoSuchServer)),
                ("add map /run/hnc/m.map k v1", None),
                ("show map /run/none.map", None),
            ];
            for (command, want) in cases {
                assert_eq!(first(&r, command), want, "{version}: {command}");
            }
            let del = &r["del server be_rr/a"];
            assert_eq!(classify(&del[0]), Some(NotInMaintenance), "{version}");
            assert_eq!(classify(&del[1]), Some(Deleted), "{version}");
            // A server a killed session still holds: refused, then deleted
            // after `wait … srv-removable` where the version has it.
            let busy = &r["del server be_busy/k"];
            assert!(
                busy.iter()
                    .all(|b| matches!(classify(b), Some(StillAttached | Deleted | NoSuchServer))),
                "{version}: {busy:?}"
            );
            let init = first(
                &r,
                "add server be_rr/i 127.0.0.1:1 weight 5 check init-state down",
            );
            let wait = first(&r, "wait 100 srv-removable be_rr/nope");
            let dels = &r["del map /run/hnc/m.map k"];
            match version {
                "2.6" => {
                    assert_eq!(init, None, "unknown keyword");
                    assert_eq!(wait, None, "unknown command");
                    assert_eq!(classify(&dels[1]), Some(KeyNotFound), "{dels:?}");
                }
                "3.0" | "3.2" => {
                    assert_eq!(init, if version == "3.0" { None } else { Some(Added) });
                    assert_eq!(wait, Some(NotRemovable));
                    assert_eq!(classify(&dels[1]), Some(KeyNotFound), "{dels:?}");
                }
                _ => {
                    assert_eq!(init, Some(Added));
                    assert_eq!(wait, Some(NotRemovable));
                    // 3.3 and later: one entry per call.
                    assert_eq!(classify(&dels[1]), None, "{dels:?}");
                    assert_eq!(classify(&dels[2]), Some(KeyNotFound), "{dels:?}");
                }
            }
        }
    }

    #[test]
    fn versioned_map_updates_answer_alike_everywhere() {
        for (version, text) in VERSIONS {
            let r = recorded(text);
            assert_eq!(
                r["prepare map /run/hnc/m.map"],
                ["New version created: 1"],
                "{version}"
            );
            assert_eq!(r["add map @1 /run/hnc/m.map k v3"], [""], "{version}");
            assert_eq!(r["commit map @1 /run/hnc/m.map"], [""], "{version}");
            assert_eq!(r["show map /run/hnc/m.map"][1], "0x1 k v3", "{version}");
        }
    }

    #[test]
    fn lookalikes_are_not_taken_for_known_replies() {
        for reply in [
            "Backend does not support dynamic servers : backend 'a' b' uses a non dynamic load balancing method.",
            "Backend must use a dynamic load balancing",
            "New server registered. Really.",
            "changed from nothing",
            "by 'stats socket command'",
            "",
        ] {
            assert_eq!(classify(reply), None, "{reply:?}");
        }
        assert_eq!(classify("Server deleted.\n"), Some(Meaning::Deleted));
    }
}
