//! HAProxy's live view of its servers for the status page: the rows of
//! `show stat -1 4 -1` (servers only), CSV with a `# pxname,svname,...` header.

use serde::Serialize;
use std::collections::BTreeMap;

/// What HAProxy says about one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Live {
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, `no check`, `UP 1/3` (going down)...
    pub status: String,
    /// The last check's result (`L7OK`, `L4CON`...), without the `* ` that
    /// marks a check in progress; empty without checks.
    pub check_status: String,
    /// The last check's code (an HTTP status) or HAProxy's text about it.
    pub last_check: String,
    /// Seconds since the last UP/DOWN transition.
    pub since_seconds: Option<u64>,
}

/// The servers of `reply` by (backend, server); rows it cannot read are skipped.
pub fn parse(reply: &str) -> BTreeMap<(String, String), Live> {
    let text = reply.trim_start().strip_prefix("# ").unwrap_or(reply);
    let mut rows = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let Ok(header) = rows.headers().cloned() else {
        return BTreeMap::new();
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(px), Some(sv), Some(status)) = (column("pxname"), column("svname"), column("status"))
    else {
        return BTreeMap::new();
    };
    let (check, last, change, code) = (
        column("check_status"),
        column("last_chk"),
        column("lastchg"),
        column("check_code"),
    );
    let mut servers = BTreeMap::new();
    for row in rows.records().flatten() {
        let field = |i: Option<usize>| i.and_then(|i| row.get(i)).unwrap_or("").trim();
        let (backend, server) = (field(Some(px)), field(Some(sv)));
        if backend.is_empty() || matches!(server, "" | "FRONTEND" | "BACKEND") {
            continue;
        }
        let last_check = match (field(code), field(last)) {
            ("", text) => text.to_string(),
            (code, "") => code.to_string(),
            (code, text) if text.starts_with(code) => text.to_string(),
            (code, text) => format!("{code} {text}"),
        };
        servers.insert(
            (backend.to_string(), server.to_string()),
            Live {
                status: field(Some(status)).to_string(),
                check_status: field(check).trim_start_matches("* ").to_string(),
                last_check,
                since_seconds: field(change).parse().ok(),
            },
        );
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_by_header_name_with_quoted_commas() {
        let reply = "# pxname,svname,status,lastchg,check_status,check_code,last_chk,\n\
                     default_web,hnc-a,UP,12,L7OK,200,OK,\n\
                     default_web,hnc-b,DOWN,3,* L7STS,503,\"Service Unavailable, try later\",\n\
                     default_web,BACKEND,UP,12,,,,\n\n";
        let live = parse(reply);
        assert_eq!(live.len(), 2);
        let b = &live[&("default_web".to_string(), "hnc-b".to_string())];
        assert_eq!(b.status, "DOWN");
        assert_eq!(b.check_status, "L7STS");
        assert_eq!(b.last_check, "503 Service Unavailable, try later");
        assert_eq!(b.since_seconds, Some(3));
        let a = &live[&("default_web".to_string(), "hnc-a".to_string())];
        assert_eq!((a.status.as_str(), a.last_check.as_str()), ("UP", "200 OK"));
    }

    #[test]
    fn an_unreadable_reply_gives_no_servers() {
        assert!(parse("Unknown command\n").is_empty());
        assert!(parse("").is_empty());
    }
}
