//! Services with several checks: Nomad requires every one to pass.

use super::Common;
use crate::fidelity::backends::Backends;
use crate::fidelity::case::{Case, SEVERAL, get, http_with, tcp};
use hnc_tests::behaviour::Site;
use hnc_tests::nomad_checker::Verdict;
use serde_json::json;

const SECOND: u64 = 1_000_000_000;

/// Mixed http + tcp, other ports, other intervals.
pub(super) async fn services(b: &mut Backends, c: &Common) -> Vec<Case> {
    let admin_tcp = || tcp(json!({"PortLabel": "admin"}));
    let ready = |status: u16| Site::status("/ready", status);
    let ready_ok = b.http(ready(200)).await;
    let ready_broken = b.http(ready(500)).await;
    let ready_check = || {
        http_with(
            "/ready",
            json!({"Name": "ready", "PortLabel": "admin", "Interval": 2 * SECOND}),
        )
    };
    let differs = |case: Case| case.deliberate(Verdict::Pass, &SEVERAL);
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
        differs(
            Case::new(
                "several-tcp-closed-http-ok",
                tcp(json!({"PortLabel": "admin"})),
                "admin port refuses; the service port answers 200",
                c.ok,
            )
            .and_check(get())
            .port("admin", c.closed),
        ),
        Case::new(
            "several-two-http-both-ok",
            get(),
            "/health answers 200; /ready on the admin port (every 2 s) answers 200",
            c.ok,
        )
        .and_check(ready_check())
        .port("admin", ready_ok),
        differs(
            Case::new(
                "several-two-http-second-fails",
                get(),
                "/health answers 200; /ready on the admin port (every 2 s) answers 500",
                c.ok,
            )
            .and_check(ready_check())
            .port("admin", ready_broken),
        ),
        Case::new(
            "several-two-http-first-fails",
            get(),
            "/health answers 500; /ready on the admin port (every 2 s) answers 200",
            c.broken,
        )
        .and_check(ready_check())
        .port("admin", ready_ok),
    ]
}
