//! The domain maps the frontend routes by: routing, restarts, operator edits, refused patterns.

use super::*;

const REGEX: &str = r"^app[0-9]+\.example\.com$";

fn with_domains(mut want: Desired, entries: &[(DomainMatch, &str, &str)]) -> Desired {
    for (kind, pattern, backend) in entries {
        want.domains
            .insert((*kind, pattern.to_string()), backend.to_string());
    }
    want
}

/// Asserts that a request with this `Host` went through the operator's
/// frontend to `to` (and not to `other`).
async fn routes(h: &Haproxy, host: &str, to: &HttpBackend, other: &HttpBackend) {
    let (before, elsewhere) = (to.requests(), other.requests());
    assert_eq!(h.get_host(host).await, Ok(200), "Host: {host}");
    assert_eq!(
        to.requests(),
        before + 1,
        "Host: {host} reached its backend"
    );
    assert_eq!(other.requests(), elsewhere, "Host: {host} reached another");
}

fn verbs(report: &haproxy::ApplyReport) -> Vec<(&str, &'static str)> {
    let mut verbs: Vec<_> = report
        .applied_domains
        .iter()
        .map(|c| (c.pattern.as_str(), c.action.verb()))
        .collect();
    verbs.sort();
    verbs
}

fn file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Two backends, `default_api` on `apps[0]` and `default_www` on
/// `apps[1]`, both UP.
async fn two_backends(
    h: &Haproxy,
    driver: &RuntimeDriver,
    apps: &[HttpBackend; 2],
    domains: &[(DomainMatch, &str, &str)],
) -> (Desired, haproxy::ApplyReport) {
    let check = http_check("/health", 200, None);
    let a = server("a", apps[0].port, &check);
    let b = server("b", apps[1].port, &check);
    let want = with_domains(
        desired(&[
            &dynamic("default_api", &check, &[&a]),
            &dynamic("default_www", &check, &[&b]),
        ]),
        domains,
    );
    let report = sync(driver, &want).await;
    wait_status(h, "default_api", &a.name, "UP").await;
    wait_status(h, "default_www", &b.name, "UP").await;
    (want, report)
}

#[tokio::test]
async fn domains_route_requests_by_host_and_change_without_a_reload() {
    use DomainMatch::{Exact, Prefix, Regex};
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Prefix, "www.", "default_www"),
        (Regex, REGEX, "default_api"),
    ];
    let (want, report) = two_backends(&h, &driver, &apps, &domains).await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    assert_eq!(
        verbs(&report),
        [(REGEX, "add"), ("api.example.com", "add"), ("www.", "add")],
        "added in the apply whose reload created their backends"
    );
    let reloads = h.reloads().await;

    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    routes(&h, "WWW.Example.com:8080", www, api).await;
    routes(&h, "www.other.org", www, api).await;
    routes(&h, "app12.example.com", api, www).await;
    assert_eq!(h.get_host("other.example.com").await, Ok(503));
    assert_eq!(
        h.get_host("app1xexample.com").await,
        Ok(503),
        "the regex's `\\.` reached HAProxy as a literal dot"
    );
    assert_eq!(
        h.map_entries(&h.domain_map_regex).await,
        [(REGEX.to_string(), "default_api".to_string())]
    );
    converged(&driver, &want).await;

    // Repoint one entry, remove another: runtime only.
    let moved = with_domains(
        Desired {
            domains: Default::default(),
            ..want.clone()
        },
        &[
            (Exact, "api.example.com", "default_www"),
            (Regex, REGEX, "default_api"),
        ],
    );
    let report = sync(&driver, &moved).await;
    assert_eq!(report.reload, ReloadOutcome::NotNeeded);
    assert_eq!(
        verbs(&report),
        [("api.example.com", "set"), ("www.", "remove")]
    );
    routes(&h, "api.example.com", www, api).await;
    assert_eq!(h.get_host("www.example.com").await, Ok(503));
    routes(&h, "app7.example.com", api, www).await;
    assert_eq!(h.reloads().await, reloads, "map changes must not reload");
    converged(&driver, &moved).await;
    assert_eq!(file(&h.domain_map_exact), "api.example.com default_www\n");
    assert_eq!(file(&h.domain_map_prefix), "");
    assert_eq!(file(&h.domain_map_regex), format!("{REGEX} default_api\n"));
    let stats = driver.stats();
    assert_eq!(stats.domains_applied.values().sum::<u64>(), 5);
}

