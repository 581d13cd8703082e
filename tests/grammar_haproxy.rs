//! The host's grammar equals HAProxy's: every plugin answer (and every
//! built-in plugin setting) the host accepts renders into lines that the
//! `haproxy` on `PATH` accepts, in `mode http` and `mode tcp`.
//!
//! Proptest generates thousands of answers, biased towards what HAProxy
//! parses specially (status lists, regexes, timers, quotes, multiplexers);
//! the accepted ones are batched into a few standalone configs (one
//! `haproxy -c` per batch), and every refusal is reported with the answer
//! and the line HAProxy refused.

use haproxy_nomad_connector::haproxy::dry_run::{self, Verdict};
use haproxy_nomad_connector::mapping::{self, Engine};
use haproxy_nomad_connector::vocab::check::{RenderContext, RenderedCheck, render};
use hnc_core::model::*;
use hnc_tests::mapping::{http_check, service};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::cell::{Cell, RefCell};
use std::path::Path;

/// Answers generated; accepted ones reach `haproxy -c`.
const CASES: u32 = 3000;
/// Checks per `haproxy -c` run (two backends each).
const BATCH: usize = 500;

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9/_.~%?=&-]{1,12}",
        1 => "[ -~]{0,10}",
        1 => "[a-z{}$`|^@!*+]{1,6}",
        1 => Just("/".to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => "[ -~]{0,16}",
        1 => "[a-zé%\\[\\]()\\\\ ]{1,10}",
        4 => "[a-zA-Z0-9 ._-]{0,16}",
        2 => Just(String::new())
    ]
}

fn status() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?){0,2}",
        1 => "[0-9x,-]{0,8}",
        1 => Just("2xx".to_string()),
        2 => Just("200-399".to_string()),
    ]
}

fn regex() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z^$.*+?()\\[\\]{}|\\\\0-9,-]{1,10}",
        4 => "\\^[A-Z]{1,3}[0-9]\\{[0-9],[0-9]\\}\\$",
        1 => Just("[z-a]".to_string()),
        1 => Just("a{70000}".to_string()),
        2 => Just("(?i)ok".to_string()),
    ]
}

fn timer() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        3 => Just(None),
        6 => (1u32..100_000).prop_map(Some),
        1 => Just(Some(0)),
        1 => (2_147_483_000u32..=u32::MAX).prop_map(Some),
    ]
}

fn small() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(prop_oneof![6 => 1u32..20, 1 => any::<u32>()])
}

fn host() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![6 => "[a-z0-9][a-z0-9.-]{0,11}", 1 => word()])
}

fn http() -> impl Strategy<Value = BackendCheck> {
    let expect = (
        any::<bool>(),
        prop_oneof![
            (Just(HttpMatch::Status), status()),
            (Just(HttpMatch::Rstatus), regex()),
            (Just(HttpMatch::String), text()),
            (Just(HttpMatch::Rstring), regex()),
        ],
    )
        .prop_map(|(negate, (matcher, pattern))| HttpExpect {
            negate,
            matcher,
            pattern,
        });
    (
        prop_oneof![6 => Just("GET".to_string()), 1 => "[A-Za-z!*-]{0,7}"],
        word(),
        prop_oneof![6 => Just("HTTP/1.1".to_string()), 1 => "[A-Z0-9/.]{0,9}"],
        prop::collection::vec(("[A-Za-z0-9_-]{0,8}", text()), 0..3),
        text(),
        any::<bool>(),
        prop::collection::vec(expect, 0..3),
    )
        .prop_map(
            |(method, uri, version, headers, body, default_host, expect)| {
                BackendCheck::Http(HttpCheck {
                    method,
                    uri,
                    version,
                    headers,
                    body,
                    default_host,
                    expect,
                })
            },
        )
}

