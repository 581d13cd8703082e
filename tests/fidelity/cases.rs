//! The fidelity matrix's cases: each a Nomad check as a job spec writes it,
//! plus the real backend behind it, grouped by what they probe.
//! Here: what the backend answers (statuses, redirects, time) and tag-set
//! rise/fall; the request's shape and the connection live beside.

mod answers;
mod nomad_request;
mod requests;
mod several;
mod transport;

use super::backends::Backends;
use super::case::{Case, REDIRECTS, get, host, http_with};
use hnc_tests::behaviour::{Route, Site};
use hnc_tests::nomad_checker::Verdict;
use serde_json::json;
use std::time::Duration;

/// A backend slower than the timeout.
const SLOW: Duration = Duration::from_millis(2_500);

/// Ports several groups share.
struct Common {
    /// Answers 200 on /health.
    ok: u16,
    /// Answers 500 on /health.
    broken: u16,
    /// Accepts connections and says nothing.
    open: u16,
    /// Refuses connections.
    closed: u16,
}

/// Every case, with its backends started (or, dry, described) in `b`.
pub async fn matrix(b: &mut Backends) -> Vec<Case> {
    let common = Common {
        ok: b.http(Site::status("/health", 200)).await,
        broken: b.http(Site::status("/health", 500)).await,
        open: b.silent().await,
        closed: b.closed(),
    };
    let mut cases = Vec::new();
    let mut add = |category: &'static str, group: Vec<Case>| {
        cases.extend(group.into_iter().map(|mut case| {
            case.category = category;
            case
        }));
    };
    add("statuses", statuses(b, &common).await);
    add("redirects", redirects(b, &common).await);
    add("redirects", more_redirects(b, &common).await);
    add("time", time(b, &common).await);
    add("headers", requests::headers(b).await);
    add("headers", nomad_request::user_agent(b).await);
    add("headers", nomad_request::empty_host(b).await);
    add(
        "methods and paths",
        requests::methods_and_paths(b, &common).await,
    );
    add(
        "methods and paths",
        nomad_request::targets(b, &common).await,
    );
    add("methods and paths", nomad_request::bodies(b).await);
    add("tls", requests::tls(b, &common).await);
    add("answers", answers::interim(b).await);
    add("answers", answers::framing(b).await);
    add("connections", answers::resets(b, &common).await);
    add("connections", transport::tcp_and_ports(b, &common).await);
    add("grpc", transport::grpc(b, &common).await);
    add("rise and fall", rise_and_fall(&common));
    add("several checks", several::services(b, &common).await);
    cases
}

async fn statuses(b: &mut Backends, c: &Common) -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, status, behaviour) in [
        ("status-200", 200, "answers 200"),
        ("status-204", 204, "answers 204"),
        ("status-399", 399, "answers 399"),
        ("status-400", 400, "answers 400"),
        ("status-404", 404, "answers 404"),
        ("status-429", 429, "answers 429"),
        ("status-500", 500, "answers 500"),
        ("status-503", 503, "answers 503"),
    ] {
        let port = match status {
            200 => c.ok,
            500 => c.broken,
            _ => b.http(Site::status("/health", status)).await,
        };
        cases.push(Case::new(name, get(), behaviour, port));
    }
    cases
}

/// 301/302/303 are followed by Nomad, 307/308 never are (Nomad's request has
/// a body Go cannot replay); HAProxy judges every 3xx itself.
async fn redirects(b: &mut Backends, c: &Common) -> Vec<Case> {
    let to = |status: u16, location: &str| Route::new("/health", status).location(location);
    let ok = Route::new("/ok", 200);
    let unavailable = b.http(Site::status("/health", 503)).await;
    let elsewhere = |port: u16| format!("http://127.0.0.1:{port}/health");
    let differs = |case: Case| case.deliberate(Verdict::Pass, &REDIRECTS);
    vec![
        Case::new(
            "redirect-301-to-200",
            get(),
            "301 to /ok, which answers 200",
            b.http(Site::with(vec![to(301, "/ok"), ok.clone()])).await,
        ),
        Case::new(
            "redirect-302-to-200",
            get(),
            "302 to /ok, which answers 200",
            b.http(Site::with(vec![to(302, "/ok"), ok.clone()])).await,
        ),
        Case::new(
            "redirect-302-no-location",
            get(),
            "302 without a Location",
            b.http(Site::status("/health", 302)).await,
        ),
        Case::new(
            "redirect-307-to-200-elsewhere",
            get(),
            "307 to another server's /health, which answers 200",
            b.http(Site::with(vec![to(307, &elsewhere(c.ok))])).await,
        ),
        Case::new(
            "redirect-307-to-404",
            get(),
            "307 to /missing, which answers 404",
            b.http(Site::with(vec![to(307, "/missing")])).await,
        ),
        Case::new(
            "redirect-308-to-503-elsewhere",
            get(),
            "308 to another server's /health, which answers 503",
            b.http(Site::with(vec![to(308, &elsewhere(unavailable))]))
                .await,
        ),
        Case::new(
            "redirect-chain-of-3-to-200",
            get(),
            "302 → 302 → 301 → 200",
            b.http(Site::with(vec![
                to(302, "/a"),
                Route::new("/a", 302).location("/b"),
                Route::new("/b", 301).location("/ok"),
                ok.clone(),
            ]))
            .await,
        ),
        differs(Case::new(
            "redirect-301-to-404",
            get(),
            "301 to /missing, which answers 404",
            b.http(Site::with(vec![to(301, "/missing")])).await,
        )),
        differs(Case::new(
            "redirect-303-to-404",
            get(),
            "303 to /missing, which answers 404",
            b.http(Site::with(vec![to(303, "/missing")])).await,
        )),
        differs(Case::new(
            "redirect-302-to-503-elsewhere",
            get(),
            "302 to another server's /health, which answers 503",
            b.http(Site::with(vec![to(302, &elsewhere(unavailable))]))
                .await,
        )),
        differs(Case::new(
            "redirect-302-to-closed-port",
            get(),
            "302 to a port that refuses connections",
            b.http(Site::with(vec![to(302, &elsewhere(c.closed))]))
                .await,
        )),
        differs(Case::new(
            "redirect-302-loop",
            get(),
            "302 to itself, forever",
            b.http(Site::with(vec![to(302, "/health")])).await,
        )),
        differs(Case::new(
            "redirect-302-to-slow",
            get(),
            "302 to /slow, which answers 200 after 2.5 s",
            b.http(Site::with(vec![
                to(302, "/slow"),
                Route::new("/slow", 200).delay(SLOW),
            ]))
            .await,
        )),
    ]
}

