//! Query options as Nomad's `parse` reads them (`namespace`, `index`, `wait`,
//! `pretty`, token), and the `X-Nomad-*` response meta headers.

use std::time::Duration;

use crate::acl::{self, Identity};
use crate::goduration::parse_go_duration;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::sim::Shared;

/// Blocking queries never wait longer than this (`MaxBlockingRPCQueryTime`), and
/// this is also the default wait.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(300);

/// Parsed query options of a read endpoint.
#[derive(Debug, Clone)]
pub(crate) struct QueryOptions {
    pub namespace: String,
    pub min_index: u64,
    pub wait: Duration,
    pub pretty: bool,
    pub identity: Identity,
}

/// Parses the options; 400 for a bad `wait`/`index`, 403 for an unknown token.
pub(crate) fn parse(shared: &Shared, req: &Request) -> Result<QueryOptions, Response> {
    let namespace = req
        .query_nonempty("namespace")
        .unwrap_or("default")
        .to_string();
    let mut wait = Duration::ZERO;
    if let Some(w) = req.query_nonempty("wait") {
        let ns = parse_go_duration(w).ok_or_else(|| Response::text(400, "Invalid wait time"))?;
        wait = Duration::from_nanos(u64::try_from(ns.max(0)).unwrap_or(u64::MAX));
    }
    let mut min_index = 0;
    if let Some(i) = req.query_nonempty("index") {
        min_index = i
            .parse::<u64>()
            .map_err(|_| Response::text(400, "Invalid index"))?;
    }
    // Go's `[+-]` are rejected by ParseUint too; `parse::<u64>` accepts "+1", Go does not.
    if req
        .query_nonempty("index")
        .is_some_and(|i| i.starts_with('+'))
    {
        return Err(Response::text(400, "Invalid index"));
    }
    let pretty = req
        .query("pretty")
        .is_some_and(|v| v.is_empty() || v != "0");
    let token = acl::token_from_headers(req.header("X-Nomad-Token"), req.header("Authorization"));
    let identity = acl::resolve(shared.cfg.acl.as_ref(), &shared.identities, &token)
        .map_err(|()| super::permission_denied())?;
    Ok(QueryOptions {
        namespace,
        min_index,
        wait,
        pretty,
        identity,
    })
}

/// Adds `X-Nomad-Index`, `X-Nomad-KnownLeader`, `X-Nomad-LastContact`.
pub(crate) fn with_meta(resp: Response, index: u64) -> Response {
    resp.header("X-Nomad-Index", &index.to_string())
        .header("X-Nomad-Knownleader", "true")
        .header("X-Nomad-Lastcontact", "0")
}
