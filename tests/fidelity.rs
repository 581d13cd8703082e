//! The check-verdict fidelity matrix: for each Nomad check (or several) and
//! real backend behaviour, HAProxy's verdict — read from HAProxy after the
//! daemon configured it from the Nomad simulator — equals Nomad's verdict
//! from Go's own net/http client set up as Nomad's checker ([`oracle`]), or
//! the documented difference, and arrives within interval + timeout (+ rise).
//!
//! One world holds every case: one job per case, all checked in parallel
//! (interval 1 s and timeout 1 s, Nomad's minimums). The run writes
//! `target/fidelity.json`; `cargo run -p hnc-tests --bin fidelity-table`
//! turns it into docs/fidelity.md, which a second test keeps in step with
//! the cases.

mod backends;
mod case;
mod cases;
mod fallback;
mod oracle;
mod raw;
mod report;
mod several_runtime;

use backends::Backends;
use case::{Case, DIFFERENCES};
use hnc_tests::haproxy::StatRow;
use hnc_tests::nomad_checker::Verdict;
use hnc_tests::world::{World, job};
use report::{Observation, Record, Report};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
/// How often HAProxy is polled for verdicts.
const POLL: Duration = Duration::from_millis(50);
/// How long every case may take to reach a first verdict before the test
/// gives up (a failure, never a timing assertion).
const GIVE_UP: Duration = Duration::from_secs(40);
/// How long verdicts are watched afterwards for flapping.
const HOLD: Duration = Duration::from_millis(3_500);
/// HAProxy's own timer and scheduling jitter allowed beyond the bound (the
/// polling step is measured and allowed separately).
const JITTER: Duration = Duration::from_millis(250);

/// What HAProxy decided about one server so far.
struct Watched {
    appeared: Instant,
    /// The first verdict, when it was seen, the row and the polling step.
    verdict: Option<(Verdict, Instant, StatRow, Duration)>,
}

/// HAProxy's verdict in a `show stat` row, once a check has completed:
/// UP after a passing check, or DOWN after a failing one. The safe add
/// sequence passes through UP before `health down`, and a DOWN server
/// shows INI until its first check, so neither is a verdict.
fn verdict_of(row: &StatRow) -> Option<Verdict> {
    let check = row["check_status"].trim_start_matches("* ");
    let passed = matches!(check, "L4OK" | "L6OK" | "L7OK" | "L7OKC");
    match row["status"].as_str() {
        "UP" if passed => Some(Verdict::Pass),
        "DOWN" if !passed && !matches!(check, "" | "INI" | "UNK") => Some(Verdict::Fail),
        _ => None,
    }
}

/// Status, check result, code and description, e.g. `DOWN L7STS 404 Layer7 wrong status`.
fn detail(row: &StatRow) -> String {
    let mut out = format!(
        "{} {}",
        row["status"],
        row["check_status"].trim_start_matches("* ")
    );
    for key in ["check_code", "check_desc"] {
        if !row[key].is_empty() {
            out.push(' ');
            out.push_str(&row[key]);
        }
    }
    out
}

/// Registers every case's job and allocation, and starts the daemon.
fn configure(w: &mut World, cases: &[Case]) {
    for case in cases {
        let mut tags = vec![ON.to_string()];
        tags.extend(case.tags.iter().cloned());
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let mut spec = job(case.name, case.name, &tags, Some(case.check.clone()));
        spec["TaskGroups"][0]["Services"][0]["Checks"] = serde_json::Value::Array(case.checks());
        w.sim.register_job(spec);
        w.place(case.name, "g", &case.ports);
    }
    // Nomad's default Host (address:port) and per-server URIs, as
    // docs/configuration.md recommends.
    let mut config = w.config();
    config.haproxy.host_map = Some(w.haproxy.host_map.clone());
    config.haproxy.uri_map = Some(w.haproxy.uri_map.clone());
    w.start_daemon_with(config);
}

