//! `explain`'s view of the verdicts: for each compared server of a service,
//! HAProxy's verdict beside Nomad's, read once, now.

use super::Target;
use super::compare;
use crate::config::Resolved;
use crate::daemon::admin::status_live;
use crate::escape::OneLine;
use crate::haproxy::socket::Socket;
use crate::nomad::{Api, HttpClient};
use std::time::Duration;

/// One line per target: both verdicts, what each said, and whether they
/// disagree. Reads HAProxy's `show stat` once and each allocation's check
/// results once; a read that fails is named on its line.
pub async fn explain(config: &Resolved, targets: &[Target]) -> Vec<String> {
    if targets.is_empty() {
        return vec![
            "verdicts: no server of this service has a Nomad check to compare with".into(),
        ];
    }
    let socket = Socket::new(&config.haproxy.stats_socket, Duration::from_secs(5));
    let live = match socket.send("show stat -1 4 -1").await {
        Ok(reply) => status_live::parse(&reply),
        Err(e) => return vec![format!("verdicts: HAProxy's server states unreadable: {e}")],
    };
    let client = match HttpClient::new(&config.nomad) {
        Ok(c) => c,
        Err(e) => return vec![format!("verdicts: {e}")],
    };
    let mut lines = vec![
        "verdicts (HAProxy's check decides the traffic; Nomad's results are shown beside it):"
            .to_string(),
    ];
    for t in targets {
        let haproxy = live
            .get(&(t.backend.clone(), t.server.clone()))
            .and_then(|l| compare::haproxy(&l.status, &l.check_status, &l.last_check));
        let nomad = match client.alloc_checks(&t.namespace, &t.alloc).await {
            Ok(results) => compare::nomad(&results, &t.service, &t.first_check),
            Err(e) => {
                lines.push(format!(
                    "  {}: Nomad's check results unreadable: {}",
                    OneLine(&t.server),
                    OneLine(&e.to_string())
                ));
                continue;
            }
        };
        let side = |v: &Option<compare::Verdict>| match v {
            Some(v) => format!("{} ({})", v.side.as_str(), OneLine(&v.output)),
            None => "no verdict".to_string(),
        };
        let check = nomad
            .as_ref()
            .map(|v| format!(" check {:?}", OneLine(&v.check).to_string()))
            .unwrap_or_default();
        let verdict = match (&haproxy, &nomad) {
            (Some(h), Some(n)) if h.side != n.side => format!(
                "DISAGREE (counted by a running connector once it lasts over {} s)",
                t.settle.as_secs_f64()
            ),
            (Some(_), Some(_)) => "agree".to_string(),
            _ => "not compared".to_string(),
        };
        lines.push(format!(
            "  {}: HAProxy {}; Nomad{check} {}: {verdict}",
            OneLine(&t.server),
            side(&haproxy),
            side(&nomad),
        ));
    }
    lines
}
