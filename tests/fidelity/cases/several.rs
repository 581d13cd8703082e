//! Services with several checks: Nomad requires every one to pass, and the
//! connector runs them all in one HAProxy rule sequence.

use super::Common;
use crate::fidelity::backends::Backends;
use crate::fidelity::case::{Case, get, http_with, tcp};
use hnc_tests::behaviour::{Route, Site};
use serde_json::json;

const SECOND: u64 = 1_000_000_000;

/// Mixed http + tcp, other ports, other intervals, one failing, all passing.
pub(super) async fn services(b: &mut Backends, c: &Common) -> Vec<Case> {
    let admin_tcp = || tcp(json!({"PortLabel": "admin"}));
    let ready = |status: u16| Site::status("/ready", status);
    let ready_ok = b.http(ready(200)).await;
    let ready_broken = b.http(ready(500)).await;
    let both = |ready: u16| {
        Site::with(vec![
            Route::new("/health", 200),
            Route::new("/ready", ready),
        ])
    };
    let same_port_ok = b.http(both(200)).await;
    let same_port_broken = b.http(both(503)).await;
    let second_open = b.silent().await;
    let ready_check = || {
        http_with(
            "/ready",
            json!({"Name": "ready", "PortLabel": "admin", "Interval": 2 * SECOND}),
        )
    };
    let ready_here = || http_with("/ready", json!({"Name": "ready"}));
    vec![
        Case::new(
            "several-http-ok-tcp-ok",
            get(),
            "answers 200; its admin port accepts",
            c.ok,
        )
        .and_check(admin_tcp())
        .port("admin", c.open),
        Case::new(
            "several-http-fails-tcp-ok",
            get(),
            "answers 500; its admin port accepts",
            c.broken,
        )
        .and_check(admin_tcp())
        .port("admin", c.open),
        Case::new(
            "several-tcp-closed-http-ok",
            tcp(json!({"PortLabel": "admin"})),
            "admin port refuses; the service port answers 200",
            c.ok,
        )
        .and_check(get())
        .port("admin", c.closed),
        Case::new(
            "several-http-ok-tcp-closed",
            get(),
            "answers 200; its admin port refuses",
            c.ok,
        )
        .and_check(admin_tcp())
        .port("admin", c.closed),
        Case::new(
            "several-two-http-both-ok",
            get(),
            "/health answers 200; /ready on the admin port (every 2 s) answers 200",
            c.ok,
        )
        .and_check(ready_check())
        .port("admin", ready_ok),
        Case::new(
            "several-two-http-second-fails",
            get(),
            "/health answers 200; /ready on the admin port (every 2 s) answers 500",
            c.ok,
        )
        .and_check(ready_check())
        .port("admin", ready_broken),
        Case::new(
            "several-two-http-first-fails",
            get(),
            "/health answers 500; /ready on the admin port (every 2 s) answers 200",
            c.broken,
        )
        .and_check(ready_check())
        .port("admin", ready_ok),
        Case::new(
            "several-same-port-both-ok",
            get(),
            "/health and /ready on the service port answer 200",
            same_port_ok,
        )
        .and_check(ready_here()),
        Case::new(
            "several-same-port-ready-fails",
            get(),
            "/health answers 200, /ready on the same port answers 503",
            same_port_broken,
        )
        .and_check(ready_here()),
        Case::new(
            "several-two-tcp-both-open",
            tcp(json!({})),
            "the service port and the admin port accept",
            c.open,
        )
        .and_check(admin_tcp())
        .port("admin", second_open),
        Case::new(
            "several-two-tcp-second-closed",
            tcp(json!({})),
            "the service port accepts; the admin port refuses",
            c.open,
        )
        .and_check(admin_tcp())
        .port("admin", c.closed),
        Case::new(
            "several-three-all-ok",
            get(),
            "/health answers 200; /ready on the admin port (every 2 s) answers 200; the db port accepts",
            c.ok,
        )
        .and_check(ready_check())
        .and_check(tcp(json!({"Name": "db", "PortLabel": "db", "Interval": 5 * SECOND})))
        .port("admin", ready_ok)
        .port("db", second_open),
    ]
}