/// Polls HAProxy until every case's server has a first verdict (or
/// [`GIVE_UP`]): when each server first appeared, and its first verdict.
async fn watch(w: &World, cases: &[Case]) -> BTreeMap<String, Watched> {
    let wanted: Vec<String> = cases.iter().map(Case::backend).collect();
    let mut seen: BTreeMap<String, Watched> = BTreeMap::new();
    let began = Instant::now();
    let mut last_poll = began;
    loop {
        let rows = w.haproxy.stat().await;
        let now = Instant::now();
        let step = now - last_poll;
        last_poll = now;
        for row in rows {
            if !wanted.contains(&row["pxname"]) {
                continue;
            }
            let o = seen.entry(row["pxname"].clone()).or_insert(Watched {
                appeared: now,
                verdict: None,
            });
            if o.verdict.is_none()
                && let Some(v) = verdict_of(&row)
            {
                o.verdict = Some((v, now, row, step));
            }
        }
        let done = seen.values().filter(|o| o.verdict.is_some()).count();
        if done == cases.len() || began.elapsed() > GIVE_UP {
            return seen;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why HAProxy never got some backends: a render it refused says so.
fn rejected_render(w: &World) -> String {
    let rejected = w.haproxy.dir.path().join(".managed.cfg.rejected");
    std::process::Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&w.haproxy.operator_cfg)
        .arg("-f")
        .arg(&rejected)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_verdicts_agree_with_nomads_within_interval_and_timeout() {
    let mut backends = Backends::live();
    let cases = cases::matrix(&mut backends).await;
    assert!(cases.len() >= 90, "the matrix has at least 90 cases");
    let net = backends.net();
    let judged = tokio::task::block_in_place(|| oracle::judge(&cases, &net));

    let mut w = World::start().await;
    configure(&mut w, &cases);
    let seen = watch(&w, &cases).await;
    // Then watch a few more checks: a verdict must hold.
    tokio::time::sleep(HOLD).await;
    let last: BTreeMap<String, StatRow> = w
        .haproxy
        .stat()
        .await
        .into_iter()
        .map(|r| (r["pxname"].clone(), r))
        .collect();

    let mut records = Vec::new();
    let mut failures = Vec::new();
    if seen.len() < cases.len() {
        failures.push(format!(
            "{} of {} backends never appeared; a rejected render says: {}",
            cases.len() - seen.len(),
            cases.len(),
            rejected_render(&w)
        ));
    }
    for case in &cases {
        let (nomad, judge) = judged.outcomes[case.name].clone();
        let expected = case.expected(nomad.verdict);
        let observed = seen.get(&case.backend()).and_then(|o| {
            let (verdict, at, row, resolution) = o.verdict.as_ref()?;
            Some(Observation {
                verdict: *verdict,
                detail: detail(row),
                elapsed: *at - o.appeared,
                resolution: *resolution,
            })
        });
        let context = || {
            format!(
                "{} [{}; {}]: HAProxy {:?} now {:?}; backends saw {}",
                case.name,
                case.describe(),
                case.behaviour,
                observed.as_ref().map(|o| &o.detail),
                last.get(&case.backend()).map(detail),
                backends.seen(&case.ports)
            )
        };
        match &observed {
            None => failures.push(format!("no verdict within {GIVE_UP:?}: {}", context())),
            Some(o) if o.verdict != expected => failures.push(format!(
                "HAProxy says {}, expected {expected} (Nomad: {} — {}): {}",
                o.verdict,
                nomad.verdict,
                nomad.why,
                context()
            )),
            Some(o) => {
                if last.get(&case.backend()).and_then(verdict_of) != Some(o.verdict) {
                    failures.push(format!("the verdict did not hold: {}", context()));
                }
                // The verdict was seen within one polling step of happening,
                // so only a time beyond bound + that step (+ HAProxy's timer
                // jitter) is certainly late.
                let bound = case.bound(o.verdict);
                if o.elapsed > bound + o.resolution + JITTER {
                    failures.push(format!(
                        "verdict after {:?} (polling step {:?}), promised {bound:?}: {}",
                        o.elapsed,
                        o.resolution,
                        context()
                    ));
                }
            }
        }
        records.push(Record::new(case, nomad, judge, observed.as_ref()));
    }
    let info = w.haproxy.cmd("show info").await;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or("")
        .trim();
    let path = Report::new(version, &judged.go, POLL, &cases, records).write();
    eprintln!(
        "fidelity matrix: {} cases, report in {}",
        cases.len(),
        path.display()
    );
    w.stop_daemon().await;
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The rows of docs/fidelity.md's matrix: case name → its cells.
fn doc_rows(doc: &str) -> BTreeMap<String, Vec<String>> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<String> = line
                .strip_prefix("| `")?
                .split(" | ")
                .map(|c| c.trim().trim_end_matches('|').trim().to_string())
                .collect();
            let name = cells.first()?.strip_suffix('`')?.to_string();
            Some((name, cells))
        })
        .collect()
}

#[tokio::test]
async fn docs_fidelity_md_names_every_case_and_every_deliberate_difference() {
    let mut backends = Backends::dry();
    let cases = cases::matrix(&mut backends).await;
    let path = report::workspace().join("docs/fidelity.md");
    let doc = std::fs::read_to_string(&path).expect("docs/fidelity.md");
    let regenerate = "regenerate it: cargo test -p hnc-tests --test integration fidelity, \
                      then cargo run -p hnc-tests --bin fidelity-table";
    let rows = doc_rows(&doc);
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    let stale: Vec<&String> = rows
        .keys()
        .filter(|n| !names.contains(&n.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/fidelity.md has rows for cases that are gone: {stale:?}; {regenerate}"
    );
    for case in &cases {
        let row = rows.get(case.name).unwrap_or_else(|| {
            panic!(
                "docs/fidelity.md has no row for {}; {regenerate}",
                case.name
            )
        });
        // The Nomad column holds Go's verdict of the last run (the live
        // test judges it; here only its presence).
        assert!(
            row.get(3)
                .is_some_and(|cell| cell.starts_with("pass") || cell.starts_with("fail")),
            "docs/fidelity.md gives {} no Nomad verdict: {row:?}; {regenerate}",
            case.name
        );
        if let Some((_, d)) = case.deliberate {
            let marked = format!("(deliberate: [{}]", d.id);
            assert!(
                row.get(4).is_some_and(|cell| cell.contains(&marked)),
                "docs/fidelity.md does not mark {} as {:?}: {row:?}; {regenerate}",
                case.name,
                d.id
            );
        }
    }
    let section = doc
        .split_once("## Deliberate differences")
        .map(|(_, rest)| rest)
        .expect("docs/fidelity.md has a \"Deliberate differences\" section");
    for d in DIFFERENCES {
        let shown = report::shown_by(d, &cases);
        assert!(!shown.is_empty(), "no case shows the difference {:?}", d.id);
        let (_, body) = section
            .split_once(&format!("### {}", d.title))
            .unwrap_or_else(|| {
                panic!("docs/fidelity.md does not name {:?}; {regenerate}", d.title)
            });
        let body = body.split("\n### ").next().unwrap_or(body);
        for name in shown {
            assert!(
                body.contains(&format!("`{name}`")),
                "docs/fidelity.md does not list {name} under {:?}; {regenerate}",
                d.title
            );
        }
    }
}