/// Hop limits, bodies on 307/308, a method changed by 301, and a custom
/// Host across a relative and an absolute redirect.
async fn more_redirects(b: &mut Backends, c: &Common) -> Vec<Case> {
    let chain = |hops: usize| {
        let mut routes = vec![Route::new("/health", 302).location("/r1")];
        for i in 1..hops {
            routes.push(Route::new(&format!("/r{i}"), 302).location(&format!("/r{}", i + 1)));
        }
        routes.push(Route::new(&format!("/r{hops}"), 200));
        Site::with(routes)
    };
    let post = |body: &str| http_with("/health", json!({"Method": "POST", "Body": body}));
    let vhost = "api.example.test";
    let vhost_ok = b
        .http(Site::with(vec![Route::new("/health", 200).host(vhost)]))
        .await;
    let absolute = format!("http://127.0.0.1:{vhost_ok}/health");
    let with_host = || http_with("/health", host(vhost));
    vec![
        Case::new(
            "redirect-chain-of-9-to-200",
            get(),
            "nine 302s in a row, then 200",
            b.http(chain(9)).await,
        ),
        Case::new(
            "redirect-chain-of-10-to-200",
            get(),
            "ten 302s in a row, then 200 (Go stops after 10 requests)",
            b.http(chain(10)).await,
        )
        .deliberate(Verdict::Pass, &REDIRECTS),
        Case::new(
            "redirect-307-post-with-body",
            post("ping"),
            "307 to /missing, which answers 404",
            b.http(Site::with(vec![
                Route::new("/health", 307).location("/missing"),
            ]))
            .await,
        ),
        Case::new(
            "redirect-301-post-becomes-get",
            post("ping"),
            "301 to /ok, which serves only GET",
            b.http(Site::with(vec![
                Route::new("/health", 301).location("/ok"),
                Route::new("/ok", 200).methods(&["GET"]),
            ]))
            .await,
        ),
        Case::new(
            "redirect-302-relative-keeps-host",
            with_host(),
            "serves only Host api.example.test: 302 to /ok, which answers 200",
            b.http(Site::with(vec![
                Route::new("/health", 302).location("/ok").host(vhost),
                Route::new("/ok", 200).host(vhost),
            ]))
            .await,
        ),
        Case::new(
            "redirect-302-absolute-drops-host",
            with_host(),
            "302 to an absolute URL of a server that serves only Host api.example.test",
            b.http(Site::with(vec![
                Route::new("/health", 302).location(&absolute),
            ]))
            .await,
        )
        .deliberate(Verdict::Pass, &REDIRECTS),
        Case::new(
            "redirect-300-not-followed",
            get(),
            "300 Multiple Choices with a Location to /missing",
            b.http(Site::with(vec![
                Route::new("/health", 300).location("/missing"),
            ]))
            .await,
        ),
        Case::new(
            "redirect-304",
            get(),
            "answers 304",
            b.http(Site::status("/health", 304)).await,
        ),
        Case::new(
            "redirect-303-to-closed-port",
            get(),
            "303 to a port that refuses connections",
            b.http(Site::with(vec![
                Route::new("/health", 303).location(&format!("http://127.0.0.1:{}/", c.closed)),
            ]))
            .await,
        )
        .deliberate(Verdict::Pass, &REDIRECTS),
    ]
}

async fn time(b: &mut Backends, c: &Common) -> Vec<Case> {
    let after = |delay| Site::with(vec![Route::new("/health", 200).delay(delay)]);
    vec![
        Case::new(
            "slow-200-after-timeout",
            get(),
            "answers 200 after 2.5 s (timeout 1 s)",
            b.http(after(SLOW)).await,
        ),
        Case::new(
            "slow-200-within-timeout",
            get(),
            "answers 200 after 200 ms",
            b.http(after(Duration::from_millis(200))).await,
        ),
        Case::new(
            "http-silent-listener",
            get(),
            "accepts the connection, never answers",
            c.open,
        ),
        Case::new(
            "http-connection-refused",
            get(),
            "nothing listens (connection refused)",
            c.closed,
        ),
    ]
}

/// Rise and fall from tags: rise delays a pass; a new server starts DOWN.
fn rise_and_fall(c: &Common) -> Vec<Case> {
    vec![
        Case::new("rise-2-status-200", get(), "answers 200", c.ok).tag("haproxy.check.rise=2"),
        Case::new("fall-3-status-500", get(), "answers 500", c.broken).tag("haproxy.check.fall=3"),
    ]
}