#[tokio::test]
async fn domain_entries_survive_a_restart_from_their_files() {
    use DomainMatch::{Exact, Prefix, Regex};
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (mut h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Prefix, "www.", "default_www"),
        (Regex, REGEX, "default_www"),
    ];
    let (want, _) = two_backends(&h, &driver, &apps, &domains).await;

    h.restart().await;
    // Before any sync: HAProxy loaded the entries from the files.
    assert_eq!(
        h.map_entries(&h.domain_map_exact).await,
        [("api.example.com".to_string(), "default_api".to_string())]
    );
    assert_eq!(
        h.map_entries(&h.domain_map_regex).await,
        [(REGEX.to_string(), "default_www".to_string())],
        "the regex keeps its backslashes through the file"
    );
    // The servers come back from the managed file; the state file last
    // saw them before their first check, so they pass their checks again.
    wait_status(&h, "default_api", &names::server_name("a"), "UP").await;
    wait_status(&h, "default_www", &names::server_name("b"), "UP").await;
    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    routes(&h, "www.example.com", www, api).await;
    routes(&h, "app3.example.com", www, api).await;
    converged(&driver, &want).await;
}

#[tokio::test]
async fn operator_map_edits_are_repaired_by_the_next_sync() {
    use DomainMatch::Exact;
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Exact, "www.example.com", "default_www"),
    ];
    let (want, _) = two_backends(&h, &driver, &apps, &domains).await;
    let reloads = h.reloads().await;
    let map = h.domain_map_exact.display().to_string();

    h.cmd(&format!("del map {map} api.example.com")).await;
    h.cmd(&format!("add map {map} www.example.com default_api"))
        .await;
    h.cmd(&format!("add map {map} rogue.example.com default_api"))
        .await;
    assert_eq!(h.get_host("api.example.com").await, Ok(503));
    let report = sync(&driver, &want).await;

    assert_eq!(
        verbs(&report),
        [
            ("api.example.com", "add"),
            ("rogue.example.com", "remove"),
            ("www.example.com", "reset")
        ]
    );
    let mut held = h.map_entries(&h.domain_map_exact).await;
    held.sort();
    assert_eq!(
        held,
        [
            ("api.example.com".to_string(), "default_api".to_string()),
            ("www.example.com".to_string(), "default_www".to_string())
        ]
    );
    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    routes(&h, "www.example.com", www, api).await;
    assert_eq!(h.get_host("rogue.example.com").await, Ok(503));
    assert_eq!(h.reloads().await, reloads);
    converged(&driver, &want).await;
    let mut lines: Vec<String> = file(&h.domain_map_exact)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        ["api.example.com default_api", "www.example.com default_www"]
    );
}

#[tokio::test]
async fn bad_domain_patterns_are_refused_and_never_sent() {
    use DomainMatch::{Exact, Prefix, Regex};
    let unused = |c: &mut haproxy::Config| {
        c.domain_map_regex = c
            .domain_map_regex
            .as_ref()
            .map(|p| p.with_file_name("unused-regex.map"));
    };
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", unused).await;
    let unused_map = h.dir.path().join("unused-regex.map");
    assert_eq!(file(&unused_map), "", "created empty at start");
    let (plain, _) = two_backends(&h, &driver, &apps, &[]).await;
    let sent = driver.stats().commands;

    let bad = [
        (Exact, "api.example.com;del map x y", "default_api"),
        (Prefix, "API.", "default_api"),
        (Regex, "^api", "default_api"),
    ];
    let report = sync(&driver, &with_domains(plain, &bad)).await;

    assert_eq!(driver.stats().commands, sent, "nothing was sent");
    assert!(report.applied_domains.is_empty());
    let shown: Vec<String> = report.refusals.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(matches!(report.refusals[0], Refusal::InvalidDomain { .. }));
    assert!(
        shown[0].contains("\"api.example.com;del map x y\"")
            && shown[0].contains("\"default_api\""),
        "{shown:?}"
    );
    assert!(matches!(report.refusals[1], Refusal::InvalidDomain { .. }));
    assert!(matches!(
        report.refusals[2],
        Refusal::DomainMapNotLoaded { .. }
    ));
    assert!(h.map_entries(&h.domain_map_exact).await.is_empty());
    assert!(h.map_entries(&h.domain_map_prefix).await.is_empty());
    assert_eq!(file(&h.domain_map_exact), "");
}