fn tcp_rule() -> impl Strategy<Value = TcpCheckRule> {
    let expect = (
        any::<bool>(),
        prop_oneof![
            (Just(TcpMatch::String), text()),
            (Just(TcpMatch::Rstring), regex()),
            (Just(TcpMatch::Binary), "[0-9a-fA-Fg]{0,8}"),
            (Just(TcpMatch::Rbinary), regex()),
        ],
        small(),
        prop::option::of(prop_oneof![
            Just("L7RSP".to_string()),
            Just("L4CON".to_string()),
            "[A-Z0-9]{0,6}"
        ]),
        prop::option::of(text()),
    )
        .prop_map(
            |(negate, (matcher, pattern), min_recv, error_status, comment)| {
                TcpCheckRule::Expect(TcpExpect {
                    negate,
                    matcher,
                    pattern,
                    min_recv,
                    error_status,
                    comment,
                })
            },
        );
    prop_oneof![
        (
            prop::option::of(any::<u16>()),
            any::<bool>(),
            host(),
            host()
        )
            .prop_map(|(port, ssl, sni, alpn)| TcpCheckRule::Connect(TcpConnect {
                port,
                ssl,
                sni,
                alpn
            })),
        text().prop_map(TcpCheckRule::Send),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(TcpCheckRule::SendBinary),
        text().prop_map(TcpCheckRule::Comment),
        expect,
    ]
}

fn server() -> impl Strategy<Value = ServerCheck> {
    let agent = (any::<u16>(), host(), timer(), host()).prop_map(|(port, addr, inter_ms, send)| {
        AgentCheck {
            port,
            addr,
            inter_ms,
            send,
        }
    });
    (
        (timer(), timer(), timer(), small(), small()),
        (
            prop::option::of(any::<u16>()),
            prop::option::of(prop_oneof![
                3 => Just("10.0.0.1".to_string()),
                3 => Just("::1".to_string()),
                1 => word()
            ]),
        ),
        (any::<bool>(), any::<bool>(), host()),
        (
            prop::option::of(prop_oneof![
                3 => Just("h2".to_string()),
                3 => Just("h1".to_string()),
                1 => "[a-z0-9]{1,4}"
            ]),
            host(),
            prop::option::of(agent),
        ),
    )
        .prop_map(
            |(
                (inter, fast, down, rise, fall),
                (port, addr),
                (ssl, verify, sni),
                (proto, alpn, agent),
            )| {
                ServerCheck {
                    enabled: true,
                    inter_ms: inter,
                    fastinter_ms: fast,
                    downinter_ms: down,
                    rise,
                    fall,
                    port,
                    addr,
                    ssl,
                    verify: if verify {
                        TlsVerify::Required
                    } else {
                        TlsVerify::None
                    },
                    sni,
                    proto,
                    alpn,
                    agent,
                }
            },
        )
}

fn plan() -> impl Strategy<Value = CheckPlan> {
    (
        prop_oneof![
            Just(BackendCheck::Tcp),
            http(),
            prop::collection::vec(tcp_rule(), 0..4).prop_map(BackendCheck::TcpCheck),
        ],
        timer(),
        server(),
    )
        .prop_map(|(backend, timeout_check_ms, server)| CheckPlan {
            backend,
            timeout_check_ms,
            server,
            ..CheckPlan::default()
        })
}

/// A render context like a site's: both maps, the system CAs.
fn context(dir: &Path) -> RenderContext {
    for map in ["host.map", "uri.map"] {
        std::fs::write(dir.join(map), "").unwrap();
    }
    RenderContext {
        host_map: Some(dir.join("host.map")),
        uri_map: None,
        ca_file: "@system-ca".into(),
    }
}

/// Runs `haproxy -c` over the accepted cases in batches; returns every
/// refusal as (what was accepted, the refused line, HAProxy's message).
fn refusals(
    bin: &Path,
    dir: &Path,
    cases: &[(String, RenderedCheck)],
) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for batch in cases.chunks(BATCH) {
        let rendered: Vec<&RenderedCheck> = batch.iter().map(|(_, r)| r).collect();
        let config = dry_run::standalone_config(&rendered);
        let Verdict::Refused(alerts) = dry_run::check(bin, dir, &config).expect("haproxy runs")
        else {
            continue;
        };
        for alert in alerts {
            let line = alert.line.unwrap_or(0);
            let text = config
                .lines()
                .nth(line.saturating_sub(1) as usize)
                .unwrap_or("")
                .to_string();
            let case = dry_run::check_at_line(&config, line)
                .map_or_else(|| "?".to_string(), |i| batch[i].0.clone());
            found.push((case, text, alert.message));
        }
    }
    found
}