#[tokio::test]
async fn regex_haproxy_cannot_compile_is_refused_and_never_persisted() {
    use DomainMatch::{Exact, Regex};
    let apps = [HttpBackend::start().await, HttpBackend::start().await];
    let (h, driver) = start("", |_| {}).await;
    let domains = [
        (Exact, "api.example.com", "default_api"),
        (Regex, "^(api", "default_api"),
    ];
    let (want, report) = two_backends(&h, &driver, &apps, &domains).await;

    assert_eq!(verbs(&report), [("api.example.com", "add")]);
    let refused = report
        .refusals
        .iter()
        .find_map(|r| match r {
            Refusal::DomainRefused {
                pattern,
                backend,
                reply,
                ..
            } => Some((pattern.as_str(), backend.as_str(), reply.as_str())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no DomainRefused in {:?}", report.refusals));
    assert_eq!((refused.0, refused.1), ("^(api", "default_api"));
    assert!(refused.2.contains("is invalid"), "{}", refused.2);
    assert!(h.map_entries(&h.domain_map_regex).await.is_empty());
    assert_eq!(file(&h.domain_map_regex), "", "a restart must not meet it");
    assert!(h.check_config().0);
    let [api, www] = &apps;
    routes(&h, "api.example.com", api, www).await;
    // Refused again on every pass, and nothing else changes.
    let again = sync(&driver, &want).await;
    assert!(again.applied_domains.is_empty());
    assert_eq!(again.refusals.len(), 1, "{:?}", again.refusals);
}

#[tokio::test]
async fn domain_of_a_new_backend_waits_for_the_reload_that_creates_it() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |c| c.reload_delay_ms = 1_500).await;
    let check = http_check("/health", 200, None);
    let a = server("a", app.port, &check);
    let web = dynamic("default_web", &check, &[&server("w", app.port, &check)]);
    // The first reload of the process goes at once; the next one waits.
    let first = sync(&driver, &desired(&[&web])).await;
    assert!(
        matches!(first.reload, ReloadOutcome::Done { .. }),
        "{first:?}"
    );
    let want = with_domains(
        desired(&[&web, &dynamic("default_api", &check, &[&a])]),
        &[(DomainMatch::Exact, "api.example.com", "default_api")],
    );
    let report = sync(&driver, &want).await;
    let ReloadOutcome::Deferred(after) = report.reload else {
        panic!("the new backend waits for its reload: {report:?}");
    };
    assert_eq!(report.waiting_domains, 1, "{report:?}");
    assert!(h.map_entries(&h.domain_map_exact).await.is_empty());

    tokio::time::sleep(after).await;
    let report = sync(&driver, &want).await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{report:?}"
    );
    assert_eq!(verbs(&report), [("api.example.com", "add")]);
    wait_status(&h, "default_api", &a.name, "UP").await;
    assert_eq!(h.get_host("api.example.com").await, Ok(200));
    converged(&driver, &want).await;
}

#[tokio::test]
async fn driver_refuses_two_maps_at_one_path() {
    // Refused before any socket or file is touched.
    let mut config = haproxy::Config::default();
    config.domain_map_prefix = config.domain_map_exact.clone();
    let err = RuntimeDriver::start(config)
        .await
        .expect_err("two maps at one path");
    assert!(matches!(err, haproxy::Error::MapPathShared { .. }), "{err}");
}