fn haproxy() -> std::path::PathBuf {
    dry_run::haproxy_on_path().expect("haproxy on PATH (the tests start it)")
}

fn assert_none(refused: &[(String, String, String)]) {
    let shown: Vec<String> = refused
        .iter()
        .take(10)
        .map(|(case, line, message)| format!("{case}\n  line: {line}\n  haproxy: {message}"))
        .collect();
    assert!(
        refused.is_empty(),
        "{} accepted value(s) refused by haproxy -c:\n{}",
        refused.len(),
        shown.join("\n")
    );
}

/// A runner of `cases` cases from a fixed seed, so that CI runs the same
/// cases every time; `GRAMMAR_SEED=random` explores new ones.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var("GRAMMAR_SEED").is_ok_and(|s| s == "random") {
        return TestRunner::new(config);
    }
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

#[test]
fn every_answer_the_host_accepts_passes_haproxy_c() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let accepted = RefCell::new(Vec::new());
    let refused_by_host = Cell::new(0u32);
    let mut runner = runner(CASES);
    runner
        .run(&plan(), |plan| {
            match render(&plan, &ctx) {
                Ok(rendered) => accepted.borrow_mut().push((format!("{plan:?}"), rendered)),
                Err(_) => refused_by_host.set(refused_by_host.get() + 1),
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused_by_host) = (accepted.into_inner(), refused_by_host.get());
    // The generator must reach both sides of the grammar: a plan has some
    // twenty fields, each of which may be refused, so a few percent of the
    // plans are accepted whole; hundreds of them go through `haproxy -c`.
    assert!(accepted.len() > CASES as usize / 20, "{}", accepted.len());
    assert!(refused_by_host > CASES / 20, "{refused_by_host}");
    assert_none(&refusals(&haproxy(), dir.path(), &accepted));
}

#[test]
fn every_http_setting_the_host_accepts_passes_haproxy_c() {
    let dir = tempfile::tempdir().unwrap();
    let accepted = RefCell::new(Vec::new());
    let mut runner = runner(200);
    let settings = (
        status(),
        prop_oneof![Just("HTTP/1.1".to_string()), "[A-Z0-9/.]{0,9}"],
    );
    runner
        .run(&settings, |(status, version)| {
            let mut config = mapping::Config::default();
            let table = config.settings.entry("http".into()).or_default();
            table.insert("expect-status".into(), toml::Value::String(status.clone()));
            table.insert("http-version".into(), toml::Value::String(version.clone()));
            // Settings the host refuses stop the start: nothing to check.
            if let Ok(engine) = Engine::new(&config, RenderContext::default()) {
                let mapped = engine.map(&service("web", &[]), Some(&http_check("/health")));
                assert_eq!(mapped.fallback, None, "{status:?} {version:?}");
                accepted.borrow_mut().push((
                    format!("expect-status={status:?} http-version={version:?}"),
                    mapped.rendered,
                ));
            }
            Ok(())
        })
        .unwrap();
    let accepted = accepted.into_inner();
    assert!(!accepted.is_empty());
    assert_none(&refusals(&haproxy(), dir.path(), &accepted));
}

#[test]
fn status_2xx_is_refused_by_the_host_naming_the_field() {
    let mut config = mapping::Config::default();
    config
        .settings
        .entry("http".into())
        .or_default()
        .insert("expect-status".into(), toml::Value::String("2xx".into()));
    let err = Engine::new(&config, RenderContext::default())
        .err()
        .expect("refused at start");
    let message = err.to_string();
    assert!(message.contains("http-check expect status"), "{message}");
    assert!(message.contains("\"2xx\""), "{message}");
}
